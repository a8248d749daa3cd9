"""The daemon's HTTP API: liveness, readiness, Prometheus metrics and JSON stats.

    GET /healthz   200 while the event loop answers (liveness: restart me if this fails)
    GET /readyz    200 when the pipeline runs and no input failed; 503 otherwise and
                   during a reload (readiness: do not count on me right now)
    GET /metrics   Prometheus text format: every counter and gauge in logpipe.metrics,
                   the derived logpipe_events_out_total, the daemon's own gauges and the
                   standard process_* metrics (RSS, CPU, open fds)
    GET /stats     JSON: pipeline and per-output buffer stats, uptime, config sources,
                   last reload result

It runs on logpipe's one HTTP stack (`logpipe.helpers.http_server`: aiohttp with a
connection cap and an idle/slow-request timeout), so a scraper or a stray client can never
hold the daemon up. The request handling itself (`HttpApi.handle`) is a plain function of
method and path, tested without sockets. The Prometheus exposition is rendered by `prometheus_client`, so
escaping and the format's corner cases are the reference implementation's.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector

from logpipe.errors import LogpipeError
from logpipe.helpers.http_server import HttpListener, listen
from logpipe.metrics import REGISTRY, Registry

log = logging.getLogger("logpipe.http")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9600
#: Without an explicit --http-port, the first free port of 9600-9700, as Logstash does: a
#: second logpipe on the host (a one-off `logpipe run`, a test) must not fail for the port.
DEFAULT_PORTS = range(DEFAULT_PORT, DEFAULT_PORT + 101)
#: Bodies are not expected (every endpoint is a GET): a larger one is refused with 413.
MAX_REQUEST_BYTES = 16 * 1024
#: A connection with no request in progress for this long is closed (slow or idle clients).
REQUEST_TIMEOUT = 10.0
#: Scrapers, probes and taps at once; a connection beyond it is closed when it is made.
MAX_CONNECTIONS = 64
DELIVERED = "logpipe_output_events_delivered_total"
#: The classic text format that generate_latest writes; every Prometheus version scrapes it.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class DaemonView(Protocol):
    """What the API reads from the daemon; logpipe.daemon.Daemon provides it."""

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): the reason is shown in the /readyz body."""
        ...

    def stats(self) -> dict[str, Any]:
        """The /stats document (JSON-serialisable; other values are rendered with str)."""
        ...

    def gauges(self) -> Iterable[tuple[str, str, float]]:
        """The daemon's own gauges as (name, help, value): ready, uptime, last reload …"""
        ...


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class HttpApi:
    """Serves the four endpoints for one daemon. `start` binds (raising a LogpipeError
    that says what to do when the address is taken), `close` stops listening."""

    def __init__(self, view: DaemonView, registry: Registry = REGISTRY) -> None:
        self.view = view
        self._prometheus = CollectorRegistry(auto_describe=False)
        self._prometheus.register(_LogpipeCollector(registry, view))
        ProcessCollector(registry=self._prometheus)
        self._listener: HttpListener | None = None
        self._refused = registry.counter("logpipe_http_api_refused_connections_total",
                                         "HTTP API connections closed at once: over the connection cap")
        self.address: tuple[str, int] | None = None

    # ---- request handling (no sockets) ----------------------------------------

    def handle(self, method: str, target: str) -> Response:
        path = target.split("?", 1)[0]
        route = self._routes.get(path)
        if route is None:
            return Response(404, b"not found; endpoints: /healthz /readyz /metrics /stats /tap\n")
        if method not in ("GET", "HEAD"):
            return Response(405, b"only GET is supported\n")
        try:
            return route(self)
        except Exception:
            log.exception("HTTP %s %s failed", method, path)
            return Response(500, b"internal error; see the logpipe log\n")

    def _healthz(self) -> Response:
        return Response(200, b"ok\n")

    def _readyz(self) -> Response:
        ready, reason = self.view.readiness()
        return Response(200 if ready else 503, reason.encode() + b"\n")

    def _metrics(self) -> Response:
        return Response(200, generate_latest(self._prometheus), PROMETHEUS_TEXT)

    def _stats(self) -> Response:
        body = orjson.dumps(self.view.stats(), default=str,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
        return Response(200, body, "application/json")

    _routes = {"/healthz": _healthz, "/readyz": _readyz, "/metrics": _metrics, "/stats": _stats}

    async def _tap(self, target: str) -> Response:
        """GET /tap?id=FILTER&limit=N&sample=N&wait=S: a long poll (logpipe.tap)."""
        from logpipe.tap import TapRequestError, parse_query, tap

        try:
            plugin_id, limit, sample, wait = parse_query(target)
            body = await tap(getattr(self.view, "pipeline", None), plugin_id, limit, sample, wait)
        except TapRequestError as exc:
            return Response(exc.status, str(exc).encode() + b"\n")
        return Response(200, body, "application/x-ndjson")

    # ---- the server --------------------------------------------------------------

    async def start(self, host: str = DEFAULT_HOST, ports: Sequence[int] = (DEFAULT_PORT,)) -> tuple[str, int]:
        """Listen on the first port of `ports` that is free (0: any free port); returns the
        address bound. Only "address in use" moves on to the next port: any other error,
        or every port taken, is a LogpipeError that says what to do."""
        if not ports:
            raise ValueError("no port to listen on")
        for port in ports:
            app = web.Application(client_max_size=MAX_REQUEST_BYTES)
            app.router.add_route("*", "/{path:.*}", self._serve)
            try:
                self._listener = await listen(app, host, port, max_connections=MAX_CONNECTIONS,
                                              idle_timeout=REQUEST_TIMEOUT, on_refused=self._refused.inc)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and port != ports[-1]:
                    continue
                raise LogpipeError(_bind_error(host, ports, exc)) from None
            break
        assert self._listener is not None
        self.address = self._listener.address
        return self.address

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def _serve(self, request: web.Request) -> web.Response:
        if request.path == "/tap" and request.method == "GET":
            response = await self._tap(request.path_qs)
        else:
            response = self.handle(request.method, request.path_qs)
        return web.Response(status=response.status, body=response.body,
                            headers={"Content-Type": response.content_type, "Cache-Control": "no-store"})


def _bind_error(host: str, ports: Sequence[int], exc: OSError) -> str:
    where = f"{host}:{ports[0]}" if len(ports) == 1 else f"{host}, ports {ports[0]}-{ports[-1]}"
    if exc.errno == errno.EADDRINUSE:
        taken = "the address is" if len(ports) == 1 else "every port is"
        return (f"cannot start the HTTP API on {where}: {taken} already in use (another logpipe?); "
                "choose another port with --http-port, or disable the API with --no-http")
    if exc.errno == errno.EACCES:
        return f"cannot start the HTTP API on {where}: permission denied (ports below 1024 need privileges)"
    return f"cannot start the HTTP API on {where}: {exc.strerror or exc}"


class _LogpipeCollector:
    """logpipe.metrics as Prometheus metric families, read at scrape time.

    logpipe's registry does not record a type: by the Prometheus naming convention a
    name ending in `_total` is a counter, anything else a gauge.
    """

    def __init__(self, registry: Registry, view: DaemonView) -> None:
        self._registry = registry
        self._view = view
        self._skipped: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        delivered = 0.0
        for item in self._registry:
            family = families.get(item.name)
            if family is None:
                family = self._family(item.name, self._registry.help(item.name))
                if family is None:
                    continue
                families[item.name] = family
            family.add_sample(item.name, dict(item.labels), item.value)
            if item.name == DELIVERED:
                delivered += item.value
        yield from families.values()
        out = self._family("logpipe_events_out_total", "events delivered by all outputs (sum of "
                           f"{DELIVERED})")
        assert out is not None
        out.add_sample("logpipe_events_out_total", {}, delivered)
        yield out
        for name, doc, value in self._view.gauges():
            gauge = self._family(name, doc)
            if gauge is not None:
                gauge.add_sample(name, {}, value)
                yield gauge
        labelled: dict[str, Metric] = {}
        for name, doc, labels, value in getattr(self._view, "labelled_gauges", lambda: ())():
            family = labelled.get(name) or self._family(name, doc)
            if family is not None:
                labelled[name] = family
                family.add_sample(name, labels, value)
        yield from labelled.values()

    def _family(self, name: str, doc: str) -> Metric | None:
        try:
            if name.endswith("_total"):
                return Metric(name[: -len("_total")], doc or name, "counter")
            return Metric(name, doc or name, "gauge")
        except ValueError:
            if name not in self._skipped:
                self._skipped.add(name)
                log.warning("metric %r has an invalid Prometheus name; it is left out of /metrics", name)
            return None
