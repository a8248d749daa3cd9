"""Logstash's `json` filter: parse a JSON text field (orjson).

Without `target` the parsed object's keys are merged into the top level of the event (so it
must be an object); with `target` the parsed value (any JSON type) is stored there. A parsed
`@timestamp` key sets the event time (or tags `_timestampparsefailure`, Logstash's rule).
Invalid JSON tags the event (`_jsonparsefailure`) and is counted, unless
`skip_on_invalid_json` is set, in which case the event passes unchanged. A missing or empty
source field is left alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from logpipe.fields import (
    METADATA,
    MISSING,
    TIMESTAMP,
    add_tag,
    compile_getter,
    compile_setter,
    set_field,
)
from logpipe.helpers import ecs
from logpipe.plugin import Event, Filter, Setting

_SPECIAL = (TIMESTAMP, METADATA)


class JsonFilter(Filter):
    name = "json"
    creates_events = False
    doc = "Parses a JSON text field into the event (or into `target`)."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "string", required=True, doc="the field holding JSON text"),
        Setting("target", "string", doc="where the parsed value goes (default: merged into the top level)"),
        Setting("skip_on_invalid_json", "bool", default=False, doc="let invalid JSON pass untagged"),
        Setting("tag_on_failure", "array", default=["_jsonparsefailure"], doc="tags added when parsing fails"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="v1/v8: as Logstash, warn when no target is set (top-level keys may clash with ECS fields)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.params["ecs_compatibility"] != "disabled" and not self.params["target"]:
            self.log.warning("json: with ECS compatibility enabled, set `target`: parsed keys at the top level "
                             "may clash with ECS fields")
        self.failures = 0
        self._failure_tags = [str(t) for t in self.params["tag_on_failure"]]
        self._get = compile_getter(self.params["source"])
        target = self.params["target"]
        self._put = compile_setter(target) if target else None
        self._skip_invalid: bool = self.params["skip_on_invalid_json"]

    def _failed(self, ev: Event) -> None:
        self.failures += 1
        for tag in self._failure_tags:
            add_tag(ev, tag)

    def filter(self, events: list[Event]) -> list[Event]:
        get, put, decorate = self._get, self._put, self._decorate
        loads = orjson.loads
        for ev in events:
            text = get(ev)
            if text is MISSING or text is None:
                continue
            if text.__class__ is not str and not isinstance(text, (bytes, bytearray)):
                if not self._skip_invalid:
                    self._failed(ev)
                continue
            if not text.strip():
                continue
            try:
                parsed = loads(text)
            except orjson.JSONDecodeError:
                if not self._skip_invalid:
                    self._failed(ev)
                continue
            if put is not None:
                put(ev, parsed)
            elif parsed.__class__ is dict:
                self._merge(ev, parsed)
            else:
                self._failed(ev)  # a top-level merge needs an object; use `target` for other JSON
                continue
            if decorate is not None:
                decorate(ev)
        return events

    @staticmethod
    def _merge(ev: Event, parsed: dict[str, Any]) -> None:
        record = ev.record
        for key, value in parsed.items():
            if key in _SPECIAL:
                set_field(ev, key, value)
            else:
                record[key] = value
