"""Periodic callbacks with a plugin's lifecycle (Fluentd's `timer_execute`).

Every plugin has `self.timers`. A plugin schedules its periodic work from `start()`
(or from a connection handler) with `self.timers.every(interval, callback)`; the core
cancels every timer when it closes the plugin, so no plugin writes a `while True:
await asyncio.sleep(...)` loop, nor forgets to cancel one:

    async def start(self) -> None:
        self.timers.every(self.heartbeat_interval, self._probe_servers, immediately=True)

A callback that raises is logged and the timer goes on: one bad tick must not stop a
heartbeat for good. A callback may be a coroutine function; the next tick waits for
the previous one to finish (ticks never pile up behind a slow callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable

Callback = Callable[[], Awaitable[None] | None]


class Timer:
    """One periodic callback; `cancel()` stops it (also done by `Timers.close`)."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def cancel(self) -> None:
        self._task.cancel()

    @property
    def running(self) -> bool:
        return not self._task.done()


class Timers:
    """The timers of one plugin."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logging.getLogger("logpipe.timer")
        self._tasks: set[asyncio.Task[None]] = set()

    def every(self, interval: float, callback: Callback, *, immediately: bool = False, name: str = "") -> Timer:
        """Call `callback` every `interval` seconds (first at once with `immediately`)."""
        if interval <= 0:
            raise ValueError(f"timer interval must be positive, got {interval}")
        task = asyncio.create_task(self._loop(interval, callback, immediately),
                                   name=name or f"timer:{getattr(callback, '__name__', 'callback')}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Timer(task)

    async def close(self) -> None:
        """Cancel every timer and wait until none runs."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __len__(self) -> int:
        return len(self._tasks)

    async def _loop(self, interval: float, callback: Callback, immediately: bool) -> None:
        if not immediately:
            await asyncio.sleep(interval)
        while True:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a failing tick is logged; the timer goes on
                self._log.exception("timer callback %s failed", getattr(callback, "__name__", callback))
            await asyncio.sleep(interval)
