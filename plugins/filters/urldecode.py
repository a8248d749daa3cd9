"""Logstash's `urldecode` filter: percent-decode a field (or every string field).

Decoding is `%XX` only, as Logstash's (`+` stays a plus: it is form encoding, not URL
encoding). Arrays are decoded element by element. Bytes that do not decode in `charset` tag the
event with `tag_on_failure` and leave that value as it was.
"""

from __future__ import annotations

import codecs
from typing import Any, ClassVar
from urllib.parse import unquote_to_bytes

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter
from logpipe.plugin import Filter, Setting


class UrldecodeFilter(Filter):
    name = "urldecode"
    creates_events = False
    doc = "Percent-decodes a field (default message) or, with all_fields, every string field."
    settings: ClassVar[list[Setting]] = [
        Setting("field", "string", default="message", doc="the field to decode"),
        Setting("all_fields", "bool", default=False, doc="decode every top-level string field"),
        Setting("charset", "string", default="UTF-8", doc="the encoding of the decoded bytes"),
        Setting("tag_on_failure", "array", default=["_urldecodefailure"], doc="tags added when decoding fails"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        try:
            self._charset = codecs.lookup(self.params["charset"]).name
        except LookupError:
            raise ConfigError(f"urldecode: unknown charset {self.params['charset']!r}", setting="charset") from None
        self._get = compile_getter(self.params["field"])
        self._set = compile_setter(self.params["field"])

    def decode(self, value: Any) -> Any:
        if isinstance(value, str):
            return unquote_to_bytes(value).decode(self._charset) if "%" in value else value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        return value

    def filter(self, events: list[Event]) -> list[Event]:
        for ev in events:
            try:
                if self.params["all_fields"]:
                    for key, value in ev.record.items():
                        ev.record[key] = self.decode(value)
                else:
                    value = self._get(ev)
                    if value is MISSING:
                        self.matched(ev)
                        continue
                    self._set(ev, self.decode(value))
            except UnicodeDecodeError:
                for tag in self.params["tag_on_failure"]:
                    add_tag(ev, tag)
                continue
            self.matched(ev)
        return events
