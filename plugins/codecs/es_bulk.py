"""Logstash's `es_bulk` codec: read Elasticsearch bulk requests (action line, then source line).

Each action's metadata (`_index`, `_id` …, plus `action`) goes to `[@metadata]` (ECS:
`[@metadata][codec][es_bulk]`) of the event made from the source line that follows (or, for
`delete`, of an event with no source). `target` puts the source under a field. A line that is
not JSON is logged and skipped, as in Logstash; state carries across batches, so an action and
its source may arrive in different reads. Encoding writes `index` actions (a bulk body).
"""

from __future__ import annotations

from typing import Any

import orjson

from logpipe.event import Event, event_document
from logpipe.fields import parse_ref
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.jsonvalues import json_default
from logpipe.plugin import Codec, Setting


class EsBulkCodec(Codec):
    name = "es_bulk"
    doc = "Decodes Elasticsearch bulk bodies: the action's metadata in [@metadata], the source as the event."
    settings = [
        Setting("target", "string", doc="put the decoded source under this field"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._ecs = ecs_enabled(self.params)
        self._target = parse_ref(self.params["target"]) if self.params["target"] else ()
        self._pending: dict[str, Any] | None = None
        self.failures = 0

    def _meta(self, metadata: dict[str, Any]) -> dict[str, Any]:
        return {"codec": {"es_bulk": metadata}} if self._ecs else metadata

    def _record(self, source: dict[str, Any]) -> dict[str, Any]:
        for key in reversed(self._target):
            source = {key: source}
        return source

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.failures += 1
                self.log.error("es_bulk: not JSON (bulk bodies must be UTF-8 JSON): %r", line[:200])
                continue
            if self._pending is not None:
                record = self._record(value if isinstance(value, dict) else {"message": value})
                record["@metadata"] = self._meta(self._pending)
                out.append(record)
                self._pending = None
                continue
            if not isinstance(value, dict) or not value:
                self.failures += 1
                self.log.error("es_bulk: expected an action line, got %r", line[:200])
                continue
            action = next(iter(value))
            metadata = dict(value[action]) if isinstance(value[action], dict) else {}
            metadata["action"] = action
            if action == "delete":
                out.append({"@metadata": self._meta(metadata)})
            else:
                self._pending = metadata
        return out

    def encode(self, events: list[Event]) -> bytes:
        action = b'{"index":{}}\n'
        return b"".join(action + orjson.dumps(event_document(ev), default=json_default) + b"\n" for ev in events)
