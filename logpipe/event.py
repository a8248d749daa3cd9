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
        # Type checks only, and the common case first: an Event is built per line. A
        # record passed in the time slot must fail here, not as an endless retry later.
        if type(time) is not int:
            if time is None:
                time = _time.time_ns()
            elif not isinstance(time, int) or isinstance(time, bool):
                raise TypeError(f"Event time must be int nanoseconds since the epoch or None, got "
                                f"{type(time).__name__}; call Event(tag, time, record, meta) or pass record=")
        if type(record) is not dict:
            if record is None:
                record = {}
            elif not isinstance(record, dict):
                raise TypeError(f"Event record must be a dict, got {type(record).__name__}")
        if type(tag) is not str and not isinstance(tag, str):
            raise TypeError(f"Event tag must be a str, got {type(tag).__name__}")
        self.tag = tag
        self.time = time
        self.record = record
        self.meta = {} if meta is None else meta

    def copy(self) -> Event:
        """Deep enough for fan-out: nested containers are copied so branches cannot see each other's edits."""
        return Event(self.tag, self.time, _deep_copy(self.record), _deep_copy(self.meta))

    # ---- field access by Logstash reference (convenience for programs; filters compile theirs) ----

    def get(self, ref: str, default: Any = None) -> Any:
        """`ev.get("[http][status]")`, `ev.get("@timestamp")`, `ev.get("[@metadata][k]")`; default when absent."""
        from logpipe.fields import MISSING, get_field

        value = get_field(self, ref)
        return default if value is MISSING else value

    def set(self, ref: str, value: Any) -> None:
        """Create intermediate hashes as needed (Logstash's `event.set`)."""
        from logpipe.fields import set_field

        set_field(self, ref, value)

    def remove(self, ref: str) -> Any:
        """Remove a field and return its value (None when it was absent)."""
        from logpipe.fields import MISSING, delete_field

        value = delete_field(self, ref)
        return None if value is MISSING else value

    def has(self, ref: str) -> bool:
        from logpipe.fields import MISSING, get_field

        return get_field(self, ref) is not MISSING

    @property
    def tags(self) -> list[Any]:
        """The record's `tags` as a list (a new empty list is stored when there is none)."""
        tags = self.record.get("tags")
        if not isinstance(tags, list):
            tags = [] if tags is None else [tags]
            self.record["tags"] = tags
        return tags

    def add_tag(self, tag: str) -> None:
        from logpipe.fields import add_tag

        add_tag(self, tag)

    def to_dict(self, with_metadata: bool = False) -> dict[str, Any]:
        """The event as outputs write it: `@timestamp` (ISO 8601, ms) plus the record."""
        return event_document(self, with_metadata)

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
