"""`udp` input: one datagram → records — Logstash's `udp` and Fluentd's `in_udp`.

UDP has no acknowledgement and no backpressure: a datagram the pipeline cannot take in
time is lost. logpipe makes the loss visible instead: datagrams wait in a queue of
`queue_size`, beyond which they are dropped and counted
(`logpipe_input_udp_dropped_total`), and the kernel's own drops for the socket (receive
buffer full) are read from /proc/net/udp into `logpipe_input_udp_kernel_drops`; raise
`receive_buffer_bytes` when that grows. Datagrams longer than `buffer_size` are dropped
and counted rather than truncated.

Logstash: `port` required, codec `plain` (the whole datagram is `message`; `line` and
`json_lines` split it into lines), the sender in `host` (`[host][ip]` under ECS).
Fluentd (a `tag`, a `<parse>` or an in_udp-only setting): port 5160, `<parse>`,
`message_length_limit` (the datagram size limit), `remove_newline`, `source_address_key`,
`source_hostname_key`, `receive_buffer_size`.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers import ecs
from logpipe.helpers.records import make_decoder
from logpipe.helpers.udp import Datagram, DatagramServer
from logpipe.plugin import Input, InputContext, Setting

_FLUENTD_ONLY = ("parse", "message_length_limit", "body_size_limit", "remove_newline", "source_address_key",
                 "source_hostname_key", "receive_buffer_size")
_LINE_CODECS = ("line", "json_lines")


class UdpInput(Input):
    name = "udp"
    doc = "Datagrams from UDP senders (Logstash udp, Fluentd in_udp); no acknowledgement, drops are counted"
    settings: ClassVar[list[Setting]] = [
        Setting("host", "string", default="0.0.0.0", spellings=("bind",), doc="address to listen on"),
        Setting("port", "int", min=0, max=65535,
                doc="port (required in a Logstash config; 5160 in a Fluentd one; 0: a free one)"),
        Setting("buffer_size", "bytes", default=65536, min=1, spellings=("message_length_limit", "body_size_limit"),
                doc="largest datagram accepted; longer ones are dropped and counted"),
        Setting("receive_buffer_bytes", "bytes", spellings=("receive_buffer_size",),
                doc="socket receive buffer (SO_RCVBUF): what the kernel holds while logpipe is busy"),
        Setting("queue_size", "int", default=2000, min=1, doc="datagrams waiting for the pipeline; more drop"),
        Setting("workers", "int", default=2, min=1, doc="tasks handing datagrams to the pipeline"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="v1/v8: the sender in [host][ip] instead of [host]"),
        Setting("source_ip_fieldname", "string", doc="Logstash: field for the sender's address (default host)"),
        Setting("parse", "hash", doc="Fluentd <parse>: @type none|json|regexp|<named format> …"),
        Setting("remove_newline", "bool", default=True, doc="Fluentd: drop the trailing newline of a datagram"),
        Setting("source_address_key", "string", doc="record key for the sender's address (Fluentd)"),
        Setting("source_hostname_key", "string", doc="record key for the sender's host name (Fluentd)"),
    ]
    host: str
    port: int
    buffer_size: int
    receive_buffer_bytes: int | None
    queue_size: int
    workers: int
    ecs_compatibility: str
    source_ip_fieldname: str | None
    remove_newline: bool
    source_address_key: str | None
    source_hostname_key: str | None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.fluentd = self.params.get("tag") is not None or any(k in settings for k in _FLUENTD_ONLY) \
            or "bind" in settings
        if self.port is None:
            if not self.fluentd:
                raise ConfigError("the udp input needs a 'port'", setting="port")
            self.port = 5160
        codec = self.params.get("codec")
        self._split_lines = codec is not None and codec.name in _LINE_CODECS
        self._decode = make_decoder(codec, self.params["parse"], self.metrics)
        self._server = DatagramServer(self.host, self.port, max_size=self.buffer_size,
                                      receive_buffer_bytes=self.receive_buffer_bytes, queue_size=self.queue_size,
                                      workers=self.workers, log=self.log, metrics=self.metrics)
        self._ctx: InputContext | None = None
        self._names: dict[str, str] = {}
        if self.fluentd:
            self._place = self._fluentd_place
        elif self.source_ip_fieldname or self.ecs_compatibility == "disabled":
            field = self.source_ip_fieldname or "host"
            self._place = lambda record, address: record.setdefault(field, address)
        else:
            self._place = lambda record, address: record.setdefault("host", {}).setdefault("ip", address) \
                if isinstance(record.get("host", {}), dict) else None

    @property
    def bound_port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._server.bind()

    async def run(self, ctx: InputContext) -> None:
        self._ctx = ctx
        await self._server.serve(self._batch)

    async def close(self) -> None:
        self._server.close()

    async def _batch(self, batch: list[Datagram]) -> None:
        tag = self.event_tag
        decode = self._decode
        place = self._place
        events: list[Event] = []
        for data, address in batch:
            text = data.decode("utf-8", "replace")
            if self._split_lines:
                lines = text.splitlines()
            else:
                lines = [text.rstrip("\r\n") if self.remove_newline or not self.fluentd else text]
            if self.source_hostname_key:
                await self._resolve(address)
            for t, record in decode(lines):
                place(record, address)
                events.append(Event(tag, t, record))
        assert self._ctx is not None
        if events:
            await self._ctx.emit(events, None)

    def _fluentd_place(self, record: dict[str, Any], address: str) -> None:
        if self.source_address_key:
            record[self.source_address_key] = address
        if self.source_hostname_key:
            record[self.source_hostname_key] = self._names.get(address, address)

    async def _resolve(self, address: str) -> None:
        if address in self._names:
            return
        loop = asyncio.get_running_loop()
        try:
            name = (await loop.run_in_executor(None, socket.gethostbyaddr, address))[0]
        except OSError:
            name = address
        if len(self._names) > 1024:
            self._names.clear()
        self._names[address] = name
