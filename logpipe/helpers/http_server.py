"""logpipe's one HTTP server stack: an aiohttp application served with the bounds every
listening endpoint needs (the `http` input, the daemon's HTTP API).

aiohttp parses HTTP (request line, headers, chunked bodies, keep-alive) and answers
malformed requests with 400 by itself; what it lacks is a cap on connections, so the
listener is made here with a protocol factory that closes a connection over the cap as
soon as it is made. aiohttp (≥ 3.14) also closes a connection that sends no complete
request within `idle_timeout` — the slow-header ("slowloris") bound.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, MutableMapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

#: aiohttp's own per-line and per-header limits (bytes), kept explicit: a request head is
#: at most MAX_HEADERS × MAX_FIELD_BYTES.
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 128


class _ClientErrorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp logs a client's malformed request ("Error handling request", with the
    parser's traceback) at ERROR. The client already got its 400; for the operator it is
    a DEBUG line without a traceback, so a stray or hostile client cannot fill the log.
    Anything else (an exception in a handler: logpipe's own bug) keeps its level and
    traceback."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            kwargs["exc_info"] = None
            msg, args = f"{msg}: %s", (*args, str(exc).strip().splitlines()[0])
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


_CLIENT_ERRORS = _ClientErrorLog(logging.getLogger("logpipe.http.clients"), {})


class _Refused(asyncio.Protocol):
    """A connection over the limit: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class HttpListener:
    """One aiohttp application listening on one address."""

    def __init__(self, runner: web.AppRunner, server: asyncio.Server) -> None:
        self._runner = runner
        self._server = server
        name = server.sockets[0].getsockname()
        self.address: tuple[str, int] = (str(name[0]), int(name[1]))

    @property
    def port(self) -> int:
        return self.address[1]

    def connections(self) -> int:
        handlers = self._runner.server
        return len(handlers.connections) if handlers is not None else 0

    async def close(self) -> None:
        """Stop listening, then let aiohttp finish (or cut, after its shutdown timeout) the
        requests in flight."""
        self._server.close()
        await self._runner.cleanup()


async def listen(app: web.Application, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                 max_connections: int = 0, idle_timeout: float = 75.0,
                 on_refused: Callable[[], None] | None = None, shutdown_timeout: float = 1.0) -> HttpListener:
    """Serve `app` on host:port (0: any free port). Beyond `max_connections` open
    connections (0: no cap) a new one is closed at once and `on_refused` is called.
    `idle_timeout` closes a connection that has no request in progress for that long,
    the first request included. Raises OSError when the address cannot be bound."""
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout, handle_signals=False,
                           shutdown_timeout=shutdown_timeout, max_field_size=MAX_FIELD_BYTES,
                           max_line_size=MAX_FIELD_BYTES, max_headers=MAX_HEADERS, logger=_CLIENT_ERRORS)
    await runner.setup()
    handlers = runner.server
    assert handlers is not None

    def protocol() -> asyncio.BaseProtocol:
        if max_connections and len(handlers.connections) >= max_connections:
            if on_refused is not None:
                on_refused()
            return _Refused()
        return handlers()

    try:
        server = await asyncio.get_running_loop().create_server(protocol, host, port, ssl=ssl_context,
                                                                reuse_address=True)
    except BaseException:
        await runner.cleanup()
        raise
    return HttpListener(runner, server)
