"""Logstash's `split` filter: one event per element of an array field, or per piece of a string
split by `terminator` (default a newline).

Each new event is a deep copy of the original with the field (or `target`) set to one element;
the original is replaced by the copies. Empty string pieces and null elements make no event,
and a string that does not split (a single piece) passes unchanged, as in Logstash. A field
that is neither a string nor an array — a missing one included, as Logstash reads it as nil —
is tagged `_split_type_failure` and counted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from logpipe.fields import add_tag, compile_getter, compile_setter
from logpipe.plugin import Event, Filter, Setting

FAILURE_TAG = "_split_type_failure"


class SplitFilter(Filter):
    name = "split"
    doc = "Turns one event with an array (or multi-line string) field into one event per element."
    settings: ClassVar[list[Setting]] = [
        Setting("field", "string", default="message", doc="the field to split"),
        Setting("target", "string", doc="where each element goes (default: the field itself)"),
        Setting("terminator", "string", default="\n", doc="separator for string fields"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.failures = 0
        self._get = compile_getter(self.params["field"])
        self._put = compile_setter(self.params["target"] or self.params["field"])
        self._terminator: str = self.params["terminator"]

    def filter(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        get, put, decorate = self._get, self._put, self._decorate
        for ev in events:
            value = get(ev)
            if value.__class__ is str:
                pieces: list[Any] = value.split(self._terminator) if self._terminator else list(value)
                if len(pieces) == 1:
                    out.append(ev)
                    continue
            elif isinstance(value, list):
                pieces = value
            else:
                self.failures += 1
                add_tag(ev, FAILURE_TAG)
                out.append(ev)
                continue
            for piece in pieces:
                if piece is None or (piece.__class__ is str and not piece):
                    continue
                clone = ev.copy()
                put(clone, piece)
                if decorate is not None:
                    decorate(clone)
                out.append(clone)
        return out
