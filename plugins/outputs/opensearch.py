"""OpenSearch output (Logstash's logstash-output-opensearch, Fluentd's fluent-plugin-opensearch)
on opensearch-py: elasticsearch-py refuses any server that does not send
`X-Elastic-Product: Elasticsearch`, which OpenSearch never does.

The documents, bulk requests, per-item outcomes, templates and data streams are the
Elasticsearch output's, from the same helpers (logpipe/helpers/search_bulk.py,
search_setup.py, search_connection.py); this module is the client. ILM is Elasticsearch's:
OpenSearch manages index lifecycles with ISM policies, so the ilm_* settings are refused here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OsConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from logpipe.helpers import search_connection as connection
from logpipe.helpers import search_setup as setup
from logpipe.helpers.search_bulk import (
    BulkFormatter,
    BulkSender,
    BulkSettings,
    Response,
    describe_item,
    field_text,
    id_function,
    optional_sprintf,
    update_body_function,
)
from logpipe.helpers.search_connection import SearchConnection
from logpipe.helpers.search_setup import IndexSetup
from logpipe.plugin import ConfigError, Event, Output, RetryableError, Setting, WriteResult


class OpensearchOutput(Output):
    name = "opensearch"
    doc = "Indexes events into OpenSearch 1.x/2.x/3.x with the bulk API (templates, data streams), on opensearch-py."
    retryable_errors = (OsConnectionError, ConnectionTimeout)
    helpers = [SearchConnection, BulkSettings, IndexSetup]
    settings: ClassVar[list[Setting]] = [
        Setting("auth_type", "hash", default={},
                doc="Logstash: {type => basic, user, password}; aws_iam is not supported"),
    ]

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        p = self.params
        connection.warn_deprecated(self, self.log)
        setup.check_settings(self, self.log)
        if setup.ilm_on(p) or p["ilm_enabled"] == "true":
            raise ConfigError("OpenSearch has no ILM (it uses ISM policies): remove the ilm_* settings",
                              setting=self.setting_name("ilm_enabled"))
        auth = {str(k): v for k, v in p["auth_type"].items()}
        if auth and str(auth.get("type", "basic")) != "basic":
            raise ConfigError(f"auth_type {auth.get('type')!r} is not supported (basic only)", setting="auth_type")
        self._user = p["user"] or (str(auth["user"]) if "user" in auth else None)
        self._password = p["password"] or (str(auth["password"]) if "password" in auth else None)
        self._hosts = connection.node_urls(self, "OpenSearch")
        self._ssl_context = connection.ssl_context(self)
        action = setup.default_action(p)
        stream = setup.DataStreamTarget(self) if setup.data_streams_on(p) else None
        include_tag = p["include_tag_key"]
        tag_key = p["tag_key"]

        def source(ev: Event, record: dict[str, Any]) -> dict[str, Any]:
            if stream is not None:
                record = stream.source(ev, record)
            return record if not include_tag or tag_key in record else {**record, tag_key: ev.tag}

        self._formatter = BulkFormatter(
            action=action,
            index=stream.index if stream is not None else setup.index_function(self, _strftime),
            ids=id_function(self),
            routing=optional_sprintf(p["routing"], "routing") if p["routing_key"] is None
            else field_text(p["routing_key"]),
            pipeline=optional_sprintf(p["pipeline"], "pipeline"),
            timestamp_key=p["timestamp_key"] or "",
            timestamp_precision=p["time_precision"],
            update_body=update_body_function(self) if action == "update" else None,
            retry_on_conflict=p["retry_on_conflict"],
            source_hook=source if stream is not None or include_tag else None,
        )
        self._sender = BulkSender(self, self.log)
        self._setup = setup.Setup(self, self.log, product="OpenSearch")
        self._client: AsyncOpenSearch | None = None
        self._major = 0

    async def start(self) -> None:
        if self._client is not None:
            return
        p = self.params
        options: dict[str, Any] = {
            "hosts": self._hosts, "timeout": p["request_timeout"], "max_retries": len(self._hosts) - 1,
            "retry_on_timeout": len(self._hosts) > 1, "verify_certs": connection.verify(self),
        }
        if self._ssl_context is not None:
            options["ssl_context"] = self._ssl_context
        if not connection.verify(self):
            options["ssl_show_warn"] = False
        if self._user is not None:
            options["http_auth"] = (self._user, self._password or "")
        if p["custom_headers"]:
            options["headers"] = {str(k): str(v) for k, v in p["custom_headers"].items()}
        self._client = AsyncOpenSearch(**options)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._major = 0
            self._setup.done = False

    def format(self, events: list[Event]) -> list[bytes]:
        return self._formatter.format(events)

    def describe(self, item: bytes) -> Any:
        return describe_item(item)

    async def write(self, items: list[bytes]) -> WriteResult | None:
        if not items:
            return None
        await self.start()
        assert self._client is not None
        transport = _OsTransport(self._client)
        if not self._major:
            info = await transport.request("GET", "/")
            if info.status >= 300:
                raise RetryableError(f"OpenSearch server check failed: status {info.status}")
            version, self._major = setup.server_major(info.body)
            distribution = (info.body.get("version") or {}).get("distribution", "elasticsearch")
            self.log.info("%s: connected to %s %s", self.id, distribution, version)
        if not self._setup.done:
            # OpenSearch 1.x and 2.x both have composable templates (what ES 8 means by 'auto').
            await self._setup.run(transport, 8)
        return await self._sender.send(transport, items)


class _OsTransport:
    """opensearch-py reduced to search_bulk.Transport."""

    def __init__(self, client: AsyncOpenSearch) -> None:
        self._client = client

    async def request(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                      ndjson: bool = False, compressed: bool = False) -> Response:
        headers = {"content-type": "application/x-ndjson" if ndjson else "application/json"}
        if compressed:
            headers["content-encoding"] = "gzip"
        try:
            result = await self._client.transport.perform_request(method, path, params=params, body=body,
                                                                  headers=headers)
        except (OsConnectionError, ConnectionTimeout) as exc:
            raise RetryableError(f"{method} {path} failed: {exc}") from exc
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 599
            return Response(status, exc.info)
        if method == "HEAD":
            return Response(200 if result else 404, None)
        return Response(200, result)


def _strftime(pattern: str) -> Callable[[int], str]:
    return lambda ns: time.strftime(pattern, time.gmtime(ns // 1_000_000_000))
