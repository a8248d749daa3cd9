"""Fluentd's `relabel` output as the Fluentd front-end places it: a `<match P> @type relabel
@label @X </match>` becomes this step at the match's place in the filter chain; it moves the
events to label @X, whose filters and matches then take them (the front-end runs the label
scopes one after another, so a relabelled event meets the filters of its new label)."""

from __future__ import annotations

from typing import ClassVar

from logpipe.event import Event
from logpipe.plugin import Filter, Setting


class RelabelFilter(Filter):
    name = "relabel"
    creates_events = False
    doc = "Moves events to another Fluentd label (what <match> @type relabel does)."
    settings: ClassVar[list[Setting]] = [
        Setting("@label", "string", required=True, doc="the label the events move to"),
    ]

    def filter(self, events: list[Event]) -> list[Event]:
        label = self.params["@label"]
        for ev in events:
            ev.meta["_label"] = label
        return events
