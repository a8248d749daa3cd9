"""Acknowledged-position tracking for one tailed file (plugin-private helper of in_tail).

A file's position may only move past bytes whose events the pipeline has
acknowledged (ARCHITECTURE.md, "Delivery"). Batches are acknowledged in order
for a single output but not necessarily with several, so each emitted batch gets
an entry `[end_offset, done]` in a queue and the committed position advances over
the contiguous prefix of done entries only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class AckWindow:
    """Committed offset of one generation of a file's content.

    A truncated file starts a new window at 0: acknowledgements still in flight for
    the old content complete into the old window and can no longer move the new
    position.
    """

    __slots__ = ("_on_change", "_queue", "committed", "last_end")

    def __init__(self, committed: int, on_change: Callable[[], None]) -> None:
        self.committed = committed
        self.last_end = committed
        self._queue: deque[list[int | bool]] = deque()
        self._on_change = on_change

    def push(self, end_offset: int) -> Callable[[], None]:
        """Register a batch ending at `end_offset`; returns its `on_ack` callback."""
        entry: list[int | bool] = [end_offset, False]
        self._queue.append(entry)
        self.last_end = end_offset

        def on_ack() -> None:
            entry[1] = True
            self._settle()

        return on_ack

    def advance(self, end_offset: int) -> None:
        """Bytes that produced no event (skipped lines): committed once everything before them is."""
        if end_offset <= self.last_end:
            return
        self._queue.append([end_offset, True])
        self.last_end = end_offset
        self._settle()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _settle(self) -> None:
        queue = self._queue
        moved = False
        while queue and queue[0][1]:
            self.committed = int(queue.popleft()[0])
            moved = True
        if moved:
            self._on_change()
