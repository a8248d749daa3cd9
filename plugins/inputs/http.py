"""`http` input: events POSTed over HTTP(S) — Logstash's `http` and Fluentd's `in_http` —
answered only once they are safe.

Acknowledgement, better than both anchors: a request is answered 200 (204 with
`use_204_response`) only after the pipeline's ack contract completed for every event of
the body (delivered by the outputs, or stored by a file buffer). When the pipeline is
full (no room within `emit_timeout`), when the ack does not come within `ack_timeout`, or
when the input is stopping, the answer is 503 with `Retry-After`; beyond
`max_pending_requests` requests (or `max_pending_bytes` of bodies) waiting at once it is
429 with `Retry-After`. A client that retries on those loses nothing (it may send a batch
twice after an ack timeout: at-least-once). A body that cannot be decoded is answered 400
with the reason and counted; nothing of it enters the pipeline.

Bodies: `application/json` (an object, or an array as one batch), `application/x-ndjson`,
`application/msgpack` (an object or an array), Fluentd's form bodies (`json=…` or
`msgpack=…`, urlencoded or multipart), anything else through the codec (Logstash
`codec`, `additional_codecs` by content type) or Fluentd `<parse>`. The tag comes from the
path (`POST /app.access` → tag `app.access`, Fluentd's rule), else `tag`. `?time=` (unix
seconds) sets the event time; a record's numeric `time` does too (and is removed), as in
Fluentd. Logstash shape adds `host` (the client) and `headers`; Fluentd's adds
`add_http_headers` (`HTTP_…` keys) and `add_remote_addr` (`REMOTE_ADDR`). `GET /` is a
health check. Runs on aiohttp.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from typing import Any, ClassVar
from urllib.parse import parse_qs

import msgpack
import orjson
from aiohttp import web

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers import ecs
from logpipe.helpers.http_server import HttpListener, listen
from logpipe.helpers.records import Decoder, make_decoder
from logpipe.helpers.tls import TlsServer
from logpipe.plugin import Codec, Input, InputContext, Setting

#: 1×1 transparent GIF (Fluentd's respond_with_empty_img).
EMPTY_GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
_FLUENTD_ONLY = ("add_http_headers", "add_remote_addr", "cors_allow_origins", "cors_allow_credentials",
                 "respond_with_empty_img", "body_size_limit", "keepalive_timeout", "use_204_response", "parse")
_JSON_TYPES = ("application/json", "text/json")
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonlines", "application/json-lines")
_MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NS = 1_000_000_000


class BadBody(Exception):
    """The body cannot become events: answered 400 with this reason."""


class HttpInput(Input):
    name = "http"
    doc = "HTTP(S) server for POSTed events (Logstash http, Fluentd in_http); answers after the ack"
    helpers = [TlsServer]
    settings: ClassVar[list[Setting]] = [
        Setting("host", "string", default="0.0.0.0", spellings=("bind",), doc="address to listen on"),
        Setting("port", "int", min=0, max=65535, doc="port (8080; 9880 in a Fluentd config; 0: a free one)"),
        Setting("max_connections", "int", default=1024, min=0,
                doc="open connections at once; more are closed at once (0: unlimited)"),
        Setting("user", "string", doc="require HTTP basic auth with this user (and password)"),
        Setting("password", "string", secret=True, doc="password of user"),
        Setting("response_headers", "hash", default={}, doc="headers added to every response"),
        Setting("response_code", "int", default=200, choices=(200, 201, 202, 204), doc="status of a success"),
        Setting("max_content_length", "bytes", default=100 * 1024 * 1024, min=1, spellings=("body_size_limit",),
                doc="largest body; bigger is answered 413"),
        Setting("additional_codecs", "hash", default={"application/json": "json"},
                doc="content type → codec name for bodies of that type"),
        Setting("max_pending_requests", "int", default=200, min=1,
                doc="requests waiting for their ack at once; more are answered 429"),
        Setting("max_pending_bytes", "bytes", default=256 * 1024 * 1024, min=1024,
                doc="bytes of bodies waiting for their ack at once; more are answered 429"),
        Setting("emit_timeout", "duration", default=5.0, min=0.001,
                doc="wait this long for room in the pipeline, then answer 503"),
        Setting("ack_timeout", "duration", default=60.0, min=0.001,
                doc="wait this long for the outputs' ack, then answer 503 (the client retries)"),
        Setting("request_timeout", "duration", default=30.0, min=0.001,
                doc="time allowed to receive a body (slow clients get 408)"),
        Setting("retry_after", "int", default=1, min=0, doc="seconds in the Retry-After header of 429/503"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="v1/v8: request details under [http], [url], [user_agent] instead of [headers]"),
        Setting("add_http_headers", "bool", default=False, doc="Fluentd: add request headers as HTTP_* keys"),
        Setting("add_remote_addr", "bool", default=False, doc="Fluentd: add the client as REMOTE_ADDR"),
        Setting("cors_allow_origins", "array", default=[], doc="origins allowed by CORS (`*` for any)"),
        Setting("cors_allow_credentials", "bool", default=False, doc="CORS: allow credentials"),
        Setting("respond_with_empty_img", "bool", default=False, doc="answer successes with a 1x1 GIF"),
        Setting("use_204_response", "bool", default=False, doc="answer successes 204 No Content"),
        Setting("keepalive_timeout", "duration", default=10.0, min=0, doc="idle keep-alive connections close after"),
        Setting("parse", "hash", doc="Fluentd <parse> for bodies that are neither JSON nor msgpack"),
    ]
    host: str
    port: int
    max_connections: int
    user: str | None
    password: str | None
    response_headers: dict[str, str]
    response_code: int
    max_content_length: int
    additional_codecs: dict[str, str]
    max_pending_requests: int
    max_pending_bytes: int
    emit_timeout: float
    ack_timeout: float
    request_timeout: float
    retry_after: int
    ecs_compatibility: str
    add_http_headers: bool
    add_remote_addr: bool
    cors_allow_origins: list[str]
    cors_allow_credentials: bool
    respond_with_empty_img: bool
    use_204_response: bool
    keepalive_timeout: float

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.fluentd = any(k in settings for k in _FLUENTD_ONLY) or "bind" in settings
        if self.port is None:
            self.port = 9880 if self.fluentd else 8080
        if (self.user is None) != (self.password is None):
            raise ConfigError("basic auth needs both 'user' and 'password'",
                              setting="password" if self.user else "user")
        self._auth = None
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            self._auth = f"Basic {token}"
        from logpipe.registry import create

        self._codecs: dict[str, Decoder] = {}
        for ctype, name in dict(self.additional_codecs).items():
            try:
                codec = create("codec", str(name))
                assert isinstance(codec, Codec)
            except ConfigError as exc:
                raise ConfigError(exc.message, setting="additional_codecs") from None
            self._codecs[str(ctype).lower()] = make_decoder(codec, None, self.metrics)
        codec_obj: Codec | None = self.params.get("codec")
        self._default = make_decoder(codec_obj, self.params["parse"], self.metrics)
        self._whole_body = self.params["parse"] is None and (codec_obj is None or codec_obj.name in ("plain", "json"))
        self._ssl = TlsServer.context(self)
        self._ctx: InputContext | None = None
        self._listener: HttpListener | None = None
        self._stopping = False
        self._pending = 0
        self._pending_bytes = 0
        self._bound = 0
        self._bad = self.metrics.counter("http_bad_requests", "bodies refused with 400")
        self._refused = self.metrics.counter("http_refused", "requests answered 429/503")
        self._over_limit = self.metrics.counter("protocol_errors", "connections closed for a protocol error",
                                                reason="max_connections")
        self._waiting = self.metrics.gauge("http_pending_requests", "requests waiting for their ack")

    @property
    def bound_port(self) -> int:
        return self._bound

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_content_length)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        try:
            self._listener = await listen(app, self.host, self.port, ssl_context=self._ssl,
                                          max_connections=self.max_connections,
                                          idle_timeout=self.keepalive_timeout, on_refused=self._over_limit.inc)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc}", setting="port") from exc
        self._bound = self._listener.port

    async def run(self, ctx: InputContext) -> None:
        self._ctx = ctx
        try:
            await asyncio.Future()
        finally:
            self._stopping = True

    async def close(self) -> None:
        self._stopping = True
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    # ---- one request ------------------------------------------------------------------

    def _headers(self, request: web.Request) -> dict[str, str]:
        headers = dict(self.response_headers)
        origin = request.headers.get("Origin")
        allowed = self.cors_allow_origins
        if origin and allowed and ("*" in allowed or origin in allowed):
            headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed and not self.cors_allow_credentials \
                else origin
            if self.cors_allow_credentials:
                headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def _refuse(self, status: int, reason: str, request: web.Request) -> web.Response:
        self._refused.inc()
        headers = self._headers(request)
        headers["Retry-After"] = str(self.retry_after)
        return web.Response(status=status, text=reason + "\n", headers=headers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = self._headers(request)
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "POST, PUT, GET, OPTIONS"
            headers["Access-Control-Allow-Headers"] = request.headers.get("Access-Control-Request-Headers", "*")
            return web.Response(status=200, headers=headers)
        if self._auth is not None and not hmac.compare_digest(request.headers.get("Authorization", ""), self._auth):
            headers["WWW-Authenticate"] = 'Basic realm="logpipe"'
            return web.Response(status=401, text="authentication required\n", headers=headers)
        path = request.path.strip("/")
        if request.method in ("GET", "HEAD") and not path and not request.query:
            return web.Response(status=200, text="ok\n", headers=headers)
        if self._stopping or self._ctx is None:
            return self._refuse(503, "logpipe is stopping", request)
        size = request.content_length or 0
        if self._pending >= self.max_pending_requests or self._pending_bytes + size > self.max_pending_bytes:
            return self._refuse(429, "too many requests waiting for their acknowledgement", request)
        self._pending += 1
        self._pending_bytes += size
        self._waiting.set(self._pending)
        try:
            return await self._accept(request, path, headers)
        finally:
            self._pending -= 1
            self._pending_bytes -= size
            self._waiting.set(self._pending)

    async def _accept(self, request: web.Request, path: str, headers: dict[str, str]) -> web.StreamResponse:
        try:
            async with asyncio.timeout(self.request_timeout):
                body = await request.read()
        except TimeoutError:
            return web.Response(status=408, text="request body too slow\n", headers=headers)
        except web.HTTPRequestEntityTooLarge:
            self._bad.inc()
            return web.Response(status=413, text=f"body larger than {self.max_content_length} bytes\n",
                                headers=headers)
        try:
            events = self._events(request, path, body)
        except BadBody as exc:
            self._bad.inc()
            return web.Response(status=400, text=f"{exc}\n", headers=headers)
        done = asyncio.get_running_loop().create_future()

        def on_ack() -> None:
            if not done.done():
                done.set_result(None)

        assert self._ctx is not None
        try:
            async with asyncio.timeout(self.emit_timeout):
                await self._ctx.emit(events, on_ack)
        except TimeoutError:
            return self._refuse(503, "the pipeline is full", request)
        except RuntimeError:  # the pipeline stopped taking batches
            return self._refuse(503, "logpipe is stopping", request)
        try:
            async with asyncio.timeout(self.ack_timeout):
                await done
        except TimeoutError:
            return self._refuse(503, "the outputs did not acknowledge in time", request)
        if self.respond_with_empty_img:
            return web.Response(status=200, body=EMPTY_GIF, content_type="image/gif", headers=headers)
        status = 204 if self.use_204_response else self.response_code
        return web.Response(status=status, text=None if status == 204 else "ok", headers=headers)

    # ---- body → events ------------------------------------------------------------------

    def _events(self, request: web.Request, path: str, body: bytes) -> list[Event]:
        ctype = request.content_type.lower()
        query = request.query
        records: list[tuple[int | None, dict[str, Any]]]
        if ctype in _FORM_TYPES or "json" in query or "msgpack" in query:
            records = self._form(ctype, body, query)
        elif ctype in self._codecs and ctype not in _JSON_TYPES:
            records = self._codecs[ctype](self._lines(body))
        elif ctype in _JSON_TYPES:
            records = _records(_load(orjson.loads, body, "JSON"))
        elif ctype in _NDJSON_TYPES:
            records = [r for line in body.splitlines() if line.strip()
                       for r in _records(_load(orjson.loads, line, "JSON line"))]
        elif ctype in _MSGPACK_TYPES:
            records = _records(_load(_unpack, body, "msgpack"))
        else:
            records = self._default(self._lines(body))
        time_param = query.get("time")
        base = _time_param(time_param) if time_param is not None else None
        tag = path.replace("/", ".") if path else self.event_tag
        remote = request.remote or ""
        decorate = self._decorator(request, remote)
        events = []
        for t, record in records:
            if "time" in record and type(record["time"]) in (int, float):
                t = int(record.pop("time") * NS)
            ev = Event(tag, t if t is not None else base, record)
            decorate(ev)
            events.append(ev)
        return events

    def _lines(self, body: bytes) -> list[str]:
        text = body.decode("utf-8", "replace")
        if self._whole_body:
            return [text]  # Logstash: one event per request body with plain/json codecs
        return text.splitlines()

    def _form(self, ctype: str, body: bytes, query: Any) -> list[tuple[int | None, dict[str, Any]]]:
        """Fluentd's `json=` / `msgpack=` parameters (form body or query string)."""
        params: dict[str, list[str]] = {}
        if ctype == "application/x-www-form-urlencoded":
            params = parse_qs(body.decode("utf-8", "replace"))
        elif ctype == "multipart/form-data":
            raise BadBody("multipart bodies are not supported: send json= urlencoded or a raw JSON body")
        for key in ("json", "msgpack"):
            if key not in params and key in query:
                params[key] = [query[key]]
        if "json" in params:
            return _records(_load(orjson.loads, params["json"][0].encode(), "json= parameter"))
        if "msgpack" in params:
            return _records(_load(_unpack, params["msgpack"][0].encode("latin-1", "replace"), "msgpack= parameter"))
        if not self.fluentd:  # Logstash: a form body is text like any other (curl -d sends this type)
            return self._default(self._lines(body))
        raise BadBody("form body needs a json= or msgpack= parameter")

    def _decorator(self, request: web.Request, remote: str) -> Any:
        if self.fluentd:
            extra: dict[str, Any] = {}
            if self.add_http_headers:
                extra.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.headers.items()})
            if self.add_remote_addr:
                extra["REMOTE_ADDR"] = request.headers.get("X-Forwarded-For", remote).split(",")[0].strip()

            def fluentd(ev: Event) -> None:
                if extra:
                    ev.record.update(extra)

            return fluentd
        if self.ecs_compatibility != "disabled":
            url = {"path": request.path, "domain": request.host.split(":")[0]}
            if request.query_string:
                url["query"] = request.query_string
            version = f"{request.version.major}.{request.version.minor}"
            http: dict[str, Any] = {"method": request.method, "version": version,
                                    "request": {"mime_type": request.content_type,
                                                "body": {"bytes": request.content_length or 0}}}
            agent = request.headers.get("User-Agent")

            def ecs(ev: Event) -> None:
                r = ev.record
                r.setdefault("host", {"ip": remote})
                r.setdefault("url", dict(url))
                r.setdefault("http", {**http, "request": dict(http["request"])})
                if agent is not None:
                    r.setdefault("user_agent", {"original": agent})

            return ecs
        headers = {"request_method": request.method, "request_path": request.path,
                   "request_uri": request.path_qs, "http_version": f"HTTP/{request.version.major}."
                                                                     f"{request.version.minor}"}
        for key, value in request.headers.items():
            name = key.lower().replace("-", "_")
            headers[name if name in ("content_type", "content_length") else "http_" + name] = value

        def legacy(ev: Event) -> None:
            r = ev.record
            r.setdefault("host", remote)
            r.setdefault("headers", dict(headers))

        return legacy


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _load(loads: Any, data: bytes, what: str) -> Any:
    try:
        return loads(data)
    except Exception as exc:  # noqa: BLE001 - any decoding error is the body's fault
        raise BadBody(f"invalid {what}: {exc}") from None


def _records(value: Any) -> list[tuple[int | None, dict[str, Any]]]:
    """An object is one event, an array of objects one batch."""
    if type(value) is dict:
        return [(None, value)]
    if type(value) is list:
        if not all(type(v) is dict for v in value):
            raise BadBody("an array body must hold only objects")
        return [(None, v) for v in value]
    raise BadBody(f"expected an object or an array of objects, got {type(value).__name__}")


def _time_param(text: str) -> int:
    try:
        return int(float(text) * NS)
    except ValueError:
        raise BadBody(f"time= must be unix seconds, got {text!r}") from None
