"""Logstash's `uuid` filter: a random (version 4) UUID in `target`, kept if present unless `overwrite`."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, compile_setter
from logpipe.plugin import Filter, Setting


class UuidFilter(Filter):
    name = "uuid"
    creates_events = False
    doc = "Adds a random UUID to each event (e.g. a document id)."
    settings: ClassVar[list[Setting]] = [
        Setting("target", "string", required=True, doc="the field that receives the UUID"),
        Setting("overwrite", "bool", default=False, doc="replace a value already there"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._get = compile_getter(self.params["target"])
        self._set = compile_setter(self.params["target"])

    def filter(self, events: list[Event]) -> list[Event]:
        overwrite = self.params["overwrite"]
        for ev in events:
            if overwrite or self._get(ev) is MISSING:
                self._set(ev, str(uuid.uuid4()))
            self.matched(ev)
        return events
