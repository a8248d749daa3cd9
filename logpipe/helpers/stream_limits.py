"""Reading a peer's byte stream within bounds (syslog, tcp): idle and slow-client timeouts,
and one budget for the bytes all connections of an input hold in unfinished frames.

Why a shared budget: each connection's framer is bounded, but a thousand connections
each holding an almost complete frame add up. When the budget is spent, connections stop
reading (TCP pushes back on their senders) until frames complete or connections close;
a connection holding nothing may always read, so complete lines keep flowing, and one
that waits longer than its frame timeout is closed, which returns its bytes.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import ClassVar, Protocol

from logpipe.base import Helper, Plugin
from logpipe.helpers.framing import FrameError
from logpipe.helpers.server import ProtocolError
from logpipe.settings import Setting

READ_SIZE = 1 << 16
#: What the stream reader of one connection buffers ahead of the framer (see ServerInput._listen).
STREAM_LIMIT = 1 << 16


class StreamLimits(Helper):
    """The limits of a stream input, declared once (`helpers = [*ServerInput.helpers, StreamLimits]`):
    the largest frame (`message_length_limit`; a plugin sets `default_message_length_limit`), the
    bytes all connections may hold in unfinished frames, and the idle and slow-frame timeouts."""

    settings: ClassVar[list[Setting]] = [
        Setting("message_length_limit", "bytes", default=1024 * 1024, min=16,
                doc="largest message (a line, frame or datagram); longer ones are dropped and counted"),
        Setting("max_bytes_held", "bytes", default=64 * 1024 * 1024, min=1024,
                doc="bytes of unfinished frames held across all connections; beyond it reading pauses"),
        Setting("idle_timeout", "duration", default=600.0, min=0,
                doc="close a connection silent this long (0: never)"),
        Setting("frame_timeout", "duration", default=30.0, min=0,
                doc="close a connection whose frame stays unfinished this long (slow client; 0: never)"),
    ]

    @classmethod
    def settings_for(cls, plugin: type[Plugin]) -> list[Setting]:
        limit = getattr(plugin, "default_message_length_limit", None)
        if limit is None:
            return list(cls.settings)
        return [replace(s, default=limit) if s.name == "message_length_limit" else s for s in cls.settings]

    @staticmethod
    def budget(plugin: Plugin) -> ByteBudget:
        """The input's shared budget of bytes held in unfinished frames."""
        return ByteBudget(plugin.params["max_bytes_held"])


class Framer(Protocol):
    @property
    def held(self) -> int: ...

    def feed(self, data: bytes) -> list[bytes]: ...

    def flush(self) -> list[bytes]: ...


class ByteBudget:
    """Bytes held in unfinished frames across the connections of one input."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._room = asyncio.Event()
        self._room.set()

    def change(self, delta: int) -> None:
        self.held += delta
        if self.held <= self.limit:
            self._room.set()
        else:
            self._room.clear()

    async def room(self) -> None:
        await self._room.wait()


async def read_frames(
    reader: asyncio.StreamReader, framer: Framer, *, budget: ByteBudget | None, idle_timeout: float | None,
    frame_timeout: float | None, read_size: int = READ_SIZE,
) -> AsyncIterator[list[bytes]]:
    """The connection's frames, a read's worth at a time. Ends quietly on EOF or when the
    peer has sent nothing for `idle_timeout`; raises ProtocolError when a frame stays
    unfinished longer than `frame_timeout` (a slow client holding memory) or the framing
    is broken."""
    held = 0
    started: float | None = None
    try:
        while True:
            if budget is not None and held and budget.held > budget.limit:
                # Waiting holders cannot free each other: the wait is part of the frame's time.
                left = None if not frame_timeout or started is None else frame_timeout - (_time.monotonic() - started)
                try:
                    async with asyncio.timeout(None if left is None else max(left, 0.0)):
                        await budget.room()
                except TimeoutError:
                    raise ProtocolError("budget", f"frame unfinished after {frame_timeout:g}s with the input's "
                                                  f"max_bytes_held ({budget.limit}) spent") from None
            timeout = idle_timeout
            if started is not None and frame_timeout:
                left = frame_timeout - (_time.monotonic() - started)
                timeout = left if timeout is None else min(timeout, left)
            try:
                # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancellation that
                # arrives as the read completes, and the input would never stop.
                async with asyncio.timeout(None if timeout is None else max(timeout, 0.0)):
                    data = await reader.read(read_size)
            except TimeoutError:
                if started is not None and frame_timeout and _time.monotonic() - started >= frame_timeout:
                    raise ProtocolError("slow_client", f"frame unfinished after {frame_timeout:g}s") from None
                return
            try:
                frames = framer.feed(data) if data else framer.flush()
            except FrameError as exc:
                raise ProtocolError(exc.reason, str(exc)) from None
            now_held = framer.held
            if budget is not None and now_held != held:
                budget.change(now_held - held)
            held = now_held
            if not held:
                started = None
            elif started is None:
                started = _time.monotonic()
            if frames:
                yield frames
            if not data:
                return
    finally:
        if budget is not None and held:
            budget.change(-held)
