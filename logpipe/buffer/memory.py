"""The memory buffer: chunks are lists of the output's formatted items (bytes), or of the
events themselves for an output that wants events.

Acknowledgements are held per chunk a put lands in and released only when that chunk is
finished, so an input commits what an output has delivered and nothing more. Formatted
items are sized by their real length plus CPython's per-object cost, so total_limit_size
bounds real memory; events are estimated from the msgpack size of a few sampled events
(encoding every event only to count bytes would double the per-event cost of a put).
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
#: What a bytes object costs beyond its length (object header) plus its slot in the chunk's list.
ITEM_OVERHEAD = 33 + 8


class MemoryChunk(Chunk):
    __slots__ = ("acks", "items", "spans")

    def __init__(self, key: ChunkKey) -> None:
        super().__init__(key)
        self.items: list[Any] = []
        self.acks: list[Ack] = []
        #: How many items each append (each entry of `acks`) added: which ack an item belongs to.
        self.spans: list[int] = []


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

    def encode(self, items: list[Any]) -> tuple[Any, int]:
        if items and items[0].__class__ is bytes:
            return None, sum(map(len, items)) + ITEM_OVERHEAD * len(items)
        return None, estimate_size(items)

    def new_chunk(self, key: ChunkKey) -> Chunk:
        chunk = MemoryChunk(key)
        self._chunks.add(chunk)
        return chunk

    def append(self, chunk: Chunk, items: list[Any], payload: Any, nbytes: int, ack: Ack) -> None:
        assert isinstance(chunk, MemoryChunk)
        chunk.items.extend(items)
        ack.hold()
        chunk.acks.append(ack)
        chunk.spans.append(len(items))

    def commit(self, ack: Ack) -> None:
        """Nothing to do: acknowledgements wait for delivery, see `discard`."""

    def seal(self, chunk: Chunk) -> None:
        """Nothing to do: a memory chunk needs no preparation to be written."""

    async def load(self, chunk: Chunk) -> list[Any]:
        assert isinstance(chunk, MemoryChunk)
        return chunk.items

    async def discard(self, chunk: Chunk) -> None:
        assert isinstance(chunk, MemoryChunk)
        self._chunks.discard(chunk)
        acks, chunk.acks, chunk.items, chunk.spans = chunk.acks, [], [], []
        for ack in acks:
            ack.release()

    async def close(self) -> int:
        lost = sum(len(c.items) for c in self._chunks)
        self._chunks.clear()
        return lost
