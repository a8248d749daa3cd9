"""What travels between the main process and the workers, as bytes (ARCHITECTURE.md, "Parallel pipeline").

A batch goes out as columns — the tag (once when the whole batch shares it, as it
nearly always does), the times, the records, the metas — pickled (protocol 5): pickle is
faithful to whatever an input or a Python program put in a record (tuples, datetimes,
bytes) where msgpack would turn tuples into lists, and on columns it is as fast
(benchmarks/RESULTS.md, "Worker transport"). A result comes back per output: formatted
items grouped by chunk key (plus the events `format` refused, for the dead letter), or the
events themselves for an output that wants events. The main process only unpickles lists
of bytes for the common case, which costs tens of nanoseconds per event.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

from logpipe.event import Event

Columns = tuple[Any, list[int], list[dict[str, Any]], list[dict[str, Any]]]


def columns(events: list[Event]) -> Columns:
    """A batch as (tag or list of tags, times, records, metas)."""
    tags = [ev.tag for ev in events]
    first = tags[0] if tags else ""
    tag: Any = first if tags.count(first) == len(tags) else tags
    return tag, [ev.time for ev in events], [ev.record for ev in events], [ev.meta for ev in events]


def events_of(cols: Columns) -> list[Event]:
    tag, times, records, metas = cols
    if isinstance(tag, str):
        return [Event(tag, t, r, m) for t, r, m in zip(times, records, metas)]
    return [Event(g, t, r, m) for g, t, r, m in zip(tag, times, records, metas)]


def encode_batch(seq: int, events: list[Event]) -> bytes:
    return pickle.dumps((seq, columns(events)), 5)


def decode_batch(data: bytes) -> tuple[int, list[Event]]:
    seq, cols = pickle.loads(data)
    return seq, events_of(cols)


@dataclass(slots=True)
class OutputPart:
    """One output's share of a batch, as a worker made it.

    `groups`: (chunk key, formatted items) for an output that formats; `unformatted`: the
    events `format` refused, with the reason, by chunk key (they go to the dead letter);
    `events`: the events, for an output that wants events (`groups` is then empty)."""

    output_id: str
    groups: list[tuple[tuple[Any, ...], list[bytes]]] = field(default_factory=list)
    unformatted: list[tuple[tuple[Any, ...], Columns, list[str]]] = field(default_factory=list)
    events: Columns | None = None


@dataclass(slots=True)
class Result:
    """What a worker sends back for one batch: the filtered count and each output's part,
    or `error` (the traceback) when the filter stage or routing raised."""

    seq: int
    filtered: int = 0
    parts: list[OutputPart] = field(default_factory=list)
    error: str | None = None


def encode_result(result: Result) -> bytes:
    return pickle.dumps(result, 5)


def decode_result(data: bytes) -> Result:
    result = pickle.loads(data)
    assert isinstance(result, Result)
    return result
