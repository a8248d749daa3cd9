"""Elasticsearch `_bulk` bodies and outcomes, without any I/O.

The NDJSON body is built here with orjson and handed to the client as bytes (the
client's NDJSON serializer passes bytes through), which skips the client's per-action
dict handling: serialisation is the per-event cost of this output. A chunk becomes
one or more requests bounded by `max_bytes` and `max_docs`; each request remembers
which events of the chunk it carries so the response's per-item statuses, which come
back in request order, map back to chunk indices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from logpipe.plugin import Event
from logpipe.timefmt import format_iso_ms

NS = 1_000_000_000
#: What the output asks the server to send back: enough to map outcomes, nothing more.
FILTER_PATH = "errors,items.*.status,items.*.error"
_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS


def _fallback(value: Any) -> Any:
    """Anything orjson cannot serialise natively is written as its text, as Logstash does."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def timestamp_formatter(precision: int) -> Callable[[int], str]:
    """ISO 8601 UTC text of an event time with `precision` fractional digits (0–9).
    Milliseconds, what Logstash and Fluentd write, reuse the core's cached formatter."""
    if precision == 3:
        return format_iso_ms
    if precision == 0:
        return lambda ns: format_iso_ms(ns)[:19] + "Z"

    def fmt(ns: int) -> str:
        return f"{format_iso_ms(ns)[:19]}.{ns % NS:09d}"[: 20 + precision] + "Z"

    return fmt


@dataclass(slots=True)
class BulkRequest:
    """One `_bulk` body and the chunk indices of its items, in order."""

    body: bytearray = field(default_factory=bytearray)
    positions: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Built:
    requests: list[BulkRequest]
    #: Events that could not be serialised: (index, reason); never sent.
    failed: list[tuple[int, str]]


MaybeText = Callable[[Event], "str | None"]


class BulkBuilder:
    """Turns a chunk into bulk requests. Everything that can be decided once (action
    name, constant index, timestamp key) is decided in the constructor."""

    def __init__(
        self,
        *,
        action: str,
        index: Callable[[Event], str],
        ids: Callable[[list[Event]], list[str | None]],
        routing: MaybeText | None = None,
        pipeline: MaybeText | None = None,
        timestamp_key: str = "@timestamp",
        timestamp_precision: int = 3,
        max_bytes: int = 20 * 1024 * 1024,
        max_docs: int = 10_000,
    ) -> None:
        self._action = action
        self._index = index
        self._ids = ids
        self._routing = routing
        self._pipeline = pipeline
        self._ts_key = timestamp_key
        self._ts_prefix = b"{" + orjson.dumps(timestamp_key) + b':"' if timestamp_key else b""
        self._ts = timestamp_formatter(timestamp_precision)
        self._max_bytes = max(1, max_bytes)
        self._max_docs = max(1, max_docs)
        self._index_json: dict[str, bytes] = {}

    def build(self, events: list[Event]) -> Built:
        ids = self._ids(events)
        failed: list[tuple[int, str]] = []
        requests: list[BulkRequest] = []
        current = BulkRequest()
        max_bytes, max_docs = self._max_bytes, self._max_docs
        action_head = b'{"' + self._action.encode() + b'":{"_index":'
        index_fn, index_json = self._index, self._index_json
        routing_fn, pipeline_fn = self._routing, self._pipeline
        ts_key, ts_prefix, ts = self._ts_key, self._ts_prefix, self._ts
        dumps = orjson.dumps
        for i, ev in enumerate(events):
            try:
                record = ev.record
                source = dumps(record, default=_fallback, option=_DUMP_OPTIONS)
                if ts_prefix and ts_key not in record:
                    stamp = ts_prefix + ts(ev.time).encode() + b'"'
                    source = stamp + b"}" if len(source) == 2 else stamp + b"," + source[1:]
                name = index_fn(ev)
                name_json = index_json.get(name)
                if name_json is None:
                    if len(index_json) >= 1024:
                        index_json.clear()
                    name_json = index_json[name] = dumps(name)
                line = action_head + name_json
                doc_id = ids[i]
                if doc_id is not None:
                    line += b',"_id":' + dumps(doc_id)
                if routing_fn is not None:
                    routing = routing_fn(ev)
                    if routing is not None:
                        line += b',"routing":' + dumps(routing)
                if pipeline_fn is not None:
                    pipeline = pipeline_fn(ev)
                    if pipeline is not None:
                        line += b',"pipeline":' + dumps(pipeline)
            except (orjson.JSONEncodeError, TypeError, ValueError) as exc:
                failed.append((i, f"cannot serialise the event as JSON: {exc}"))
                continue
            size = len(line) + len(source) + 4
            if current.positions and (len(current.body) + size > max_bytes or len(current.positions) >= max_docs):
                requests.append(current)
                current = BulkRequest()
            body = current.body
            body += line
            body += b"}}\n"
            body += source
            body += b"\n"
            current.positions.append(i)
        if current.positions:
            requests.append(current)
        return Built(requests, failed)


@dataclass(slots=True)
class Outcome:
    """What one bulk response says about its items, in chunk indices."""

    retry: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


def map_items(items: list[dict[str, Any]], positions: list[int], action: str, outcome: Outcome) -> None:
    """Sort each item into delivered / retry / failed by its status.

    2xx delivered; 409 on `create` means the document is already there, which is
    what a retry of a delivered item looks like, so delivered too; 429 (queue full,
    flood-stage disk) and 5xx retried alone; anything else (400 mapping or parse
    error, 404 missing index or pipeline, 403 read-only index) is permanent and goes
    to the dead-letter route with the server's reason.
    """
    for item, pos in zip(items, positions, strict=True):
        result = next(iter(item.values())) if item else {}
        status = result.get("status", 0)
        if 200 <= status < 300 or (status == 409 and action == "create"):
            continue
        if status == 429 or status >= 500:
            outcome.retry.append(pos)
        else:
            outcome.failed.append((pos, describe_error(status, result.get("error"))))


def describe_error(status: int, error: Any) -> str:
    """`400 document_parsing_exception: [1:9] failed to parse field [n] … (caused by …)`."""
    if isinstance(error, dict):
        text = f"{status} {error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
        return text
    return f"{status} {error}" if error else f"status {status}"
