"""`tcp` input: newline-delimited records from TCP (or TLS) peers — Logstash's `tcp` and
Fluentd's `in_tcp`.

Logstash: `port` is required, `codec` defaults to `line` (also json_lines, json, plain),
`mode => client` connects out to `host:port` and reads from there (reconnecting), the
peer lands in `host`/`port` or, with `ecs_compatibility => v8`,
`[@metadata][input][tcp][source][ip|port|name]`. Fluentd (a `tag`, a `<parse>` or any
in_tcp-only setting makes the input Fluentd-shaped): port 5170, `<parse>` turns each
line into the record, `delimiter`, `source_address_key`, `source_hostname_key`,
`message_length_limit`, `<transport tls>`.

A line has no acknowledgement, so nothing waits for the outputs: senders are slowed by
TCP backpressure when the pipeline is full. Bounds are the syslog input's (same framer
and stream limits): connections, bytes per line, bytes held across connections, idle
and slow-frame timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers import ecs
from logpipe.helpers.framing import LineFramer
from logpipe.helpers.records import make_decoder
from logpipe.helpers.server import ProtocolError, ServerInput
from logpipe.helpers.stream_limits import STREAM_LIMIT, StreamLimits, read_frames
from logpipe.helpers.tls import TlsServer, client_context
from logpipe.plugin import Helper, InputContext, Setting

_FLUENTD_ONLY = ("parse", "delimiter", "source_hostname_key", "source_address_key", "message_length_limit")
_RECONNECT = (0.5, 10.0)


class TcpInput(ServerInput):
    name = "tcp"
    doc = "Lines from TCP/TLS peers (Logstash tcp, Fluentd in_tcp); server or client mode"
    helpers: ClassVar[list[type[Helper]]] = [*ServerInput.helpers, StreamLimits]
    settings: ClassVar[list[Setting]] = [
        Setting("port", "int", min=0, max=65535,
                doc="port to listen on (required in a Logstash config; 5170 in a Fluentd one; 0: a free one)"),
        Setting("mode", "string", default="server", choices=("server", "client"),
                doc="client: connect to host:port and read from it"),
        Setting("tcp_keep_alive", "bool", default=False, doc="enable TCP keep-alive on connections"),
        Setting("dns_reverse_lookup_enabled", "bool", default=False,
                doc="put the peer's host name (reverse DNS) instead of its address in [host]"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="v1/v8: the peer in [@metadata][input][tcp][source] instead of [host]/[port]"),
        Setting("proxy_protocol", "bool", default=False, doc="the first line is a PROXY v1 header"),
        Setting("parse", "hash", doc="Fluentd <parse>: @type none|json|regexp|<named format> …"),
        Setting("delimiter", "string", default="\n", doc="what ends a record (Fluentd)"),
        Setting("source_address_key", "string", doc="record key for the peer's IP address (Fluentd)"),
        Setting("source_hostname_key", "string", doc="record key for the peer's host name (Fluentd)"),
    ]
    port: int
    mode: str
    tcp_keep_alive: bool
    dns_reverse_lookup_enabled: bool
    ecs_compatibility: str
    proxy_protocol: bool
    delimiter: str
    source_address_key: str | None
    source_hostname_key: str | None
    message_length_limit: int
    max_bytes_held: int
    idle_timeout: float
    frame_timeout: float

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.fluentd = self.params.get("tag") is not None or any(k in settings for k in _FLUENTD_ONLY) \
            or self.setting_name("host") == "bind"
        if self.port is None:
            if not self.fluentd:
                raise ConfigError("the tcp input needs a 'port'", setting="port")
            self.port = 5170
        if not self.delimiter:
            raise ConfigError("'delimiter' must not be empty", setting="delimiter")
        codec = self.params.get("codec")
        if codec is None and not self.fluentd:
            from logpipe.registry import create

            codec = create("codec", "line")
        self._decode = make_decoder(codec, self.params["parse"], self.metrics)
        # A stateful codec (multiline) joins lines of one stream: each connection gets its own copy,
        # as Logstash clones the codec per connection; what it holds is flushed after its
        # auto_flush_interval without a line and when the peer closes.
        self._codec_per_connection = codec if self.params["parse"] is None and hasattr(codec, "flush") else None
        self._listen(self.host, self.port, TlsServer.context(self) if self.mode == "server" else None,
                     self.max_connections, stream_limit=STREAM_LIMIT)
        self._client_ssl = None
        if self.mode == "client" and TlsServer.enabled(self):
            self._client_ssl = client_context(list(self.params["ssl_certificate_authorities"]) or None,
                                              setting="ssl_certificate_authorities")
        self._budget = StreamLimits.budget(self)
        self._oversized = self.metrics.counter("oversized", "lines over the size limit (dropped)")
        self._tag = self.event_tag
        self._ecs = self.ecs_compatibility != "disabled"

    async def start(self) -> None:
        if self.mode == "server":
            await self._server.bind()

    async def run(self, ctx: InputContext) -> None:
        self._ctx = ctx
        if self.mode == "server":
            await self._server.serve()
        else:
            await self._client()

    async def _client(self) -> None:
        """Logstash's client mode: the peer is a server that writes lines; keep reconnecting."""
        delay = _RECONNECT[0]
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._client_ssl,
                                                               limit=STREAM_LIMIT)
            except OSError as exc:
                self.log.warning("tcp client: cannot connect to %s:%s: %s (retrying in %.1fs)",
                                 self.host, self.port, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT[1])
                continue
            delay = _RECONNECT[0]
            try:
                await self._connection(reader, writer, self.host)
            except (ConnectionError, OSError) as exc:
                self.log.info("tcp client: connection to %s:%s ended: %r", self.host, self.port, exc)
            finally:
                writer.close()
            await asyncio.sleep(delay)  # a server that closes at once must not make this a busy loop

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        peer = writer.get_extra_info("peername")
        peer_port = peer[1] if isinstance(peer, tuple) else 0
        if self.tcp_keep_alive:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if self.proxy_protocol:
            async with asyncio.timeout(self.frame_timeout or None):
                header = await reader.readline()
            parts = header.split()
            if len(parts) < 5 or parts[0] != b"PROXY":
                raise ProtocolError("proxy_protocol", f"expected a PROXY header, got {header[:40]!r}")
            address, peer_port = parts[2].decode("ascii", "replace"), int(parts[4])
        name = address
        if self.dns_reverse_lookup_enabled or self.source_hostname_key:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(OSError):
                name = (await loop.run_in_executor(None, socket.gethostbyaddr, address))[0]
        stamp = self._stamper(address, peer_port, name)
        framer = LineFramer(self.message_length_limit, self.delimiter.encode("utf-8"))
        counted = 0
        ctx = self._ctx
        assert ctx is not None
        decode = self._decode
        tag = self._tag
        own_codec = None
        if self._codec_per_connection is not None:
            template = self._codec_per_connection
            own_codec = type(template)(**{k: v for k, v in template.params.items() if v is not None})
            decode = make_decoder(own_codec, None, self.metrics)
        # Emits are serialised: the quiet-flush timer's event must not overtake the lines before it.
        emitting = asyncio.Lock()
        last_frame = time.monotonic()

        async def emit(events: list[Event]) -> None:
            for ev in events:
                stamp(ev)
            async with emitting:
                await ctx.emit(events, None)

        async def flush_held() -> None:
            assert own_codec is not None
            held = [Event(tag, None, r) for r in own_codec.flush()]  # type: ignore[attr-defined]
            if held:
                await emit(held)

        async def flush_if_quiet() -> None:
            if time.monotonic() - last_frame >= interval:
                await flush_held()

        interval = getattr(own_codec, "flush_interval", None) or 0.0
        # Logstash's auto_flush_interval: the event a multiline codec holds is emitted after that
        # long without a line (checked twice per interval), not only when the peer closes.
        quiet = self.timers.every(interval / 2, flush_if_quiet, name="tcp:auto_flush") if interval else None
        try:
            async for frames in read_frames(reader, framer, budget=self._budget,
                                            idle_timeout=self.idle_timeout or None,
                                            frame_timeout=self.frame_timeout or None):
                last_frame = time.monotonic()
                if framer.oversized != counted:
                    self._oversized.inc(framer.oversized - counted)
                    counted = framer.oversized
                lines = [f.decode("utf-8", "replace") for f in frames]
                await emit([Event(tag, t, r) for t, r in decode(lines)])
        finally:
            if quiet is not None:
                quiet.cancel()
        if own_codec is not None:
            await flush_held()

    def _stamper(self, address: str, port: int, name: str) -> Any:
        """Where the peer goes in each event, per front-end and ECS mode."""
        if self.fluentd:
            address_key, hostname_key = self.source_address_key, self.source_hostname_key

            def fluentd(ev: Event) -> None:
                if address_key:
                    ev.record[address_key] = address
                if hostname_key:
                    ev.record[hostname_key] = name

            return fluentd
        if self._ecs:
            source = {"ip": address, "port": port, "name": name}

            def ecs(ev: Event) -> None:
                ev.meta["input"] = {"tcp": {"source": dict(source)}}

            return ecs
        host = name if self.dns_reverse_lookup_enabled else address

        def legacy(ev: Event) -> None:
            record = ev.record
            record.setdefault("host", host)
            record.setdefault("port", port)

        return legacy
