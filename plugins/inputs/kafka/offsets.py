"""Which offsets the Kafka input may commit (plugin-private helper of the kafka input).

A partition's committed offset may only move past records whose events the pipeline has
acknowledged (ARCHITECTURE.md, "Delivery"). Batches can be acknowledged out of order
(several outputs, retries), so as tail does with file positions each emitted batch's
stretch of a partition is queued `[next_offset, done]` and the committable offset is the
end of the contiguous prefix of done stretches. A partition that is revoked (a
rebalance) gets a new window if it comes back: acknowledgements still in flight for the
old one complete into the old window and never move the new position.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

P = TypeVar("P")


class PartitionWindow:
    """Acknowledged prefix of one partition for one assignment."""

    __slots__ = ("_queue", "done", "committed")

    def __init__(self) -> None:
        self._queue: deque[list[int | bool]] = deque()
        self.done: int | None = None  # next offset to read after the acknowledged prefix
        self.committed: int | None = None  # what the broker has from us

    def push(self, next_offset: int) -> list[int | bool]:
        entry: list[int | bool] = [next_offset, False]
        self._queue.append(entry)
        return entry

    def settle(self) -> None:
        queue = self._queue
        while queue and queue[0][1]:
            self.done = int(queue.popleft()[0])

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    @property
    def uncommitted(self) -> bool:
        return self.done is not None and self.done != self.committed


class Offsets(Generic[P]):
    """The windows of every partition this consumer holds now."""

    def __init__(self, on_progress: Callable[[], None]) -> None:
        self._windows: dict[P, PartitionWindow] = {}
        self._on_progress = on_progress

    def assign(self, partitions: set[P]) -> None:
        for partition in partitions:
            self._windows.setdefault(partition, PartitionWindow())

    def revoke(self, partitions: set[P]) -> None:
        for partition in partitions:
            self._windows.pop(partition, None)

    def track(self, stretches: dict[P, int]) -> Callable[[], None]:
        """Register one batch (partition → the offset after its last record in the batch);
        returns the batch's on_ack callback."""
        entries = []
        for partition, next_offset in stretches.items():
            window = self._windows.get(partition)
            if window is None:
                window = self._windows[partition] = PartitionWindow()
            entries.append((window, window.push(next_offset)))

        def on_ack() -> None:
            for window, entry in entries:
                entry[1] = True
                window.settle()
            self._on_progress()

        return on_ack

    def committable(self, partitions: set[P] | None = None) -> dict[P, int]:
        """partition → offset to commit, for those that moved since their last commit."""
        return {p: w.done for p, w in self._windows.items()
                if w.uncommitted and w.done is not None and (partitions is None or p in partitions)}

    def committed(self, offsets: dict[P, int]) -> None:
        for partition, offset in offsets.items():
            window = self._windows.get(partition)
            if window is not None:
                window.committed = offset

    def in_flight(self, partitions: set[P]) -> int:
        return sum(w.in_flight for p, w in self._windows.items() if p in partitions)
