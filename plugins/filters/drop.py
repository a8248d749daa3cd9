"""Logstash's `drop` filter: discard every event that reaches it (guard it with a conditional).

`percentage` drops only that share of events, chosen at random (Logstash's sampling idiom).
Dropped events are acknowledged at once by the pipeline, so inputs still commit them. Like
Logstash's drop, the common add/remove options never apply (kept events were not "matched").
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from logpipe.plugin import ConfigError, Event, Filter, Setting


class DropFilter(Filter):
    name = "drop"
    creates_events = False
    doc = "Drops every event it sees (or `percentage` of them, at random)."
    settings: ClassVar[list[Setting]] = [
        Setting("percentage", "number", default=100, doc="share of events dropped, 0-100"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        percentage = float(self.params["percentage"])
        if not 0 <= percentage <= 100:
            raise ConfigError(f"percentage must be between 0 and 100, got {self.params['percentage']}",
                              setting="percentage")
        self._keep_share = 1.0 - percentage / 100.0
        self.dropped = 0

    def filter(self, events: list[Event]) -> list[Event]:
        if self._keep_share <= 0.0:
            self.dropped += len(events)
            return []
        rand = random.random
        share = self._keep_share
        kept = [ev for ev in events if rand() < share]
        self.dropped += len(events) - len(kept)
        return kept
