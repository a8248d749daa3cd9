"""Logstash's `truncate` filter: cut strings to `length_bytes` bytes of UTF-8.

A cut never splits a character: a multi-byte character that would straddle the limit is
dropped whole. `fields` names the fields (arrays element by element); without it every string
in the event is cut, nested ones included.
"""

from __future__ import annotations

from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, compile_setter
from logpipe.plugin import Filter, Setting


def truncate_utf8(text: str, limit: int) -> str:
    if len(text) <= limit // 4:  # short enough whatever the characters
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


class TruncateFilter(Filter):
    name = "truncate"
    creates_events = False
    doc = "Cuts string fields to at most length_bytes bytes (UTF-8, never mid-character)."
    settings: ClassVar[list[Setting]] = [
        Setting("length_bytes", "int", required=True, doc="the most bytes a string keeps"),
        Setting("fields", "array", doc="the fields to cut (default: every string)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.params["length_bytes"] < 1:
            raise ConfigError("truncate: 'length_bytes' must be at least 1", setting="length_bytes")
        fields = self.params["fields"]
        self._plan = None if fields is None else [(compile_getter(f), compile_setter(f)) for f in fields]

    def _cut(self, value: Any, deep: bool) -> Any:
        limit = self.params["length_bytes"]
        if isinstance(value, str):
            return truncate_utf8(value, limit)
        if isinstance(value, list):
            return [self._cut(v, deep) for v in value]
        if deep and isinstance(value, dict):
            return {k: self._cut(v, deep) for k, v in value.items()}
        return value

    def filter(self, events: list[Event]) -> list[Event]:
        for ev in events:
            if self._plan is None:
                ev.record = self._cut(ev.record, True)
            else:
                for get, put in self._plan:
                    value = get(ev)
                    if value is not MISSING:
                        put(ev, self._cut(value, False))
            self.matched(ev)
        return events
