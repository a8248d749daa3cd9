"""The memory buffer: chunks are lists of the events themselves.

Acknowledgements are held per chunk a put lands in and released only when that chunk is
finished, so an input commits what an output has delivered and nothing more. Sizes are
estimated from the msgpack size of a few sampled events (encoding every event only to
count bytes would double the per-event cost of a put).
"""

from __future__ import annotations

from typing import Any

import msgpack

from logpipe.ack import Ack
from logpipe.buffer.keys import ChunkKey
from logpipe.buffer.store import BufferStore, Chunk
from logpipe.event import Event

SAMPLE = 8
#: Fixed per-event overhead added to the sampled size (tag, time, list framing).
EVENT_OVERHEAD = 16


class MemoryChunk(Chunk):
    __slots__ = ("acks", "events")

    def __init__(self, key: ChunkKey) -> None:
        super().__init__(key)
        self.events: list[Event] = []
        self.acks: list[Ack] = []


def estimate_size(events: list[Event]) -> int:
    """Approximate encoded size of a batch from a sample of at most SAMPLE events."""
    n = len(events)
    step = max(1, n // SAMPLE)
    sample = events[::step][:SAMPLE]
    packed = msgpack.packb([(e.tag, e.record) for e in sample], default=str)
    return int(len(packed) * n / len(sample)) + EVENT_OVERHEAD * n


class MemoryStore(BufferStore):
    def __init__(self) -> None:
        self._chunks: set[MemoryChunk] = set()

    async def open(self) -> list[Chunk]:
        return []

    def encode(self, events: list[Event]) -> tuple[Any, int]:
        return None, estimate_size(events)

    def new_chunk(self, key: ChunkKey) -> Chunk:
        chunk = MemoryChunk(key)
        self._chunks.add(chunk)
        return chunk

    def append(self, chunk: Chunk, events: list[Event], payload: Any, nbytes: int, ack: Ack) -> None:
        assert isinstance(chunk, MemoryChunk)
        chunk.events.extend(events)
        ack.hold()
        chunk.acks.append(ack)

    def commit(self, ack: Ack) -> None:
        """Nothing to do: acknowledgements wait for delivery, see `discard`."""

    def seal(self, chunk: Chunk) -> None:
        """Nothing to do: a memory chunk needs no preparation to be written."""

    async def load(self, chunk: Chunk) -> list[Event]:
        assert isinstance(chunk, MemoryChunk)
        return chunk.events

    async def discard(self, chunk: Chunk) -> None:
        assert isinstance(chunk, MemoryChunk)
        self._chunks.discard(chunk)
        acks, chunk.acks, chunk.events = chunk.acks, [], []
        for ack in acks:
            ack.release()

    async def close(self) -> int:
        lost = sum(len(c.events) for c in self._chunks)
        self._chunks.clear()
        return lost
