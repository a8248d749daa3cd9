"""The event: what flows through a pipeline.

A plain slotted class rather than a dataclass: it is created millions of times a
second and every attribute access is on the hot path.
"""

from __future__ import annotations

import time as _time
from typing import Any

from logpipe.timefmt import format_iso_ms


class Event:
    """`tag` routes (Fluentd style), `time` is int ns since the epoch (UTC), `record` is
    the JSON-like body, `meta` is Logstash's `@metadata`: visible to filters and
    conditionals, never written by outputs unless asked."""

    __slots__ = ("tag", "time", "record", "meta")

    def __init__(
        self, tag: str, time: int | None = None, record: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.tag = tag
        self.time = _time.time_ns() if time is None else time
        self.record = {} if record is None else record
        self.meta = {} if meta is None else meta

    def copy(self) -> Event:
        """Deep enough for fan-out: nested containers are copied so branches cannot see each other's edits."""
        return Event(self.tag, self.time, _deep_copy(self.record), _deep_copy(self.meta))

    def __repr__(self) -> str:
        return f"Event(tag={self.tag!r}, time={self.time}, record={self.record!r}, meta={self.meta!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Event)
            and self.tag == other.tag
            and self.time == other.time
            and self.record == other.record
            and self.meta == other.meta
        )

    __hash__ = None  # type: ignore[assignment]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def event_document(event: Event, with_metadata: bool = False) -> dict[str, Any]:
    """The event as outputs write it, Logstash-shaped: `@timestamp` plus the record;
    `@metadata` only when asked."""
    doc: dict[str, Any] = {"@timestamp": format_iso_ms(event.time)}
    doc.update(event.record)
    if with_metadata and event.meta:
        doc["@metadata"] = event.meta
    return doc
