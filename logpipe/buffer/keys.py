"""Chunk keys: which events may share a chunk.

Chunks are always keyed by tag; `chunk_keys` adds more: `time` (the event time cut into
`timekey`-wide slots, as Fluentd), a field name (`host`, Fluentd's nested `$.a.b`,
Logstash's `[a][b]`) or any sprintf template (`%{host}-%{+YYYY.MM}`). A batch is split
into groups with one dict pass; the common case — one tag, no extra keys — costs one
comparison per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logpipe.event import Event

ChunkKey = tuple[Any, ...]
KeyFn = Callable[[Event], ChunkKey]


def _template(key: str) -> str:
    if "%{" in key:
        return key
    if key.startswith("$."):
        return "%{" + "".join(f"[{part}]" for part in key[2:].split(".")) + "}"
    if key.startswith("["):
        return "%{" + key + "}"
    return "%{[" + key + "]}"


def _time_slot(width_ns: int, offset_ns: int) -> Callable[[Event], int]:
    """The slot's start in ns (UTC); slots are cut at midnight of a zone `offset_ns` east of
    UTC, as Fluentd's calculate_timekey does with timekey_zone."""
    def slot(ev: Event) -> int:
        return ev.time - (ev.time + offset_ns) % width_ns

    return slot


def time_slot_index(chunk_keys: list[str]) -> int | None:
    """Where the time slot sits in a chunk key (tag first), None without a time key."""
    extra = [k for k in chunk_keys if k != "tag"]
    return 1 + extra.index("time") if "time" in extra else None


def compile_key_fn(chunk_keys: list[str], timekey: float | None, offset_s: int = 0) -> KeyFn | None:
    """A function giving an event's chunk key, or None when the tag alone is the key."""
    extra = [k for k in chunk_keys if k != "tag"]
    if not extra:
        return None
    parts: list[Callable[[Event], Any]] = []
    for key in extra:
        if key == "time":
            width = int((timekey or 86400) * 1_000_000_000)
            parts.append(_time_slot(width, offset_s * 1_000_000_000))
        else:
            from logpipe.fields import compile_sprintf

            parts.append(compile_sprintf(_template(key)))
    if len(parts) == 1:
        only = parts[0]
        return lambda ev: (ev.tag, only(ev))
    return lambda ev: (ev.tag, *[p(ev) for p in parts])


def group_events(events: list[Event], key_fn: KeyFn | None) -> list[tuple[ChunkKey, list[Event]]]:
    """Split a batch by chunk key, keeping each group in arrival order."""
    if key_fn is None:
        tag = events[0].tag
        for ev in events:
            if ev.tag != tag:
                break
        else:
            return [((tag,), events)]
        by_tag: dict[str, list[Event]] = {}
        for ev in events:
            group = by_tag.get(ev.tag)
            if group is None:
                by_tag[ev.tag] = [ev]
            else:
                group.append(ev)
        return [((tag,), evs) for tag, evs in by_tag.items()]
    groups: dict[ChunkKey, list[Event]] = {}
    for ev in events:
        key = key_fn(ev)
        group = groups.get(key)
        if group is None:
            groups[key] = [ev]
        else:
            group.append(ev)
    return list(groups.items())
