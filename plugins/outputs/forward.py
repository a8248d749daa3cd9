"""`forward` output: ship chunks to Fluentd, Fluent Bit or another logpipe.

Each chunk goes out as PackedForward messages (one per tag; gzip-compressed as
CompressedPackedForward with `compress gzip`). Servers are chosen by weight among
the healthy primaries, then the standbys; a server that fails is marked down and
the chunk fails over to the next candidate within the same write. With
`require_ack_response` every message carries a chunk id and the write succeeds only
once each id is acknowledged; a missing ack within `ack_response_timeout` raises
RetryableError, so the core's buffer retries (at least once: a late ack can mean a
duplicate, never a loss). Health is probed by TCP connect (`heartbeat_type tcp`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import re
import socket
import ssl
import time as _time
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.forward_protocol import (
    NS,
    event_time,
    ext_hook,
    password_digest,
    shared_key_digest,
    time_to_ns,
    to_bytes,
)
from logpipe.helpers.routed import group_routed, pack_routed, unpack_routed
from logpipe.helpers.tls import TlsClient
from logpipe.jsonvalues import msgpack_default
from logpipe.plugin import Output, PluginError, RetryableError, Section, SectionValue, Setting, WriteResult

_SERVER_SPEC = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+)(?::(?P<weight>\d+))?)?")


class HandshakeError(PluginError):
    """The server refused us (bad shared key, user or password) or answered nonsense."""


class AckTimeout(PluginError):
    """The chunk was written but not acknowledged in time: the server may have it."""


@dataclass
class _Server:
    host: str
    port: int
    weight: int = 60
    standby: bool = False
    username: str | None = None
    password: str | None = None
    healthy: bool = True
    down_until: float = 0.0
    idle: list[_Connection] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def available(self, now: float) -> bool:
        return self.healthy or now >= self.down_until


#: Server replies are small maps (HELO, PONG, ack); a server sending more than this is broken.
MAX_REPLY_BYTES = 1 << 20


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # surrogateescape keeps raw bytes sent as str (Fluent Bit's HELO nonce) intact for the digest.
        self.unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                         max_buffer_size=MAX_REPLY_BYTES)

    async def read_object(self) -> Any:
        while True:
            for obj in self.unpacker:
                return obj
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            try:
                self.unpacker.feed(data)
            except msgpack.BufferFull:
                raise ConnectionError(f"server reply larger than {MAX_REPLY_BYTES} bytes") from None

    def stale(self) -> bool:
        """The server closed this kept-alive connection (restart, idle timeout): a chunk
        written to it would be lost without a trace when no ack is required."""
        return self.reader.at_eof() or self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class ForwardOutput(Output):
    name = "forward"
    doc = "Fluentd forward protocol client: to Fluentd, Fluent Bit or logpipe aggregators"
    settings: ClassVar[list[Setting]] = [
        Setting("servers", "array", default=[],
                doc='"host:port[:weight]" strings or {host, port, weight, standby, username, password} hashes'),
        Setting("host", "string", default="127.0.0.1", doc="the server when `servers` is not set"),
        Setting("port", "int", default=24224, doc="its port"),
        Setting("require_ack_response", "bool", default=False, doc="wait for the server's ack of each chunk"),
        Setting("ack_response_timeout", "duration", default=190.0, doc="retry a chunk not acked in time"),
        Setting("send_timeout", "duration", default=60.0, doc="time allowed to write a chunk"),
        Setting("connect_timeout", "duration", default=10.0, doc="time allowed to connect and handshake"),
        Setting("compress", "string", default="text", choices=("text", "gzip"),
                doc="gzip sends CompressedPackedForward"),
        Setting("time_as_integer", "bool", default=False, doc="send integer seconds instead of EventTime"),
        Setting("keepalive", "bool", default=True, doc="reuse connections between chunks"),
        Setting("shared_key", "string", secret=True, doc="handshake with this key (the server's `shared_key`)"),
        Setting("self_hostname", "string", doc="our name in the handshake (default: this host's name)"),
        Setting("username", "string", doc="user for servers that require one"),
        Setting("password", "string", secret=True, doc="its password"),
        Setting("heartbeat_type", "string", default="tcp", choices=("tcp", "transport", "none"),
                doc="how server health is probed (tcp/transport: a TCP connect)"),
        Setting("heartbeat_interval", "duration", default=1.0, min=0.001, doc="probe period"),
        Setting("recover_wait", "duration", default=10.0, min=0, doc="without heartbeats: retry a failed server after"),
        Section("server", [
            Setting("host", "string", required=True, doc="server address"),
            Setting("name", "string", doc="a name for logs"),
            Setting("port", "int", default=24224, min=1, max=65535, doc="its port"),
            Setting("weight", "int", default=60, min=0, doc="share of the chunks (0: never chosen)"),
            Setting("standby", "bool", default=False, doc="used only when no primary is healthy"),
            Setting("username", "string", doc="user, for servers that require one"),
            Setting("password", "string", secret=True, doc="its password"),
        ], multiple=True, doc="Fluentd <server>: one destination", example="<server> host 10.0.0.5 </server>"),
        Section("security", [
            Setting("self_hostname", "string", doc="our name in the handshake"),
            Setting("shared_key", "string", secret=True, doc="the handshake's shared key"),
        ], doc="Fluentd <security>: the handshake"),
    ]
    helpers = [TlsClient]
    require_ack_response: bool
    ack_response_timeout: float
    send_timeout: float
    connect_timeout: float
    compress: str
    time_as_integer: bool
    keepalive: bool
    shared_key: str | None
    self_hostname: str
    username: str | None
    password: str | None
    heartbeat_type: str
    heartbeat_interval: float
    recover_wait: float

    server: list[SectionValue]
    security: SectionValue

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self.servers = [self._server(spec) for spec in p["servers"]] + [
            _Server(s.host, s.port, s.weight, s.standby, s.username, s.password) for s in self.server
        ] or [_Server(p["host"], p["port"])]
        self.shared_key = self.shared_key or self.security.shared_key
        self.self_hostname = self.self_hostname or self.security.self_hostname or socket.gethostname()
        if not any(s.weight > 0 for s in self.servers):
            raise ConfigError("every server has weight 0", setting="server" if self.server else "servers")
        self._ssl = TlsClient.context(self)

    def _server(self, spec: Any) -> _Server:
        try:
            if isinstance(spec, dict):
                return _Server(
                    str(spec.get("host", "127.0.0.1")), int(spec.get("port", 24224)), int(spec.get("weight", 60)),
                    str(spec.get("standby", False)).lower() in ("true", "yes", "1"),
                    spec.get("username"), spec.get("password"),
                )
            m = _SERVER_SPEC.fullmatch(str(spec).strip())
            if m is None:
                raise ValueError(spec)
            return _Server(m["v6"] or m["host"], int(m["port"] or 24224), int(m["weight"] or 60))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad forward server {spec!r}: expected \"host:port[:weight]\" or a hash",
                              setting="servers") from exc

    # ---- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self.heartbeat_type != "none":
            self.timers.every(self.heartbeat_interval, self._heartbeat, immediately=True, name=f"heartbeat:{self.id}")

    async def close(self) -> None:
        for server in self.servers:
            for conn in server.idle:
                conn.close()
            server.idle.clear()

    async def _heartbeat(self) -> None:
        """Mark servers up or down by whether a TCP connection opens."""
        await asyncio.gather(*(self._probe(s) for s in self.servers))

    async def _probe(self, server: _Server) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, writer = await asyncio.open_connection(server.host, server.port)
            writer.close()
            ok = True
        except (OSError, TimeoutError):
            ok = False
        if ok != server.healthy:
            self.log.warning("forward server %s is %s", server, "up" if ok else "down")
        server.healthy = ok

    # ---- writing -------------------------------------------------------------------

    def format(self, events: list[Event]) -> list[bytes]:
        """One forward entry per event — msgpack [time, record] — prefixed by its tag."""
        pack = msgpack.Packer(use_bin_type=True, default=msgpack_default).pack
        if self.time_as_integer:
            return [pack_routed(ev.tag, pack((ev.time // NS, ev.record))) for ev in events]
        return [pack_routed(ev.tag, pack((event_time(ev.time), ev.record))) for ev in events]

    def chunk_bytes(self, item: bytes) -> bytes:
        return unpack_routed(item)[1]  # the [time, record] entry, as out_forward's chunk holds it

    def describe(self, item: bytes) -> Any:
        tag, entry = unpack_routed(item)
        try:
            when, record = msgpack.unpackb(entry, raw=False, strict_map_key=False, ext_hook=ext_hook)
        except Exception:  # noqa: BLE001 - a damaged item: show its bytes
            return {"tag": tag, "entry": super().describe(entry)}
        return {"tag": tag, "time": time_to_ns(when), "record": record}

    async def write(self, items: list[bytes]) -> WriteResult | None:
        if not items:
            return None
        messages, chunk_ids = self._messages(items)
        errors: list[str] = []
        for server in self._candidates():
            try:
                await self._send(server, messages, chunk_ids)
                return None
            except AckTimeout:
                raise RetryableError(f"no ack from forward server {server} in time") from None
            except (OSError, EOFError, HandshakeError, ssl.SSLError, ValueError) as exc:
                self._mark_down(server, exc)
                errors.append(f"{server}: {exc}")
        raise RetryableError("no forward server took the chunk: " + ("; ".join(errors) or "none available"))

    def _messages(self, items: list[bytes]) -> tuple[list[bytes], list[str]]:
        """PackedForward message(s), one per tag, with chunk ids when acks are required."""
        packer = msgpack.Packer(use_bin_type=True, default=msgpack_default)
        messages: list[bytes] = []
        chunk_ids: list[str] = []
        for tag, (_, group) in group_routed(items).items():
            entries = b"".join(group)
            option: dict[str, Any] = {"size": len(group)}
            if self.compress == "gzip":
                z = zlib.compressobj(6, zlib.DEFLATED, 31)
                entries = z.compress(entries) + z.flush()
                option["compressed"] = "gzip"
            if self.require_ack_response:
                chunk = base64.b64encode(os.urandom(16)).decode()
                option["chunk"] = chunk
                chunk_ids.append(chunk)
            messages.append(packer.pack([tag, entries, option]))
        return messages, chunk_ids

    def _candidates(self) -> list[_Server]:
        """Healthy primaries in a weighted random order (Efraimidis–Spirakis), then standbys."""
        now = _time.monotonic()
        usable = [s for s in self.servers if s.weight > 0 and s.available(now)]
        return sorted(usable, key=lambda s: (s.standby, -(random.random() ** (1.0 / s.weight))))

    def _mark_down(self, server: _Server, exc: BaseException) -> None:
        if server.healthy:
            self.log.warning("forward server %s failed: %s", server, exc)
        server.healthy = False
        server.down_until = _time.monotonic() + self.recover_wait

    async def _send(self, server: _Server, messages: list[bytes], chunk_ids: list[str]) -> None:
        conn = self._idle_connection(server) or await self._connect(server)
        try:
            try:
                async with asyncio.timeout(self.send_timeout):
                    conn.writer.write(b"".join(messages))
                    await conn.writer.drain()
            except TimeoutError as exc:
                raise OSError(f"send timed out after {self.send_timeout}s") from exc
            if chunk_ids:
                await self._await_acks(conn, chunk_ids)
        except BaseException:
            conn.close()
            raise
        if self.keepalive:
            server.idle.append(conn)
        else:
            conn.close()
        server.healthy = True

    @staticmethod
    def _idle_connection(server: _Server) -> _Connection | None:
        while server.idle:
            conn = server.idle.pop()
            if not conn.stale():
                return conn
            conn.close()
        return None

    async def _await_acks(self, conn: _Connection, chunk_ids: list[str]) -> None:
        waiting = set(chunk_ids)
        try:
            async with asyncio.timeout(self.ack_response_timeout):
                while waiting:
                    reply = await conn.read_object()
                    ack = reply.get("ack") if type(reply) is dict else None
                    if type(ack) is str:
                        waiting.discard(ack)
        except TimeoutError:
            raise AckTimeout() from None

    async def _connect(self, server: _Server) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    server.host, server.port, ssl=self._ssl,
                    server_hostname=server.host if self._ssl is not None else None,
                )
                conn = _Connection(reader, writer)
                if self.shared_key:
                    await self._handshake(conn, server)
        except TimeoutError as exc:
            raise OSError(f"connect/handshake timed out after {self.connect_timeout}s") from exc
        return conn

    async def _handshake(self, conn: _Connection, server: _Server) -> None:
        assert self.shared_key is not None
        try:
            helo = await conn.read_object()
            if type(helo) is not list or len(helo) < 2 or helo[0] != "HELO" or type(helo[1]) is not dict:
                raise HandshakeError(f"expected HELO, got {helo!r:.60}")
            nonce = to_bytes(helo[1].get("nonce"))
            auth_salt = to_bytes(helo[1].get("auth"))
            # Sent as a msgpack str: Fluent Bit's in_forward rejects a bin salt (Fluentd takes both).
            salt_text = os.urandom(16).hex()
            salt = salt_text.encode()
            username = server.username or self.username or ""
            password = server.password or self.password or ""
            pw = password_digest(auth_salt, username, password) if auth_salt else ""
            conn.writer.write(msgpack.packb([
                "PING", self.self_hostname, salt_text,
                shared_key_digest(salt, self.self_hostname, nonce, self.shared_key),
                username, pw,
            ]))
            pong = await conn.read_object()
            if type(pong) is not list or len(pong) != 5 or pong[0] != "PONG":
                raise HandshakeError(f"expected PONG, got {pong!r:.60}")
            if not pong[1]:
                raise HandshakeError(f"server refused the handshake: {pong[2]}")
            if pong[3] == self.self_hostname:
                raise HandshakeError("same hostname on both ends: set self_hostname")
            if pong[4] != shared_key_digest(salt, str(pong[3]), nonce, self.shared_key):
                raise HandshakeError("server's shared key digest does not match")
        except BaseException:
            conn.close()
            raise
