"""Length-prefixed frames over a Unix socket pair, one pair per worker.

Chosen by measurement (benchmarks/bench_workers.py, RESULTS.md "Worker transport"): with
batches of hundreds of events a frame is tens to hundreds of kilobytes, and a socket
pair moves them at gigabytes per second, so the copy costs a few nanoseconds per event;
a shared-memory ring would save that copy but not the pickling, which is what the main
process pays for. A socket pair also tells each side at once when the other is gone (EOF),
which is how a dead worker is noticed.
"""

from __future__ import annotations

import asyncio
import socket
import struct

_HEADER = struct.Struct("<I")
#: A frame larger than this is a bug (a batch is bounded by its input), not data.
MAX_FRAME = 1 << 30


def socket_pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


class FrameStream:
    """Frames over an asyncio stream; `recv` raises EOFError when the peer is gone."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> FrameStream:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, payload: bytes) -> None:
        self.send_nowait(payload)
        await self._writer.drain()

    def send_nowait(self, payload: bytes) -> None:
        """Queue a frame without waiting for the peer to read it (the caller bounds how many)."""
        if self._writer.is_closing():
            return  # the peer is gone: its reader sees EOF and what it held is sent elsewhere
        self._writer.write(_HEADER.pack(len(payload)))
        self._writer.write(payload)

    async def recv(self) -> bytes:
        try:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            if size > MAX_FRAME:
                raise EOFError(f"frame of {size} bytes")
            return await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError(str(exc)) from None

    def close(self) -> None:
        self._writer.close()
