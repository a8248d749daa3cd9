"""What the runner needs from a buffer storage (memory or file).

The runner owns the policy — chunking, limits, flushing, retries; a store only keeps
chunks: appends batches to them, seals them for flushing, hands their items back and
forgets them. Items are the output's formatted bytes (Output.format), or Event objects
for an output that wants events. The two stores differ in when an input's acknowledgement may complete:
the memory store holds it until the chunk is finished (delivered, dead-lettered or
dropped), the file store only until the batch is durably on disk.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any

from logpipe.ack import Ack
from logpipe.buffer.keys import ChunkKey
from logpipe.event import Event


class Chunk:
    """A batch of events with one chunk key, flushed (written) as a whole."""

    __slots__ = ("_done", "bytes", "created", "key", "records")

    def __init__(self, key: ChunkKey, records: int = 0, nbytes: int = 0) -> None:
        self.key = key
        self.records = records
        self.bytes = nbytes
        self.created = time.monotonic()
        self._done: asyncio.Future[None] | None = None

    def done_future(self) -> asyncio.Future[None]:
        """Resolved when the chunk is finished; created only when someone (flush) waits for it."""
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        return self._done

    def mark_done(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


class BufferStore(ABC):
    #: Chunks survive the process (the file store): a stop need not wait for an output
    #: that is failing, since the data is replayed at the next start.
    durable = False

    @abstractmethod
    async def open(self) -> list[Chunk]:
        """Prepare the storage; return chunks left from an earlier run, sealed, oldest first."""

    @abstractmethod
    def encode(self, items: list[Any]) -> tuple[Any, int]:
        """Prepare a batch for `append`: (payload, size in bytes counted against the limits)."""

    @abstractmethod
    def new_chunk(self, key: ChunkKey) -> Chunk: ...

    @abstractmethod
    def append(self, chunk: Chunk, items: list[Any], payload: Any, nbytes: int, ack: Ack) -> None:
        """Add an encoded batch to a staged chunk."""

    def skip_stored(self, events: list[Event]) -> list[Event]:
        """The events this store does not already hold or has not delivered (a durable store
        remembers what tail lines it took: logpipe/buffer/marks.py)."""
        return events

    def note_stored(self, events: list[Event]) -> None:  # noqa: B027 - optional: only durable stores mark
        """These events were appended (before `commit`)."""

    @abstractmethod
    def commit(self, ack: Ack) -> None:
        """Called once after the appends of one put: arrange for `ack` to be released when due."""

    @abstractmethod
    def seal(self, chunk: Chunk) -> None:
        """No more appends: the chunk is queued for flushing."""

    @abstractmethod
    async def load(self, chunk: Chunk) -> list[Any]:
        """The chunk's items, for writing (events for a chunk stored before its output formatted)."""

    @abstractmethod
    async def discard(self, chunk: Chunk) -> None:
        """The chunk is finished (delivered, dead-lettered or dropped): forget it."""

    def stats(self) -> dict[str, Any]:
        """Store-specific figures for OutputRunner.stats()."""
        return {}

    @abstractmethod
    async def close(self) -> int:
        """Release the storage; return how many events it held that are now lost (memory)."""
