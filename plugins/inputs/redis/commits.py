"""Commits on acknowledgement, off the ack callback.

The ack contract calls back synchronously on the event loop; a Redis commit (XACK, LREM)
is a round trip. The Committer queues what each acknowledged batch commits and one task
sends them, several batches per round trip when acks arrive faster than Redis answers.
A commit that fails because Redis is away is kept and tried again; at shutdown what is
queued gets a last short chance, and anything still uncommitted is simply redelivered
later (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from logpipe.helpers.redis_client import TRANSIENT_ERRORS
from logpipe.plugin import AckCallback

T = TypeVar("T")
_RETRY_WAIT = 0.5
_SHUTDOWN_GRACE = 2.0


class Committer(Generic[T]):
    def __init__(self, commit: Callable[[list[T]], Awaitable[None]], log: logging.Logger) -> None:
        self._commit = commit
        self._log = log
        self._queued: list[T] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def on_ack(self, items: list[T]) -> AckCallback:
        """The callback that commits `items` once their batch is acknowledged."""
        def acked() -> None:
            self._queued.extend(items)
            self._ready.set()
        return acked

    async def __aenter__(self) -> Committer[T]:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Let the sender send what is queued and stop, within the grace time. The sender is
        not cancelled mid-send: redis-py can swallow a cancellation that lands in its reply
        parser, and the sender would then wait for acks forever (a shutdown that hangs)."""
        assert self._task is not None
        self._closing = True
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), _SHUTDOWN_GRACE)
        if not self._task.done():
            self._task.cancel()  # not awaited: whatever is still queued is redelivered later

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            try:
                if self._queued:
                    await self._send()
            except TRANSIENT_ERRORS as exc:
                if self._closing:
                    return  # Redis is away at shutdown: the rest is redelivered later
                self._log.warning("commit failed (%s); retrying", exc)
                self._ready.set()
                await asyncio.sleep(_RETRY_WAIT)
                continue
            if self._closing and not self._queued:
                return

    async def _send(self) -> None:
        batch, self._queued = self._queued, []
        try:
            await self._commit(batch)
        except BaseException:
            self._queued[:0] = batch
            raise
