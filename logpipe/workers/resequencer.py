"""Results back in submission order (ARCHITECTURE.md, "Order").

Workers finish batches in any order; the buffers must receive them in the order the
batches left the queue, which holds each input's batches in the order it emitted them.
Results wait here until every earlier one has been taken.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Resequencer(Generic[T]):
    def __init__(self) -> None:
        self._waiting: dict[int, T] = {}
        self._next = 0
        self._arrived = asyncio.Event()
        #: Results that arrived while an earlier one was still missing (what re-sequencing fixed).
        self.early = 0

    def put(self, seq: int, value: T) -> None:
        self._waiting[seq] = value
        if seq == self._next:
            self._arrived.set()
        else:
            self.early += 1

    async def next(self) -> tuple[int, T]:
        """The next result in order, waiting for it."""
        while self._next not in self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        seq = self._next
        self._next += 1
        return seq, self._waiting.pop(seq)

    def __len__(self) -> int:
        return len(self._waiting)
