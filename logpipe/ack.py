"""The end-to-end acknowledgement handle (DESIGN.md, "Delivery contract").

One `Ack` travels with each batch an input emits. Whoever takes responsibility
for some of its events (an output buffer) calls `hold()`; when it has delivered
them or stored them durably it calls `release()`. The pipeline holds the ack
while it routes the batch, so a batch whose events were all dropped or routed
nowhere completes as soon as routing ends. When the count reaches zero the
input's callback runs, exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("logpipe.ack")


class Ack:
    __slots__ = ("_pending", "_callback", "done")

    def __init__(self, callback: Callable[[], None] | None = None) -> None:
        self._pending = 1
        self._callback = callback
        self.done = False

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
