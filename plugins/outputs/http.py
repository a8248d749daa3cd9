"""`http` output: Logstash's http output, Fluentd's out_http, Fluent Bit's http.

`format` decides the requests: `json` sends one request per event (Logstash's default),
`json_batch` one JSON array per chunk and URL (Fluentd's `<format> json` with
`json_array true`, Fluent Bit's `json`), `ndjson` one document per line (Fluent Bit's
`json_lines`), `msgpack` concatenated msgpack maps. `url` is sprintf'd per event, so one
chunk may become a request per distinct URL. The reply decides each event's fate (see
logpipe/helpers/http_client.py): 2xx delivered, 429/5xx retried after `Retry-After`,
other 4xx dead-lettered with the status and the start of the body.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any, ClassVar

import msgpack
import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event, event_document
from logpipe.fields import compile_sprintf
from logpipe.helpers.http_client import HttpClient, HttpSession, Reply, reason
from logpipe.jsonvalues import json_default, msgpack_default
from logpipe.plugin import Output, Setting, WriteResult

FORMATS = ("json", "json_batch", "ndjson", "msgpack")
_CONTENT_TYPES = {"json": "application/json", "json_batch": "application/json",
                  "ndjson": "application/x-ndjson", "msgpack": "application/msgpack"}
_SPELLINGS = {"json_lines": "ndjson", "json_stream": "ndjson"}


def encode_document(event: Event, fmt: str) -> bytes:
    """One event's bytes in the request body (pure: the output API's per-event `format`)."""
    doc = event_document(event)
    if fmt == "msgpack":
        return msgpack.packb(doc, use_bin_type=True, default=msgpack_default)
    return orjson.dumps(doc, default=json_default)


def join_body(items: list[bytes], fmt: str) -> bytes:
    """The request body of several encoded events."""
    if fmt == "json_batch":
        return b"[" + b",".join(items) + b"]"
    if fmt == "ndjson":
        return b"\n".join(items) + b"\n"
    return b"".join(items)


class HttpOutput(Output):
    name = "http"
    doc = "HTTP(S) requests: json per event, json_batch, ndjson or msgpack bodies; retries 429/5xx"
    helpers = [HttpClient]
    settings: ClassVar[list[Setting]] = [
        Setting("url", "string", required=True, spellings=("endpoint",), doc="request URL (sprintf)"),
        Setting("http_method", "string", default="post", choices=("post", "put", "patch", "POST", "PUT", "PATCH"),
                doc="request method"),
        Setting("format", "string", default="json", doc="json | json_batch | ndjson (json_lines) | msgpack"),
        Setting("json_array", "bool", default=False, doc="Fluentd: one JSON array per request (= json_batch)"),
        Setting("content_type", "string", doc="Content-Type header (default: by format)"),
        Setting("http_compression", "bool", default=False, doc="gzip the body (Content-Encoding: gzip)"),
        Setting("compress", "string", default="", choices=("", "text", "gzip"), doc="Fluentd/Fluent Bit: gzip"),
    ]
    url: str
    http_method: str
    content_type: str | None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        fmt = _SPELLINGS.get(self.params["format"], self.params["format"])
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, json_lines; got {fmt!r}",
                              setting="format")
        if self.params["json_array"]:
            fmt = "json_batch"
        self.fmt: str = fmt
        self._url = compile_sprintf(self.url)
        self._method = self.http_method.upper()
        self._gzip = self.params["http_compression"] or self.params["compress"] == "gzip"
        self._headers = {"Content-Type": self.content_type or _CONTENT_TYPES[fmt]}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self.http = HttpSession(self)

    async def close(self) -> None:
        await self.http.close()

    async def write(self, events: list[Event]) -> WriteResult | None:
        if not events:
            return None
        items = [encode_document(ev, self.fmt) for ev in events]
        requests: list[tuple[str, list[int]]] = []
        if self.fmt == "json":
            requests = [(self._url(ev), [i]) for i, ev in enumerate(events)]
        else:
            by_url: dict[str, list[int]] = {}
            for i, ev in enumerate(events):
                by_url.setdefault(self._url(ev), []).append(i)
            requests = list(by_url.items())
        replies = await asyncio.gather(*(
            self._request(url, join_body([items[i] for i in indexes], self.fmt)) for url, indexes in requests))
        retry: list[int] = []
        failed: list[tuple[int, str]] = []
        waiting: list[Reply] = []
        for (_, indexes), reply in zip(requests, replies, strict=True):
            outcome = self.http.outcome(reply)
            if outcome == "retry":
                retry.extend(indexes)
                waiting.append(reply)
            elif outcome == "failed":
                failed.extend((i, reason(reply)) for i in indexes)
        if waiting:
            self.log.warning("http %s: %d request(s) answered %s; retrying", self.url, len(waiting),
                             sorted({r.status for r in waiting}))
            await self.http.honour_retry_after(waiting)
        return WriteResult(retry=sorted(retry), failed=failed) if retry or failed else None

    async def _request(self, url: str, body: bytes) -> Reply:
        if self._gzip:
            body = gzip.compress(body, compresslevel=6, mtime=0)
        return await self.http.send(self._method, url, body, self._headers)
