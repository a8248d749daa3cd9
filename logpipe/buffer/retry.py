"""Retry schedule of one chunk: when to try again, and when to give up.

Pure logic with an injectable clock and random source so the schedule can be tested
without waiting. Same rules as Fluentd: exponential delays `wait * base**(n-1)` capped by
`max_interval`, jittered by ±12.5% when randomized; periodic delays are constant. A chunk
is given up when it has been retried `max_times` times, or when the next attempt would
start after `timeout` has passed since the first failure — unless `forever`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from logpipe.buffer.settings import BufferConfig
from logpipe.errors import RetryableError

RANDOMIZE_WIDTH = 0.125


@dataclass(frozen=True)
class RetryPolicy:
    type: str = "exponential_backoff"
    wait: float = 1.0
    base: float = 2.0
    max_interval: float | None = 60.0
    max_times: int | None = None
    timeout: float | None = 72 * 3600.0
    forever: bool = False
    randomize: bool = True

    @classmethod
    def from_config(cls, config: BufferConfig) -> RetryPolicy:
        return cls(
            type=config.retry_type, wait=config.retry_wait, base=config.retry_exponential_backoff_base,
            max_interval=config.retry_max_interval, max_times=config.retry_max_times,
            timeout=config.retry_timeout, forever=config.retry_forever, randomize=config.retry_randomize,
        )


class RetryState:
    """Counts the failures of one chunk and answers "wait how long?" or "give up"."""

    def __init__(
        self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng
        self.steps = 0
        self.started: float | None = None

    def next_wait(self) -> float | None:
        """Record one more failure; return the delay before the next attempt, or None to give up."""
        now = self._clock()
        if self.started is None:
            self.started = now
        self.steps += 1
        policy = self.policy
        if policy.type == "periodic":
            wait = policy.wait
        else:
            wait = policy.wait * policy.base ** (self.steps - 1)
            if policy.max_interval is not None:
                wait = min(wait, policy.max_interval)
            if policy.randomize:
                wait *= 1 + RANDOMIZE_WIDTH * (2 * self._rng() - 1)
        if policy.forever:
            return wait
        if policy.max_times is not None and self.steps > policy.max_times:
            return None
        if policy.timeout is not None and now + wait - self.started > policy.timeout:
            return None
        return wait


#: Exceptions from Output.write that retry a chunk with backoff: I/O failures, which may pass
#: later. An output adds its client library's transport errors (`Output.retryable_errors`).
#: Anything else is a programming or data error that fails the same way on every attempt, so
#: the chunk is dead-lettered at once with the reason instead of holding the output for 72 h.
RETRIED: tuple[type[BaseException], ...] = (RetryableError, OSError, TimeoutError)
