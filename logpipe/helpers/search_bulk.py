"""The `_bulk` machinery the Elasticsearch and OpenSearch outputs share, split as every output is:
`format` (pure: events → one bulk item each) and `send` (I/O: items → requests → outcomes).

An item is the NDJSON the server will read for one event: the action line and, for
index/create/update, the source line (`{"index":{"_index":"logs","_id":"…"}}\\n{…}\\n`).
Buffers keep these bytes, so a retry or a replay after a restart sends them again without
formatting. A chunk of items becomes one or more requests bounded by `bulk_max_bytes` and
`bulk_max_docs`; each request remembers which items it carries, and the response's
per-item statuses, which come back in request order, map back to the chunk by position.
Only a dead letter decodes an item again (`describe`).

The client is the plugin's: it hands `send` a `Transport` (one `request` method), so the
same code drives elasticsearch-py and opensearch-py.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson

from logpipe.base import Helper, Plugin, WriteResult
from logpipe.errors import ConfigError, RetryableError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, has_sprintf
from logpipe.helpers.docid import MEMO_KEY, assign_ids
from logpipe.helpers.target_name import compile_target
from logpipe.jsonvalues import json_default
from logpipe.settings import Setting
from logpipe.timefmt import format_iso_ms

NS = 1_000_000_000
#: What the output asks the server to send back: enough to map outcomes, nothing more.
FILTER_PATH = "errors,items.*.status,items.*.error"
_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS
ACTIONS = ("index", "create", "update", "delete")

MaybeText = Callable[[Event], "str | None"]


@dataclass(slots=True)
class Response:
    """What a server answered: its status and decoded body (an error's body too)."""

    status: int
    body: Any


class Transport(Protocol):
    """The plugin's client, reduced to what the bulk and setup code need. HTTP error statuses
    come back as a Response; only failures to get an answer raise (RetryableError)."""

    async def request(self, method: str, path: str, body: Any = None, *,
                      params: dict[str, str] | None = None, ndjson: bool = False,
                      compressed: bool = False) -> Response: ...


class BulkSettings(Helper):
    """The document settings both outputs take, in Logstash's names with fluent-plugin-elasticsearch's
    (and fluent-plugin-opensearch's) spellings."""

    settings: ClassVar[list[Setting]] = [
        Setting("index", "string", doc="target index, alias or data stream; sprintf and %{+date} allowed "
                "(default logstash-%{+YYYY.MM.dd})"),
        Setting("index_name", "string", doc="Fluentd: target index (${tag} placeholders allowed)"),
        Setting("logstash_format", "bool", default=False,
                doc="Fluentd: index is logstash_prefix + separator + event date"),
        Setting("logstash_prefix", "string", default="logstash", doc="Fluentd: index prefix with logstash_format"),
        Setting("logstash_prefix_separator", "string", default="-", doc="Fluentd: between prefix and date"),
        Setting("logstash_dateformat", "string", default="%Y.%m.%d", doc="Fluentd: strftime date of the index"),
        Setting("action", "string", choices=ACTIONS, spellings=("write_operation",),
                doc="bulk action: index (default), create (the default with data streams), update, delete"),
        Setting("document_id", "string", doc="document _id (sprintf); default: a deterministic hash"),
        Setting("id_key", "string", doc="Fluentd: record field holding the document _id"),
        Setting("deterministic_id", "bool", default=True,
                doc="hash tag, time and record into _id when none is given (false: server-assigned ids)"),
        Setting("pipeline", "string", doc="ingest pipeline (sprintf)"),
        Setting("routing", "string", doc="shard routing value (sprintf)"),
        Setting("routing_key", "string", doc="Fluentd: record field holding the routing value"),
        Setting("retry_on_conflict", "int", default=1, min=0,
                doc="update: times the server retries a version conflict itself"),
        Setting("doc_as_upsert", "bool", default=False, doc="update: create the document when it is missing"),
        Setting("upsert", "string", default="", doc="update: JSON document to create when it is missing"),
        Setting("scripted_upsert", "bool", default=False, doc="update: run the script when creating too"),
        Setting("script", "string", default="", doc="update: inline script (painless) run on the document"),
        Setting("script_lang", "string", default="painless", doc="update: the script's language"),
        Setting("script_var_name", "string", default="event", doc="update: params name the event is passed as"),
        Setting("timestamp_key", "string", default="@timestamp",
                doc="field receiving the event time (empty: none); a record's own value is kept"),
        Setting("time_precision", "int", default=3, min=0, max=9, doc="fractional digits of the timestamp (0-9)"),
        Setting("include_tag_key", "bool", default=False, doc="Fluentd: write the event's tag into the record"),
        Setting("tag_key", "string", default="tag", doc="Fluentd: field the tag goes in with include_tag_key"),
        Setting("bulk_max_bytes", "bytes", default=20 * 1024 * 1024, min=1,
                doc="split a chunk into bulk requests of at most this"),
        Setting("bulk_max_docs", "int", default=10000, min=1, doc="and at most this many documents each"),
        Setting("http_compression", "bool", default=False,
                doc="gzip request bodies (Logstash 8: set compression_level instead)"),
        Setting("compression_level", "int", min=0, max=9,
                doc="gzip level of request bodies, 1 fastest … 9 smallest, 0 off (default off; 1 with "
                    "http_compression)"),
    ]


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


def optional_sprintf(template: str | None, setting: str) -> MaybeText | None:
    """A per-event value that is left out when it renders empty or with an unresolved reference."""
    if template is None:
        return None
    render, constant = compile_target(template, setting)
    if constant:
        value = template or None
        return lambda ev: value
    if not has_sprintf(template):
        return render

    def value_of(ev: Event) -> str | None:
        text = render(ev)
        return None if not text or "%{" in text else text

    return value_of


def field_text(path: str) -> MaybeText:
    """A record field as text, or None when it is missing or empty (Fluentd's *_key settings)."""
    getter = compile_getter(path)

    def value(ev: Event) -> str | None:
        found = getter(ev)
        return None if found is MISSING or found is None or found == "" else str(found)

    return value


def id_function(plugin: Plugin) -> Callable[[list[Event]], list[str | None]]:
    """document_id (sprintf) or id_key (a field) when set; an event where they render nothing
    falls back to the generated id rather than sharing a literal one."""
    p = plugin.params
    explicit: MaybeText | None = None
    if p["document_id"] is not None:
        explicit = optional_sprintf(p["document_id"], plugin.setting_name("document_id"))
    elif p["id_key"] is not None:
        explicit = field_text(p["id_key"])
    generated = p["deterministic_id"]
    if explicit is None:
        if generated:
            return assign_ids  # type: ignore[return-value]
        return lambda events: [None] * len(events)
    pick = explicit

    def ids(events: list[Event]) -> list[str | None]:
        chosen = [pick(ev) for ev in events]
        if generated and None in chosen:
            fallback = assign_ids(events)
            return [c if c is not None else f for c, f in zip(chosen, fallback, strict=True)]
        return chosen

    return ids


#: Builds the source document of an event (a new dict when it adds fields) or None to keep the record.
SourceHook = Callable[[Event, dict[str, Any]], dict[str, Any]]


class BulkFormatter:
    """Events → bulk items. Everything that can be decided once (action, constant index,
    timestamp key) is decided in the constructor; `format` is pure."""

    def __init__(self, *, action: str, index: Callable[[Event], str],
                 ids: Callable[[list[Event]], list[str | None]], routing: MaybeText | None = None,
                 pipeline: MaybeText | None = None, timestamp_key: str = "@timestamp", timestamp_precision: int = 3,
                 update_body: Callable[[bytes], bytes] | None = None, retry_on_conflict: int = 0,
                 source_hook: SourceHook | None = None) -> None:
        self._action = action
        self._index = index
        self._ids = ids
        self._routing = routing
        self._pipeline = pipeline if action in ("index", "create") else None
        self._ts_key = timestamp_key
        self._ts_prefix = b"{" + orjson.dumps(timestamp_key) + b':"' if timestamp_key else b""
        self._ts = timestamp_formatter(timestamp_precision)
        self._update_body = update_body
        self._tail = b',"retry_on_conflict":' + str(retry_on_conflict).encode() if action == "update" \
            and retry_on_conflict else b""
        self._hook = source_hook
        self._index_json: dict[str, bytes] = {}

    def format(self, events: list[Event]) -> list[bytes]:
        """One item per event. An event that cannot be serialised raises (the core then
        formats the batch event by event and dead-letters that one alone)."""
        ids = self._ids(events)
        action = self._action
        action_head = b'{"' + action.encode() + b'":{"_index":'
        with_source = action != "delete"
        index_fn, index_json = self._index, self._index_json
        routing_fn, pipeline_fn, update_body, tail, hook = (self._routing, self._pipeline, self._update_body,
                                                           self._tail, self._hook)
        ts_key, ts_prefix, ts = self._ts_key, self._ts_prefix, self._ts
        dumps = orjson.dumps
        items: list[bytes] = []
        for i, ev in enumerate(events):
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
            if not with_source:
                items.append(line + b"}}\n")
                continue
            record = ev.record if hook is None else hook(ev, ev.record)
            try:
                source = dumps(record, default=json_default, option=_DUMP_OPTIONS)
            except TypeError as exc:  # orjson.JSONEncodeError: 64-bit overflow, depth, bad keys
                raise ValueError(f"cannot serialise the event as JSON: {exc}") from exc
            if ts_prefix and ts_key not in record:
                stamp = ts_prefix + ts(ev.time).encode() + b'"'
                source = stamp + b"}" if len(source) == 2 else stamp + b"," + source[1:]
            if update_body is not None:
                source = update_body(source)
            items.append(line + tail + b"}}\n" + source + b"\n")
        return items


def update_body_function(plugin: Plugin) -> Callable[[bytes], bytes] | None:
    """The `update` action's body around the event's source: a partial `doc` (with
    `doc_as_upsert` or an `upsert` document), or a script with the event as a parameter."""
    p = plugin.params
    upsert = b""
    if p["upsert"]:
        try:
            parsed = orjson.loads(p["upsert"])
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"upsert must be a JSON document: {exc}", setting=plugin.setting_name("upsert")) \
                from exc
        if not isinstance(parsed, dict):
            raise ConfigError("upsert must be a JSON object", setting=plugin.setting_name("upsert"))
        upsert = orjson.dumps(parsed)
    if p["script"]:
        head = (b'{"script":{"source":' + orjson.dumps(p["script"]) + b',"lang":' + orjson.dumps(p["script_lang"])
                + b',"params":{' + orjson.dumps(p["script_var_name"]) + b":")
        if p["scripted_upsert"]:
            end = b'}},"scripted_upsert":true,"upsert":' + (upsert or b"{}") + b"}"
        elif upsert:
            end = b'}},"upsert":' + upsert + b"}"
        else:
            end = b"}}}"
        return lambda source: head + source + end
    if p["scripted_upsert"]:
        raise ConfigError("scripted_upsert needs a script", setting=plugin.setting_name("scripted_upsert"))
    if p["doc_as_upsert"]:
        return lambda source: b'{"doc":' + source + b',"doc_as_upsert":true}'
    if upsert:
        return lambda source: b'{"doc":' + source + b',"upsert":' + upsert + b"}"
    return lambda source: b'{"doc":' + source + b"}"


def describe_item(item: bytes) -> Any:
    """What a dead letter holds for an item: the event's document as it was sent (for an
    update, its `doc` or script parameter) with `@metadata` naming the action, index and id
    (`_docid`, the key logpipe.helpers.docid remembers ids under), so that a replayed or
    secondary-routed event is written to the same document and a replay stays idempotent."""
    head, _, rest = item.partition(b"\n")
    try:
        action_doc = orjson.loads(head)
        source = orjson.loads(rest) if rest.strip() else {}
    except orjson.JSONDecodeError:
        return {"item": item.decode("utf-8", "replace")}
    action, meta = next(iter(action_doc.items())) if isinstance(action_doc, dict) and action_doc else ("?", {})
    meta = meta if isinstance(meta, dict) else {}
    if action == "update" and isinstance(source, dict):
        if "doc" in source:
            source = source["doc"]
        elif isinstance(source.get("script"), dict):
            source = next(iter((source["script"].get("params") or {}).values()), {})
    doc = dict(source) if isinstance(source, dict) else {"source": source}
    about: dict[str, Any] = {"action": action, "_index": meta.get("_index")}
    if meta.get("_id") is not None:
        about[MEMO_KEY] = meta["_id"]
    doc["@metadata"] = about
    return doc


def _target_of(item: bytes) -> str:
    """`index logs/abc123` for a failure reason (decoded only on that path)."""
    try:
        action, meta = next(iter(orjson.loads(item.partition(b"\n")[0]).items()))
    except (orjson.JSONDecodeError, StopIteration, AttributeError):
        return "?"
    return f"{action} {meta.get('_index')}/{meta.get('_id', '-')}"


# ---- sending ---------------------------------------------------------------------------


@dataclass(slots=True)
class BulkRequest:
    """One `_bulk` body and the chunk positions of its items, in order."""

    body: bytearray = field(default_factory=bytearray)
    positions: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    """What the bulk responses say about a chunk's items, by position."""

    retry: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


def split_requests(items: list[bytes], max_bytes: int, max_docs: int) -> list[BulkRequest]:
    requests: list[BulkRequest] = []
    current = BulkRequest()
    for i, item in enumerate(items):
        if current.positions and (len(current.body) + len(item) > max_bytes or len(current.positions) >= max_docs):
            requests.append(current)
            current = BulkRequest()
        current.body += item
        current.positions.append(i)
    if current.positions:
        requests.append(current)
    return requests


def map_items(items: list[dict[str, Any]], positions: list[int], outcome: Outcome, chunk: list[bytes]) -> None:
    """Sort each item into delivered / retry / failed by its status.

    2xx delivered; 409 on `create` means the document is already there, which is what a
    retry of a delivered item looks like, so delivered too; 429 (queue full, flood-stage
    disk) and 5xx retried alone; anything else (400 mapping or parse error, 404 missing
    index, pipeline or document, 403 read-only index) is permanent and goes to the
    dead-letter route with the server's reason and the item's target.
    """
    for item, pos in zip(items, positions, strict=True):
        action, result = next(iter(item.items())) if item else ("", {})
        status = result.get("status", 0)
        if 200 <= status < 300 or (status == 409 and action == "create"):
            continue
        if status == 429 or status >= 500:
            outcome.retry.append(pos)
        else:
            outcome.failed.append((pos, f"{describe_error(status, result.get('error'))} [{_target_of(chunk[pos])}]"))


def describe_error(status: int, error: Any) -> str:
    """`400 document_parsing_exception: [1:9] failed to parse field [n] … (caused by …)`."""
    if isinstance(error, dict):
        text = f"{status} {error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
        return text
    return f"{status} {error}" if error else f"status {status}"


def error_of(body: Any) -> Any:
    if isinstance(body, dict):
        return body.get("error", body)
    return body


class BulkSender:
    """Sends a chunk of items through a Transport and reports per-item outcomes."""

    def __init__(self, plugin: Plugin, log: logging.Logger) -> None:
        p = plugin.params
        self._id = plugin.id
        self._max_bytes: int = p["bulk_max_bytes"]
        self._max_docs: int = p["bulk_max_docs"]
        level = p["compression_level"]
        if p["http_compression"] and level == 0:
            raise ConfigError("http_compression asks for gzip and compression_level 0 for none: keep one",
                              setting="compression_level")
        self.gzip_level: int = (1 if p["http_compression"] else 0) if level is None else level
        self._log = log
        self._failed_items = plugin.metrics.counter("bulk_items_failed", "bulk items failed permanently")
        self._retried_items = plugin.metrics.counter("bulk_items_retried", "bulk items to retry")
        self._failed_requests = plugin.metrics.counter("bulk_requests_failed", "bulk requests that failed")

    async def send(self, transport: Transport, items: list[bytes]) -> WriteResult | None:
        outcome = Outcome()
        requests = split_requests(items, self._max_bytes, self._max_docs)
        for n, request in enumerate(requests):
            try:
                await self._send(transport, request, outcome, items)
            except RetryableError as exc:
                self._failed_requests.inc()
                if n == 0:
                    raise
                # Earlier requests were delivered: retry only what was not sent.
                self._log.warning("%s: bulk request failed, %d of %d requests delivered: %s",
                                  self._id, n, len(requests), exc)
                for rest in requests[n:]:
                    outcome.retry.extend(rest.positions)
                break
        if outcome.failed:
            self._failed_items.inc(len(outcome.failed))
        if outcome.retry:
            self._retried_items.inc(len(outcome.retry))
        if not outcome.retry and not outcome.failed:
            return None
        outcome.retry.sort()
        return WriteResult(retry=outcome.retry, failed=outcome.failed)

    async def _send(self, transport: Transport, request: BulkRequest, outcome: Outcome, chunk: list[bytes]) -> None:
        """One bulk request. A whole-request failure raises RetryableError, except 413
        (body too large for the server), which is split in halves until it fits."""
        body = bytes(request.body)
        if self.gzip_level:
            # Compressed here rather than by the client, which always uses gzip's slowest level.
            body = gzip.compress(body, compresslevel=self.gzip_level, mtime=0)
        # PUT, as the clients' own bulk helpers send it.
        reply = await transport.request("PUT", "/_bulk", body, params={"filter_path": FILTER_PATH}, ndjson=True,
                                        compressed=bool(self.gzip_level))
        if reply.status == 413:
            if len(request.positions) == 1:
                outcome.failed.append((request.positions[0],
                                       describe_error(413, error_of(reply.body) or "request too large")))
                return
            for half in _halves(request, chunk):
                await self._send(transport, half, outcome, chunk)
            return
        if reply.status >= 300:
            raise RetryableError(f"bulk request refused: {describe_error(reply.status, error_of(reply.body))}")
        result = reply.body if isinstance(reply.body, dict) else {}
        items = result.get("items") or []
        if len(items) != len(request.positions):
            raise RetryableError(f"bulk response has {len(items)} items for {len(request.positions)} sent")
        if result.get("errors"):
            map_items(items, request.positions, outcome, chunk)


def _halves(request: BulkRequest, chunk: list[bytes]) -> list[BulkRequest]:
    mid = len(request.positions) // 2
    halves = []
    for part in (request.positions[:mid], request.positions[mid:]):
        half = BulkRequest(positions=part)
        for pos in part:
            half.body += chunk[pos]
        halves.append(half)
    return halves
