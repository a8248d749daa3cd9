"""Elasticsearch output: bulk indexing with per-item outcomes, for Elasticsearch 8.x and 9.x.

Client line: elasticsearch-py 8.x (`elasticsearch[async]>=8.13,<9`). Every request of the
8.x client says `compatible-with=8`; an 8.x server takes that natively and a 9.x server
through its REST compatibility layer, which accepts the previous major. The 9.x client
says `compatible-with=9`, which 8.x servers refuse, so it would cut off ES 8.

Delivery: each document gets a deterministic `_id` (logpipe.helpers.docid) unless
`document_id`/`id_key` say otherwise or `deterministic_id => false`, so a retried or
replayed chunk overwrites (`index`) or is refused as already there (`create` → 409,
counted as delivered) instead of duplicating. Per-item statuses map to the buffer
engine's WriteResult; a failed request means the whole chunk is retried.
"""

from __future__ import annotations

import gzip
import logging
import time as _time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from elasticsearch import ApiError, AsyncElasticsearch, TransportError, UnsupportedProductError
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from logpipe.fields import MISSING, compile_getter, has_sprintf
from logpipe.helpers.docid import assign_ids
from logpipe.helpers.target_name import compile_target
from logpipe.plugin import ConfigError, Event, Output, RetryableError, Setting, WriteResult
from logpipe_plugins.outputs.elasticsearch.bulk import (
    FILTER_PATH,
    BulkBuilder,
    BulkRequest,
    Outcome,
    describe_error,
    map_items,
)

DEFAULT_INDEX = "logstash-%{+YYYY.MM.dd}"

# elastic-transport logs every request at INFO, thousands a minute for a shipper; keep its
# warnings, unless the user's logging setup chose a level for it.
_transport_log = logging.getLogger("elastic_transport.transport")
if _transport_log.level == logging.NOTSET:
    _transport_log.setLevel(logging.WARNING)
SUPPORTED_MAJORS = (8, 9)


class ElasticsearchOutput(Output):
    name = "elasticsearch"
    doc = "Indexes events into Elasticsearch 8.x/9.x with the bulk API; deterministic ids make retries idempotent."
    retryable_errors = (TransportError,)
    settings: ClassVar[list[Setting]] = [
        Setting("hosts", "array", default=["localhost:9200"], aliases=("host",),
                doc="nodes: URLs or host:port (comma-separated lists accepted)"),
        Setting("port", "int", default=9200, doc="port for hosts written without one"),
        Setting("scheme", "string", default="http", choices=("http", "https"),
                doc="scheme for hosts written without one"),
        Setting("index", "string", default=DEFAULT_INDEX, doc="target index; sprintf and %{+date} allowed"),
        Setting("index_name", "string", doc="Fluentd: target index (${tag} placeholders allowed)"),
        Setting("logstash_format", "bool", default=False,
                doc="Fluentd: index is logstash_prefix + separator + event date"),
        Setting("logstash_prefix", "string", default="logstash", doc="Fluentd: index prefix with logstash_format"),
        Setting("logstash_prefix_separator", "string", default="-", doc="Fluentd: between prefix and date"),
        Setting("logstash_dateformat", "string", default="%Y.%m.%d", doc="Fluentd: strftime date of the index"),
        Setting("action", "string", default="index", choices=("index", "create"),
                doc="bulk action; data streams need create"),
        Setting("write_operation", "string", choices=("index", "create"), doc="Fluentd name of action"),
        Setting("document_id", "string", doc="document _id (sprintf); default: a deterministic hash"),
        Setting("id_key", "string", doc="Fluentd: record field holding the document _id"),
        Setting("deterministic_id", "bool", default=True,
                doc="hash tag, time and record into _id when none is given (false: server-assigned ids)"),
        Setting("pipeline", "string", doc="ingest pipeline (sprintf)"),
        Setting("routing", "string", doc="shard routing value (sprintf)"),
        Setting("timestamp_key", "string", default="@timestamp",
                doc="field receiving the event time (empty: none); a record's own value is kept"),
        Setting("time_precision", "int", default=3, doc="fractional digits of the timestamp (0-9)"),
        Setting("user", "string", doc="basic auth user"),
        Setting("password", "string", doc="basic auth password"),
        Setting("api_key", "string", doc="API key: 'id:key' or the base64 encoded form"),
        Setting("ssl", "bool", default=False, doc="use https for hosts written without a scheme"),
        Setting("cacert", "path", doc="CA certificate file (PEM) to verify the server"),
        Setting("ssl_verification", "bool", default=True, doc="verify the server certificate"),
        Setting("bulk_max_bytes", "bytes", default=20 * 1024 * 1024,
                doc="split a chunk into bulk requests of at most this"),
        Setting("bulk_max_docs", "int", default=10000, doc="and at most this many documents each"),
        Setting("http_compression", "bool", default=False, doc="gzip request bodies"),
        Setting("compression_level", "int", default=1,
                doc="gzip level 1-9 with http_compression (1: fastest, most of the size gain)"),
        Setting("request_timeout", "duration", default=60.0, doc="timeout of one bulk request"),
    ]

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        p = self.params
        self._hosts = parse_hosts(p["hosts"], p["port"], "https" if p["ssl"] else p["scheme"])
        self._action: str = p["write_operation"] or p["action"]
        if not 0 <= p["time_precision"] <= 9:
            raise ConfigError("time_precision must be between 0 and 9", setting="time_precision")
        if (p["user"] is None) != (p["password"] is None):
            raise ConfigError("user and password go together", setting="user" if p["user"] is None else "password")
        if p["user"] is not None and p["api_key"] is not None:
            raise ConfigError("use either user/password or api_key, not both", setting="api_key")
        if not 1 <= p["compression_level"] <= 9:
            raise ConfigError("compression_level must be between 1 and 9", setting="compression_level")
        if p["bulk_max_docs"] < 1:
            raise ConfigError("bulk_max_docs must be at least 1", setting="bulk_max_docs")
        self._builder = BulkBuilder(
            action=self._action,
            index=self._index_function(),
            ids=self._id_function(),
            routing=_optional_sprintf(p["routing"], "routing"),
            pipeline=_optional_sprintf(p["pipeline"], "pipeline"),
            timestamp_key=p["timestamp_key"] or "",
            timestamp_precision=p["time_precision"],
            max_bytes=p["bulk_max_bytes"],
            max_docs=p["bulk_max_docs"],
        )
        self._client: AsyncElasticsearch | None = None
        self._gzip_level: int = p["compression_level"] if p["http_compression"] else 0
        self._server_checked = False
        self._failed_items = self.metrics.counter("es_items_failed", "ES bulk items failed permanently")
        self._retried_items = self.metrics.counter("es_items_retried", "ES bulk items to retry")
        self._failed_requests = self.metrics.counter("es_requests_failed", "ES bulk requests that failed")

    # ---- configuration ---------------------------------------------------------------

    def _index_function(self) -> Callable[[Event], str]:
        p = self.params
        if p["logstash_format"]:
            prefix, _ = compile_target(p["logstash_prefix"] + p["logstash_prefix_separator"], "logstash_prefix")
            date = _strftime_utc(p["logstash_dateformat"])
            return lambda ev: prefix(ev) + date(ev.time)
        if p["index_name"] is not None:
            return compile_target(p["index_name"], "index_name")[0]
        return compile_target(p["index"], "index")[0]

    def _id_function(self) -> Callable[[list[Event]], list[str | None]]:
        """document_id (sprintf) or id_key (a field) when set; an event where they
        render nothing falls back to the generated id rather than sharing a literal one."""
        p = self.params
        explicit: Callable[[Event], str | None] | None = None
        if p["document_id"] is not None:
            explicit = _optional_sprintf(p["document_id"], "document_id")
        elif p["id_key"] is not None:
            getter = compile_getter(p["id_key"])

            def from_field(ev: Event) -> str | None:
                value = getter(ev)
                return None if value is MISSING or value is None or value == "" else str(value)

            explicit = from_field
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

    def _client_options(self) -> dict[str, Any]:
        p = self.params
        options: dict[str, Any] = {
            "hosts": self._hosts,
            "serializers": {"application/json": OrjsonSerializer(), "application/x-ndjson": _PrebuiltNdjson()},
            "request_timeout": p["request_timeout"],
            # The buffer engine owns retries and backoff; the client only fails over to
            # another node within one call.
            "max_retries": len(self._hosts) - 1,
            "retry_on_status": (),
            "retry_on_timeout": len(self._hosts) > 1,
            "verify_certs": p["ssl_verification"],
        }
        if not p["ssl_verification"]:
            options["ssl_show_warn"] = False
        if p["cacert"]:
            options["ca_certs"] = p["cacert"]
        if p["user"] is not None:
            options["basic_auth"] = (p["user"], p["password"])
        if p["api_key"] is not None:
            key = p["api_key"]
            options["api_key"] = tuple(key.split(":", 1)) if ":" in key else key
        return options

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        client = AsyncElasticsearch(**self._client_options())
        self._client = client.options(headers={"content-encoding": "gzip"}) if self._gzip_level else client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ---- writing ---------------------------------------------------------------------

    async def write(self, events: list[Event]) -> WriteResult | None:
        if self._client is None:
            await self.start()
        if not self._server_checked:
            await self._check_server()
        built = self._builder.build(events)
        outcome = Outcome(failed=built.failed)
        requests = built.requests
        for n, request in enumerate(requests):
            try:
                await self._send(request, outcome)
            except RetryableError as exc:
                self._failed_requests.inc()
                if n == 0:
                    raise
                # Earlier requests were delivered: retry only what was not sent.
                self.log.warning("%s: bulk request failed, %d of %d requests delivered: %s",
                                 self.id, n, len(requests), exc)
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

    async def _send(self, request: BulkRequest, outcome: Outcome) -> None:
        """One bulk request. A whole-request failure raises RetryableError, except 413
        (body too large for the server), which is split in halves until it fits."""
        assert self._client is not None
        try:
            # A pre-serialised NDJSON body, compressed here rather than by the client, which
            # always uses gzip's slowest level.
            body: Any = bytes(request.body)
            if self._gzip_level:
                body = gzip.compress(body, compresslevel=self._gzip_level, mtime=0)
            response = await self._client.bulk(operations=body, filter_path=FILTER_PATH)
        except ApiError as exc:
            status = exc.meta.status
            if status == 413:
                await self._send_split(request, outcome, exc)
                return
            raise RetryableError(f"bulk request refused: {describe_error(status, _error_of(exc))}") from exc
        except TransportError as exc:
            raise RetryableError(f"bulk request failed: {exc}") from exc
        result = response.body
        items = result.get("items") or []
        if len(items) != len(request.positions):
            raise RetryableError(f"bulk response has {len(items)} items for {len(request.positions)} sent")
        if result.get("errors"):
            map_items(items, request.positions, self._action, outcome)

    async def _send_split(self, request: BulkRequest, outcome: Outcome, exc: ApiError) -> None:
        if len(request.positions) == 1:
            outcome.failed.append((request.positions[0], describe_error(413, _error_of(exc) or "request too large")))
            return
        for half in _halves(request):
            await self._send(half, outcome)

    async def _check_server(self) -> None:
        """Once per connection: name the server in the log and warn about unsupported majors.
        Failing to reach it is a retryable write failure like any other."""
        assert self._client is not None
        try:
            info = (await self._client.info()).body
        except UnsupportedProductError as exc:
            raise RetryableError(f"the server at {', '.join(self._hosts)} is not Elasticsearch "
                                 "(no 'X-Elastic-Product: Elasticsearch' header)") from exc
        except ApiError as exc:
            raise RetryableError(f"server check failed: {describe_error(exc.meta.status, _error_of(exc))}") from exc
        except TransportError as exc:
            raise RetryableError(f"cannot reach Elasticsearch: {exc}") from exc
        version = str(info.get("version", {}).get("number", "?"))
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        if major not in SUPPORTED_MAJORS:
            self.log.warning("%s: Elasticsearch %s is not supported (supported: 8.x, 9.x)", self.id, version)
        else:
            self.log.info("%s: connected to Elasticsearch %s", self.id, version)
        self._server_checked = True


# ---- helpers -----------------------------------------------------------------------------


class _PrebuiltNdjson(NdjsonSerializer):
    """Sends a body built (and maybe gzipped) by the output as it is: the stock serializer
    would copy it and append a newline, which would corrupt a compressed body."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes):
            return data
        return super().dumps(data)


def parse_hosts(entries: list[Any], default_port: int, default_scheme: str) -> list[str]:
    """Node URLs from what users write: `http://h:9200`, `h:9200` (Logstash's old `host`),
    `h` (Fluentd's host + port), `[::1]:9200`, or several joined by commas (Fluentd's hosts)."""
    urls: list[str] = []
    for entry in entries:
        for text in str(entry).split(","):
            text = text.strip()
            if not text:
                continue
            url = text if "://" in text else f"{default_scheme}://{text}"
            try:
                parts = urlsplit(url)
                port = parts.port
            except ValueError as exc:
                raise ConfigError(f"bad Elasticsearch host {text!r}: {exc}", setting="hosts") from exc
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"bad Elasticsearch host {text!r}: expected [http[s]://]host[:port]",
                                  setting="hosts")
            if port is None:
                netloc = parts.netloc + f":{default_port}"
                url = parts._replace(netloc=netloc).geturl()
            urls.append(url.rstrip("/"))
    if not urls:
        raise ConfigError("no Elasticsearch hosts given", setting="hosts")
    return urls


def _optional_sprintf(template: str | None, setting: str) -> Callable[[Event], str | None] | None:
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


def _strftime_utc(pattern: str) -> Callable[[int], str]:
    """Fluentd's logstash_dateformat (strftime) of the event time in UTC, cached per second."""
    cache: dict[int, str] = {}

    def fmt(ns: int) -> str:
        sec = ns // 1_000_000_000
        text = cache.get(sec)
        if text is None:
            if len(cache) >= 4096:
                cache.clear()
            text = cache[sec] = _time.strftime(pattern, _time.gmtime(sec))
        return text

    return fmt


def _error_of(exc: ApiError) -> Any:
    body = exc.body
    if isinstance(body, dict):
        return body.get("error", body)
    return body or exc.message


def _halves(request: BulkRequest) -> list[BulkRequest]:
    """Split a request's NDJSON body (two lines per item) into two requests."""
    lines = bytes(request.body).split(b"\n")
    mid = len(request.positions) // 2
    first = BulkRequest(bytearray(b"\n".join(lines[: 2 * mid]) + b"\n"), request.positions[:mid])
    second = BulkRequest(bytearray(b"\n".join(lines[2 * mid: 2 * len(request.positions)]) + b"\n"),
                         request.positions[mid:])
    return [first, second]
