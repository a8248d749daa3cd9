"""Logstash's json codec: one JSON document per event (no delimiter when encoding)."""

from __future__ import annotations

from typing import Any

import orjson

from logpipe.event import Event, event_document
from logpipe.jsonvalues import json_default
from logpipe.plugin import Codec, Setting

PARSE_FAILURE_TAG = "_jsonparsefailure"


class JsonCodec(Codec):
    name = "json"
    doc = "Decodes JSON objects (invalid input is kept as `message`, tagged _jsonparsefailure)."
    settings = [Setting("metadata", "bool", default=False, doc="also write [@metadata] when encoding")]
    separator = b""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self._failures = self.metrics.counter("json_failures", "lines that were not JSON objects")

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        loads = orjson.loads
        for line in lines:
            try:
                value = loads(line)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                records.append(value)
            elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
                records.extend(value)
            else:
                self._failures.inc()
                records.append({"message": line, "tags": [PARSE_FAILURE_TAG]})
        return records

    def encode(self, events: list[Event]) -> bytes:
        dumps = orjson.dumps
        meta = self.params["metadata"]
        sep = self.separator
        return b"".join(dumps(event_document(ev, meta), default=json_default) + sep for ev in events)

    def encode_each(self, events: list[Event]) -> list[bytes]:
        dumps = orjson.dumps
        meta = self.params["metadata"]
        sep = self.separator
        return [dumps(event_document(ev, meta), default=json_default) + sep for ev in events]
