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

Accepting is logpipe's own loop, not asyncio's: it does not accept while the process is
short of descriptors (logpipe/descriptors.py: the last ones are kept for outputs and
positions), and when accept() fails with EMFILE/ENFILE/ENOBUFS/ENOMEM it backs off (50 ms
doubling to 2 s) instead of retrying at once; waiting clients stay in the kernel's
backlog. That is logged once with what to do and counted in
`logpipe_input_accept_paused_total`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from logpipe.base import Helper, Input, InputContext, Plugin
from logpipe.descriptors import DESCRIPTORS, soft_limit
from logpipe.errors import ConfigError, ProtocolError
from logpipe.helpers.tls import TlsServer
from logpipe.metrics import PluginMetric, PluginMetrics
from logpipe.settings import Setting

__all__ = ["ConnectionServer", "Handler", "ProtocolError", "Server", "ServerInput"]

#: A connection handler: reader, writer and the peer's address (IP, or the socket name).
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str], Awaitable[None]]

#: accept() errors that mean "out of descriptors or memory": wait, do not spin.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
BACKLOG = 511


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
        self._sockets: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._running = asyncio.Event()
        self.port = port
        self._connections = metrics.gauge("connections", "open connections")
        self._paused = metrics.counter("accept_paused", "times accepting paused for lack of descriptors")
        self._said_short = False

    async def bind(self) -> int:
        """Listen; returns the bound port (useful with port 0). Peers that connect before
        `serve` wait for it instead of being refused."""
        try:
            self._sockets = await self._listen()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self._host}:{self._port}: {exc}", setting="port") from exc
        self.port = self._sockets[0].getsockname()[1]
        self._acceptors = [asyncio.create_task(self._accept_loop(s), name=f"accept:{self._metrics.id}")
                           for s in self._sockets]
        return self.port

    async def _listen(self) -> list[socket.socket]:
        """One listening socket per address the host resolves to (as asyncio.start_server),
        all on the same port (the first one's, when port is 0)."""
        loop = asyncio.get_running_loop()
        host = None if self._host in ("", "*") else self._host
        infos = await loop.getaddrinfo(host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        sockets: list[socket.socket] = []
        port = self._port
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address[0], port, *address[2:]))
                port = sock.getsockname()[1]
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backoff = BACKOFF_FIRST
        while True:
            if DESCRIPTORS.headroom() <= 0:
                self._short_of_descriptors("the last descriptors are kept for outputs and positions")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    self._log.warning("accept on port %s failed: %s", self.port, exc)
                    await asyncio.sleep(BACKOFF_FIRST)
                    continue
                self._short_of_descriptors(str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            DESCRIPTORS.took()
            task = asyncio.create_task(self._start_connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _short_of_descriptors(self, why: str) -> None:
        self._paused.inc()
        if not self._said_short:
            self._said_short = True
            self._log.error(
                "%s: not accepting new connections for now (%s; ulimit -n is %d): clients wait in the "
                "backlog. Raise the open-files limit (ulimit -n, LimitNOFILE=), lower max_connections or "
                "the tail inputs' max_open_files", self._metrics.id, why, soft_limit())

    async def _start_connection(self, conn: socket.socket) -> None:
        """The accepted socket as a stream pair (with the TLS handshake, in this task so a slow
        handshake holds only itself), then the handler."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self._stream_limit)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn, ssl=self._ssl)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            conn.close()
            DESCRIPTORS.gave()
            self._log.debug("connection setup failed: %r", exc)
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            await self._accept(reader, writer)
        finally:
            DESCRIPTORS.gave()

    async def serve(self) -> None:
        """Accept connections until cancelled, then close every connection."""
        if not self._sockets:
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
        acceptors, self._acceptors = self._acceptors, []
        for task in acceptors:
            task.cancel()
        await asyncio.gather(*acceptors, return_exceptions=True)
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else str(peer)
        if self._max and len(self._tasks) > self._max:  # this connection's own task is counted
            self.error("max_connections", peer, f"more than {self._max} connections")
            writer.close()
            return
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
