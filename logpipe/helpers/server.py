"""The TCP(+TLS) listener under the network inputs (forward, beats, syslog, tcp, http …).

`Server` is the helper that declares the listening settings once (`host`, Fluentd's
`bind`; `port`; `max_connections`); `ServerInput` is the input base built on it and on
`TlsServer`, so a new listening input is its protocol and nothing else:

    class LineInput(ServerInput):
        name = "lines"
        default_port = 5140                        # the `port` default of this input
        settings = [Setting("max_line", "bytes", default="64k", min=1)]

        async def _connection(self, reader, writer, address):
            while line := await reader.readline():
                await self._ctx.emit([Event(self.event_tag, None, {"message": line.decode()})], None)

Every listening input needs the same life cycle: bind and listen in `start` (so a port clash is
reported before events flow), hold accepted peers until `run` has a context, cap the number of
connections, give every connection its own task so a bad peer only ever loses its
own connection, and close everything when the input is cancelled. `ServerInput` is
that life cycle as an Input base class, so each protocol only writes `_connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from logpipe.base import Helper, Input, InputContext, Plugin
from logpipe.errors import ConfigError, ProtocolError
from logpipe.helpers.tls import TlsServer
from logpipe.metrics import PluginMetric, PluginMetrics
from logpipe.settings import Setting

__all__ = ["ConnectionServer", "Handler", "ProtocolError", "Server", "ServerInput"]

#: A connection handler: reader, writer and the peer's address (IP, or the socket name).
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str], Awaitable[None]]


class ConnectionServer:
    def __init__(
        self, handler: Handler, host: str, port: int, *, ssl_context: ssl.SSLContext | None,
        max_connections: int, log: logging.Logger, metrics: PluginMetrics, stream_limit: int = 1 << 20,
    ) -> None:
        self._handler = handler
        self._stream_limit = stream_limit
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._max = max_connections
        self._log = log
        self._metrics = metrics
        self._errors: dict[str, PluginMetric] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._running = asyncio.Event()
        self.port = port
        self._connections = metrics.gauge("connections", "open connections")

    async def bind(self) -> int:
        """Listen; returns the bound port (useful with port 0). Peers that connect before
        `serve` wait for it instead of being refused."""
        try:
            self._server = await asyncio.start_server(
                self._accept, self._host, self._port, ssl=self._ssl,
                reuse_address=True, limit=self._stream_limit,
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self._host}:{self._port}: {exc}", setting="port") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def serve(self) -> None:
        """Accept connections until cancelled, then close every connection."""
        if self._server is None:
            await self.bind()
        self._running.set()
        try:
            await asyncio.Future()
        finally:
            await self.close()

    def error(self, reason: str, peer: object, message: str) -> None:
        """Count and log a bad peer (the caller closes its connection)."""
        errors = self._errors.get(reason)
        if errors is None:
            errors = self._errors[reason] = self._metrics.counter(
                "protocol_errors", "connections closed for a protocol error", reason=reason)
        errors.inc()
        self._log.warning("closing connection from %s: %s", peer, message)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else str(peer)
        if self._max and len(self._tasks) >= self._max:
            self.error("max_connections", peer, f"more than {self._max} connections")
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        self._connections.inc()
        try:
            await self._running.wait()
            await self._handler(reader, writer, address)
        except ProtocolError as exc:
            self.error(exc.reason, peer, str(exc))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError) as exc:
            self._log.debug("connection from %s ended: %r", peer, exc)
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - a bug met by one peer must not stop the listener
            self._log.exception("connection from %s failed", peer)
        finally:
            self._connections.inc(-1)
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._writers.discard(writer)
            writer.close()


class Server(Helper):
    """The listening settings. The `port` default comes from the plugin's `default_port`."""

    settings = [
        Setting("host", "string", default="0.0.0.0", spellings=("bind",), doc="address to listen on"),
        Setting("port", "int", default=0, min=0, max=65535, doc="TCP port (0 picks a free one)"),
        Setting("max_connections", "int", default=1024, min=0, doc="concurrent connections (0: unlimited)"),
    ]

    @classmethod
    def settings_for(cls, plugin: type[Plugin]) -> list[Setting]:
        port = getattr(plugin, "default_port", 0)
        return [Setting("port", "int", default=port, min=0, max=65535, doc="TCP port (0 picks a free one)")
                if s.name == "port" else s for s in cls.settings]


class ServerInput(Input):
    """Base of the listening inputs: `start` binds (a port clash fails the start, not the
    first event), `run` serves until cancelled, `close` drops every connection.
    Subclasses set `default_port` and implement `_connection`; the listener is set up from
    the Server and TlsServer settings (a subclass that needs another TLS context calls
    `_listen` itself from `__init__`)."""

    helpers: ClassVar[list[type[Helper]]] = [Server, TlsServer]
    default_port: ClassVar[int] = 0
    _ctx: InputContext | None = None
    host: str
    port: int
    max_connections: int

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._listen(self.host, self.port, TlsServer.context(self), self.max_connections)

    def _listen(self, host: str, port: int, ssl_context: ssl.SSLContext | None, max_connections: int,
                stream_limit: int = 1 << 20) -> None:
        """`stream_limit`: what the stream reader of one connection buffers before it stops
        reading the socket (it holds up to twice that)."""
        self._server = ConnectionServer(
            self._connection, host, port, ssl_context=ssl_context,
            max_connections=max_connections, log=self.log, metrics=self.metrics,
            stream_limit=stream_limit,
        )

    @property
    def bound_port(self) -> int:
        """The listening port (differs from `port` when that is 0)."""
        return self._server.port

    async def start(self) -> None:
        await self._server.bind()

    async def run(self, ctx: InputContext) -> None:
        self._ctx = ctx
        await self._server.serve()

    async def close(self) -> None:
        await self._server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        raise NotImplementedError
