"""`beats` input: a Lumberjack v2 server for Filebeat and the other Beats.

Behaves like Logstash's beats input where it matters to senders: a window ('W' then
that many data frames, usually inside zlib 'C' frames) becomes one batch; its ACK
carries the window's highest sequence and is sent only once the pipeline has the
batch delivered or stored; ACKs leave in window order; while a window waits, an ACK
of 0 (nothing new acknowledged, the last acked sequence of that window) is sent every
few seconds so the sender does not time out. Events land as Logstash puts them:
`@metadata` → event meta (plus `ip_address`), `@timestamp` → event time, the rest
of the document (host, agent, log.file.path, message …) unchanged and nested.
"""

from __future__ import annotations

import asyncio
import collections
import time as _time
from typing import Any, ClassVar

from logpipe.plugin import Event, ProtocolError, ServerInput, Setting
from logpipe.timefmt import parse_iso8601
from logpipe_plugins.inputs.beats.protocol import V2, FrameError, FrameParser, JsonFailure, ack_frame

_READ_SIZE = 1 << 18
#: A window is handed to the pipeline in slices of at most this many events or bytes.
_SLICE_EVENTS = 2048
_SLICE_BYTES = 4 << 20


class BeatsInput(ServerInput):
    name = "beats"
    doc = "Lumberjack v2 server (Filebeat, Winlogbeat, Metricbeat … → logpipe)"
    default_port = 5044
    settings: ClassVar[list[Setting]] = [
        Setting("client_inactivity_timeout", "duration", default=60.0, min=0.001,
                doc="close a connection idle this long (never while a window awaits its ACK)"),
        Setting("ack_keepalive_interval", "duration", default=5.0, min=0.001,
                doc="while a window awaits its ACK, send a keep-alive ACK this often"),
        Setting("max_frame_size", "bytes", default=64 * 1024 * 1024, min=1,
                doc="largest frame, compressed or not, and largest inflated content of one compressed frame"),
        Setting("metadata_as_tag", "bool", default=False, doc="tag events with [@metadata][beat]"),
    ]
    tag: str | None
    client_inactivity_timeout: float
    ack_keepalive_interval: float
    max_frame_size: int
    metadata_as_tag: bool

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._tag = self.event_tag
        self._seconds: dict[str, int | None] = {}

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        conn = _Connection(self, writer, address)
        keepalive = self.timers.every(self.ack_keepalive_interval, conn.keepalive, name=f"beats-keepalive:{address}")
        try:
            await conn.read(reader)
        finally:
            keepalive.cancel()

    def _event(self, payload: Any, address: str) -> Event:
        """One data frame → an event, the way Logstash's beats input builds it."""
        if isinstance(payload, JsonFailure):
            return Event(self._tag, None, {"message": payload.text, "tags": ["_jsonparsefailure"]},
                         {"ip_address": address})
        meta = payload.pop("@metadata", None)
        meta = dict(meta) if type(meta) is dict else {}
        meta["ip_address"] = address
        stamp = payload.pop("@timestamp", None)
        ns = self._timestamp(stamp) if type(stamp) is str else None
        if ns is None and stamp is not None:
            payload["_@timestamp"] = stamp
            tags = payload.setdefault("tags", [])
            if type(tags) is list:
                tags.append("_timestampparsefailure")
        if self.metadata_as_tag and not self.tag and type(meta.get("beat")) is str:
            tag = meta["beat"]
        else:
            tag = self._tag
        return Event(tag, ns, payload, meta)

    def _timestamp(self, text: str) -> int | None:
        """Beats write `YYYY-MM-DDTHH:MM:SS.mmmZ`: the seconds part repeats across a window,
        so it is parsed once and cached; anything else takes the general ISO-8601 parser."""
        if len(text) == 24 and text[19] == "." and text[23] == "Z" and text[20:23].isdigit():
            head = text[:19]
            base = self._seconds.get(head, -1)
            if base == -1:
                if len(self._seconds) > 4096:
                    self._seconds.clear()
                base = self._seconds[head] = parse_iso8601(head + "Z")
            if base is not None:
                return base + int(text[20:23]) * 1_000_000
            return None
        return parse_iso8601(text)


class _Window:
    """One window as the pipeline sees it: slices handed on, how many are still
    unacknowledged, and whether its last frame has arrived. ACKed once complete and settled."""

    __slots__ = ("seq", "version", "outstanding", "complete")

    def __init__(self, version: int) -> None:
        self.seq = 0
        self.version = version
        self.outstanding = 0
        self.complete = False

    @property
    def settled(self) -> bool:
        return self.complete and not self.outstanding


class _Connection:
    """Per-connection window and ACK state.

    A window is streamed to the pipeline in slices of at most `_SLICE_EVENTS` events or
    `_SLICE_BYTES` bytes of frames, so what one connection holds is one slice, whatever
    window size it declares (2³²−1 included) and however far its frames inflate; the
    pipeline's backpressure does the rest. A window small enough for one slice (Filebeat's
    default `bulk_max_size` is 2048) is still one batch."""

    def __init__(self, plugin: BeatsInput, writer: asyncio.StreamWriter, address: str) -> None:
        self.plugin = plugin
        self.writer = writer
        self.address = address
        self.parser = FrameParser(plugin.max_frame_size)
        self.window_size = 0
        self.received = 0
        self.current: _Window | None = None
        self.batch: list[Event] = []
        self.batch_bytes = 0
        # Windows handed to the pipeline, oldest first; ACKs leave in this order.
        self.pending: collections.deque[_Window] = collections.deque()
        self.last_write = _time.monotonic()

    async def read(self, reader: asyncio.StreamReader) -> None:
        idle = self.plugin.client_inactivity_timeout
        while True:
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), idle)
            except TimeoutError:
                if self.pending:
                    continue
                self.plugin.log.info("closing idle beats connection from %s", self.address)
                return
            if not data:
                return
            try:
                for frame in self.parser.feed(data):
                    if frame[0] == "W":
                        self._window(frame[2])
                    elif self._data(frame):
                        await self._hand_on()
            except FrameError as exc:
                raise ProtocolError(exc.reason, str(exc)) from None

    def _window(self, size: int) -> None:
        if self.received:
            raise ProtocolError("bad_window", f"new window after {self.received} of {self.window_size} events")
        self.window_size = size

    def _data(self, frame: tuple[Any, ...]) -> bool:
        """Take one data frame; True when the batch should be handed on now."""
        _, version, seq, payload, size = frame
        if not self.window_size:
            raise ProtocolError("bad_window", "data frame before a window size frame")
        if version != V2 and type(payload) is dict and "line" in payload:  # v1 (logstash-forwarder)
            payload["message"] = payload.pop("line")
        if self.current is None:
            self.current = _Window(version)
            self.pending.append(self.current)
        self.current.seq = seq
        self.batch.append(self.plugin._event(payload, self.address))
        self.batch_bytes += size
        self.received += 1
        if self.received >= self.window_size:
            self.current.complete = True
            return True
        return len(self.batch) >= _SLICE_EVENTS or self.batch_bytes >= _SLICE_BYTES

    async def _hand_on(self) -> None:
        window = self.current
        assert window is not None
        events, self.batch, self.batch_bytes = self.batch, [], 0
        if window.complete:
            self.current, self.received, self.window_size = None, 0, 0
        window.outstanding += 1

        def on_ack() -> None:
            window.outstanding -= 1
            self._send_acks()

        ctx = self.plugin._ctx
        assert ctx is not None
        await ctx.emit(events, on_ack)
        if window.complete:
            self._send_acks()
        else:
            await asyncio.sleep(0)  # a huge window: let other connections and health checks run

    def _send_acks(self) -> None:
        """ACK completed windows strictly in order: a client counts ACKs per window."""
        pending = self.pending
        while pending and pending[0].settled:
            window = pending.popleft()
            self._write(ack_frame(window.version, window.seq))

    def _write(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)
            self.last_write = _time.monotonic()

    def keepalive(self) -> None:
        """Each `ack_keepalive_interval` while the oldest window waits for its
        acknowledgement: ACK 0, Logstash's keep-alive, which resets the Beat's timeout
        without acknowledging data."""
        interval = self.plugin.ack_keepalive_interval
        if self.pending and self.pending[0].version == V2 and _time.monotonic() - self.last_write >= interval * 0.9:
            self._write(ack_frame(V2, 0))
