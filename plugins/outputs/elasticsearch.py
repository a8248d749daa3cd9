"""Elasticsearch output: bulk indexing with per-item outcomes, for Elasticsearch 8.x and 9.x.

Client line: elasticsearch-py 8.x (`elasticsearch[async]>=8.13,<9`). Every request of the
8.x client says `compatible-with=8`; an 8.x server takes that natively and a 9.x server
through its REST compatibility layer, which accepts the previous major. The 9.x client
says `compatible-with=9`, which 8.x servers refuse, so it would cut off ES 8.

`format` (pure, logpipe/helpers/search_bulk.py) turns events into bulk items; `write`
sends them. Index templates, ILM and data streams: logpipe/helpers/search_setup.py.

Delivery: each document gets a deterministic `_id` (logpipe.helpers.docid) unless
`document_id`/`id_key` say otherwise or `deterministic_id => false`, so a retried or
replayed chunk overwrites (`index`) or is refused as already there (`create` → 409,
counted as delivered) instead of duplicating. Per-item statuses map to the buffer
engine's WriteResult; a failed request means the whole chunk is retried.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable
from typing import Any, ClassVar

from elasticsearch import ApiError, AsyncElasticsearch, TransportError, UnsupportedProductError
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from logpipe.helpers import search_connection as connection
from logpipe.helpers import search_setup as setup
from logpipe.helpers.search_bulk import (
    BulkFormatter,
    BulkSender,
    BulkSettings,
    Response,
    SourceHook,
    describe_error,
    describe_item,
    error_of,
    field_text,
    id_function,
    optional_sprintf,
    update_body_function,
)
from logpipe.helpers.search_connection import SearchConnection, parse_hosts
from logpipe.helpers.search_setup import IndexSetup
from logpipe.plugin import ConfigError, Event, Output, RetryableError, Setting, WriteResult

__all__ = ["ElasticsearchDataStreamOutput", "ElasticsearchOutput", "parse_hosts"]

# elastic-transport logs every request at INFO, thousands a minute for a shipper; keep its
# warnings, unless the user's logging setup chose a level for it.
_transport_log = logging.getLogger("elastic_transport.transport")
if _transport_log.level == logging.NOTSET:
    _transport_log.setLevel(logging.WARNING)
SUPPORTED_MAJORS = (8, 9)


class ElasticsearchOutput(Output):
    name = "elasticsearch"
    doc = ("Indexes events into Elasticsearch 8.x/9.x with the bulk API (templates, ILM, data streams); "
           "deterministic ids make retries idempotent.")
    retryable_errors = (TransportError,)
    helpers = [SearchConnection, BulkSettings, IndexSetup]
    settings: ClassVar[list[Setting]] = [
        Setting("api_key", "string", secret=True, doc="API key: 'id:key' or the base64 encoded form"),
        Setting("cloud_id", "string", doc="Elastic Cloud deployment id (instead of hosts)"),
        Setting("cloud_auth", "string", secret=True, doc="Elastic Cloud 'user:password'"),
        Setting("silence_errors_in_log", "array", default=[], deprecated_alias=("failure_type_logging_whitelist",),
                doc="accepted: failed items are not logged one by one here but dead-lettered with their error"),
        Setting("dlq_custom_codes", "array", default=[],
                doc="accepted: every item status that is not retried (429, 5xx) is dead-lettered already"),
    ]
    #: The server product the client's checks expect (named in errors and logs).
    product = "Elasticsearch"

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        p = self.params
        log = self.log
        connection.warn_deprecated(self, log)
        setup.check_settings(self, log)
        if p["cloud_id"] is None:
            self._hosts = connection.node_urls(self, self.product)
        else:
            self._hosts = []
        if (p["user"] is None) != (p["password"] is None):
            raise ConfigError("user and password go together", setting="user" if p["user"] is None else "password")
        if p["api_key"] is not None and (p["user"] is not None or p["cloud_auth"] is not None):
            raise ConfigError("use either user/password (or cloud_auth) or api_key, not both", setting="api_key")
        if p["cloud_auth"] is not None and ":" not in p["cloud_auth"]:
            raise ConfigError("cloud_auth is 'user:password'", setting="cloud_auth")
        self._ssl_context = connection.ssl_context(self)
        self._action = setup.default_action(p)
        self._formatter = BulkFormatter(
            action=self._action,
            index=self._index_function(),
            ids=id_function(self),
            routing=optional_sprintf(p["routing"], "routing") if p["routing_key"] is None
            else field_text(p["routing_key"]),
            pipeline=optional_sprintf(p["pipeline"], "pipeline"),
            timestamp_key=p["timestamp_key"] or "",
            timestamp_precision=p["time_precision"],
            update_body=update_body_function(self) if self._action == "update" else None,
            retry_on_conflict=p["retry_on_conflict"],
            source_hook=self._source_hook(),
        )
        self._sender = BulkSender(self, log)
        self._setup = setup.Setup(self, log, product=self.product)
        self._client: AsyncElasticsearch | None = None
        self._major = 0

    # ---- configuration ---------------------------------------------------------------

    def _index_function(self) -> Callable[[Event], str]:
        if setup.data_streams_on(self.params):
            self._stream: setup.DataStreamTarget | None = setup.DataStreamTarget(self)
            return self._stream.index
        self._stream = None
        return setup.index_function(self, _strftime_utc)

    def _source_hook(self) -> SourceHook | None:
        """What is added to the record: the data stream fields, Fluentd's include_tag_key."""
        hooks: list[SourceHook] = []
        if self._stream is not None:
            hooks.append(self._stream.source)
        if self.params["include_tag_key"]:
            key = self.params["tag_key"]
            hooks.append(lambda ev, record: record if key in record else {**record, key: ev.tag})
        if not hooks:
            return None
        if len(hooks) == 1:
            return hooks[0]

        def both(ev: Event, record: dict[str, Any]) -> dict[str, Any]:
            for hook in hooks:
                record = hook(ev, record)
            return record

        return both

    def _client_options(self) -> dict[str, Any]:
        p = self.params
        nodes = max(1, len(self._hosts))
        options: dict[str, Any] = {
            "serializers": {"application/json": OrjsonSerializer(), "application/x-ndjson": _PrebuiltNdjson()},
            "request_timeout": p["request_timeout"],
            # The buffer engine owns retries and backoff; the client only fails over to
            # another node within one call.
            "max_retries": nodes - 1,
            "retry_on_status": (),
            "retry_on_timeout": nodes > 1,
            "verify_certs": connection.verify(self),
        }
        if p["cloud_id"] is not None:
            options["cloud_id"] = p["cloud_id"]
        else:
            options["hosts"] = self._hosts
        if self._ssl_context is not None:
            options["ssl_context"] = self._ssl_context
            del options["verify_certs"]
        elif not connection.verify(self):
            options["ssl_show_warn"] = False
        if p["custom_headers"]:
            options["headers"] = {str(k): str(v) for k, v in p["custom_headers"].items()}
        if p["user"] is not None:
            options["basic_auth"] = (p["user"], p["password"])
        elif p["cloud_auth"] is not None:
            options["basic_auth"] = tuple(p["cloud_auth"].split(":", 1))
        if p["api_key"] is not None:
            key = p["api_key"]
            options["api_key"] = tuple(key.split(":", 1)) if ":" in key else key
        return options

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is None:
            self._client = AsyncElasticsearch(**self._client_options())

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._major = 0
            self._setup.done = False

    # ---- format (pure) and write (I/O) -----------------------------------------------

    def format(self, events: list[Event]) -> list[bytes]:
        return self._formatter.format(events)

    def describe(self, item: bytes) -> Any:
        return describe_item(item)

    async def write(self, items: list[bytes]) -> WriteResult | None:
        if not items:
            return None
        if self._client is None:
            await self.start()
        assert self._client is not None
        transport = _EsTransport(self._client, self.product)
        if not self._major:
            await self._check_server()
        if not self._setup.done:
            await self._setup.run(transport, self._major)
        return await self._sender.send(transport, items)

    async def _check_server(self) -> None:
        """Once per connection: name the server in the log and warn about unsupported majors.
        Failing to reach it is a retryable write failure like any other."""
        assert self._client is not None
        try:
            info = (await self._client.info()).body
        except UnsupportedProductError as exc:
            raise RetryableError(f"the server at {', '.join(self._hosts) or 'cloud_id'} is not Elasticsearch "
                                 "(no 'X-Elastic-Product: Elasticsearch' header)") from exc
        except ApiError as exc:
            raise RetryableError(f"server check failed: {describe_error(exc.meta.status, error_of(exc.body))}") \
                from exc
        except TransportError as exc:
            raise RetryableError(f"cannot reach Elasticsearch: {exc}") from exc
        version, major = setup.server_major(info)
        if major not in SUPPORTED_MAJORS:
            self.log.warning("%s: Elasticsearch %s is not supported (supported: 8.x, 9.x)", self.id, version)
        else:
            self.log.info("%s: connected to Elasticsearch %s", self.id, version)
        self._major = major


class ElasticsearchDataStreamOutput(ElasticsearchOutput):
    """fluent-plugin-elasticsearch's `elasticsearch_data_stream` type: the same output, writing
    to the data stream `data_stream_name`."""

    name = "elasticsearch_data_stream"
    settings: ClassVar[list[Setting]] = ElasticsearchOutput.settings + [
        Setting("data_stream_name", "string", required=True, example="logs-app-default",
                doc="the data stream to write to (${tag} placeholders allowed)"),
    ]


class _EsTransport:
    """elasticsearch-py reduced to search_bulk.Transport: error statuses are answers."""

    def __init__(self, client: AsyncElasticsearch, product: str) -> None:
        self._client = client
        self._product = product

    async def request(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                      ndjson: bool = False, compressed: bool = False) -> Response:
        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/x-ndjson" if ndjson else "application/json"
        if compressed:
            headers["content-encoding"] = "gzip"
        try:
            response = await self._client.perform_request(method, path, params=params, headers=headers, body=body)
        except UnsupportedProductError as exc:
            raise RetryableError(f"the server is not {self._product}: {exc}") from exc
        except ApiError as exc:
            return Response(exc.meta.status, exc.body)
        except TransportError as exc:
            raise RetryableError(f"{method} {path.split('?')[0]} failed: {exc}") from exc
        return Response(response.meta.status, response.body)


class _PrebuiltNdjson(NdjsonSerializer):
    """Sends a body built (and maybe gzipped) by the output as it is: the stock serializer
    would copy it and append a newline, which would corrupt a compressed body."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes):
            return data
        return super().dumps(data)


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
