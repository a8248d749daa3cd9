"""The end-to-end acknowledgement handle (ARCHITECTURE.md, "Delivery").

One `Ack` travels with each batch an input emits. Whoever takes responsibility
for some of its events (an output buffer) calls `hold()`; when it has delivered
them or stored them durably it calls `release()`. The pipeline holds the ack
while it routes the batch, so a batch whose events were all dropped or routed
nowhere completes as soon as routing ends. When the count reaches zero the
input's callback runs, exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logpipe.report import DeliveryReport

log = logging.getLogger("logpipe.ack")


class Ack:
    """`await ack` waits for completion and returns its DeliveryReport (None when the batch
    did not ask for one: inputs' batches)."""

    __slots__ = ("_pending", "_callback", "done", "report")

    def __init__(self, callback: Callable[[], None] | None = None, report: DeliveryReport | None = None) -> None:
        self._pending = 1
        self._callback = callback
        self.done = False
        self.report = report

    def __await__(self) -> Generator[Any, None, DeliveryReport | None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)

        self.on_done(resolve)
        yield from future.__await__()
        return self.report

    def hold(self, count: int = 1) -> None:
        if self.done:
            raise RuntimeError("hold() on a completed Ack")
        self._pending += count

    def release(self, count: int = 1) -> None:
        self._pending -= count
        if self._pending > 0:
            return
        if self._pending < 0:
            raise RuntimeError("Ack released more often than held")
        self.done = True
        callback, self._callback = self._callback, None
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("acknowledgement callback failed")

    def on_done(self, callback: Callable[[], None]) -> None:
        """Also call `callback` on completion (at once if already complete)."""
        if self.done:
            callback()
            return
        previous = self._callback
        if previous is None:
            self._callback = callback
            return

        def both() -> None:
            previous()
            callback()

        self._callback = both

    @property
    def pending(self) -> int:
        return self._pending
