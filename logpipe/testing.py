"""Test drivers for plugin authors, as Fluentd ships `Fluent::Test::Driver::Input/Filter/Output`.

A third-party plugin should be testable the way the built-ins are, against the real core
rather than a mock of it:

- `FilterDriver` runs a filter (started and closed as the pipeline would) over records or
  events and returns what comes out.
- `InputDriver` runs an input against an in-memory context: every batch it emits is kept,
  and the test decides when (and whether) each batch is acknowledged, so commit-on-ack
  logic (positions, protocol acks) can be checked.
- `OutputDriver` writes events through the real buffer and retry engine (memory buffer,
  flushed at once, fast retries) and reports what was delivered, retried and dead-lettered.
- `ScriptedOutput` is an output that records what it is given and fails on a script
  (`"retry"`, `"permanent"`, `"timeout"`): the sink for testing what a pipeline does when
  an output misbehaves.

    async with FilterDriver(MyFilter(field="status")) as driver:
        out = driver.run([{"status": 503}])
        assert out[0].get("[status_class]") == "5xx"
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.event import Event
from logpipe.plugin import AckCallback, Filter, Input, InputContext, Output, RetryableError, Setting, WriteResult

__all__ = ["Delivery", "FilterDriver", "InputDriver", "OutputDriver", "ScriptedOutput"]


def _events(items: Iterable[dict[str, Any] | Event], tag: str) -> list[Event]:
    return [item if isinstance(item, Event) else Event(tag, None, dict(item)) for item in items]


class FilterDriver:
    """Run one filter outside a pipeline: `async with FilterDriver(f) as d: d.run(records)`."""

    def __init__(self, plugin: Filter) -> None:
        self.plugin = plugin

    async def __aenter__(self) -> FilterDriver:
        await self.plugin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.plugin.close()

    def run(self, items: Iterable[dict[str, Any] | Event], tag: str = "test") -> list[Event]:
        """The events the filter hands on for these records (or events), in its order."""
        return self.plugin.filter(_events(items, tag))


@dataclass
class EmittedBatch:
    events: list[Event]
    on_ack: AckCallback | None
    acked: bool = False

    def ack(self) -> None:
        """Complete this batch's acknowledgement, as the pipeline does once outputs have it."""
        if not self.acked:
            self.acked = True
            if self.on_ack is not None:
                self.on_ack()


class InputDriver:
    """Run an input's `run()` as a task with an in-memory context.

    `auto_ack=True` acknowledges each batch at once (a pipeline with a fast output);
    otherwise call `batch.ack()` yourself. `max_pending` bounds unacknowledged batches:
    emit then waits, as the pipeline's bounded queue makes it wait.
    """

    def __init__(self, plugin: Input, *, state_dir: str | None = None, auto_ack: bool = True,
                 max_pending: int = 1000) -> None:
        self.plugin = plugin
        self.auto_ack = auto_ack
        self.batches: list[EmittedBatch] = []
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="logpipe-test-")
        self.state_dir = state_dir or self._tmp.name  # type: ignore[union-attr]
        self._space = asyncio.Semaphore(max_pending)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def events(self) -> list[Event]:
        return [ev for batch in self.batches for ev in batch.events]

    async def _emit(self, events: list[Event], on_ack: AckCallback | None) -> None:
        await self._space.acquire()
        batch = EmittedBatch(list(events), on_ack)
        self.batches.append(batch)
        if self.auto_ack:
            batch.ack()
        self._space.release()
        self._changed.set()

    async def start(self) -> InputDriver:
        await self.plugin.start()
        ctx = InputContext(self._emit, self.state_dir, self.plugin.id)
        self._task = asyncio.create_task(self.plugin.run(ctx), name=f"input {self.plugin.id}")
        return self

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Event]:
        """Wait until the input has emitted at least `count` events (TimeoutError otherwise);
        an exception from the input's run() is raised here."""
        async def enough() -> None:
            while len(self.events) < count:
                if self._task is not None and self._task.done():
                    self._task.result()
                    raise AssertionError(f"the input finished after {len(self.events)} of {count} events")
                self._changed.clear()
                waiter = asyncio.create_task(self._changed.wait())
                done_set = {waiter} if self._task is None else {waiter, self._task}
                await asyncio.wait(done_set, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()

        await asyncio.wait_for(enough(), timeout)
        return self.events

    async def stop(self) -> None:
        """Cancel the input's task (as shutdown does) and close it."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.plugin.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aenter__(self) -> InputDriver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass
class Delivery:
    """What became of the events an OutputDriver wrote."""

    delivered: int = 0
    retries: int = 0
    dead_lettered: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class OutputDriver:
    """Write events through the real buffer engine into one output.

    Buffer settings not given on the output default to a memory buffer flushed at once with
    quick retries (`retry_wait` 0.01 s, at most 3 tries), so failures show up fast.
    """

    TEST_BUFFER = {"flush_interval": 0.0, "retry_wait": 0.01, "retry_max_times": 3, "retry_randomize": False}

    def __init__(self, plugin: Output, *, state_dir: str | None = None) -> None:
        for key, value in self.TEST_BUFFER.items():
            if plugin.params.get(key) is None:  # not set by the test: the quick test value
                plugin.params[key] = value
        self.plugin = plugin
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="logpipe-test-")
        self.state_dir = state_dir or self._tmp.name  # type: ignore[union-attr]
        self.runner: OutputRunner | None = None

    async def __aenter__(self) -> OutputDriver:
        self.runner = OutputRunner(self.plugin, state_dir=self.state_dir)
        await self.runner.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.stop(timeout=10.0)
        if self._tmp is not None:
            self._tmp.cleanup()

    async def write(self, items: Iterable[dict[str, Any] | Event], tag: str = "test",
                    timeout: float = 10.0) -> Delivery:
        """Put the events in, wait until their acknowledgement completes, report the counts."""
        assert self.runner is not None, "use `async with OutputDriver(output) as driver`"
        before = dict(self.runner.counts)
        done = asyncio.Event()
        ack = Ack(done.set)  # born held once: the router's own hold, released after the put
        await self.runner.put(_events(items, tag), ack)
        ack.release()
        await self.runner.flush()
        await asyncio.wait_for(done.wait(), timeout)
        counts = {k: v - before.get(k, 0) for k, v in self.runner.counts.items()}
        return Delivery(counts.get("delivered", 0), counts.get("retries", 0), counts.get("dead_lettered", 0),
                        counts)


class ScriptedOutput(Output):
    """Records every batch written and fails as scripted, one step per write call.

    Steps: None (deliver), "retry" (raise RetryableError: the chunk is retried), "timeout"
    (raise TimeoutError, an I/O failure), "permanent" (every item fails for good: dead-lettered),
    or a WriteResult to return. After the script, every write delivers.
    """

    name = "scripted"
    doc = "Test sink: records writes and fails on a script (logpipe.testing)."
    settings = [Setting("script", "any", default=[], doc="the outcome of each write call, in order")]
    buffer_defaults = {"flush_interval": 0.0}

    def __init__(self, script: Sequence[str | WriteResult | None] = (), **settings: Any) -> None:
        super().__init__(**settings)
        self.script = list(script) or list(self.params["script"])
        self.written: list[list[Event]] = []
        self.calls = 0

    @property
    def events(self) -> list[Event]:
        return [ev for batch in self.written for ev in batch]

    async def write(self, events: list[Event]) -> WriteResult | None:
        step = self.script[self.calls] if self.calls < len(self.script) else None
        self.calls += 1
        if step == "retry":
            raise RetryableError("scripted retryable failure")
        if step == "timeout":
            raise TimeoutError("scripted timeout")
        if step == "permanent":
            return WriteResult(failed=[(i, "scripted permanent failure") for i in range(len(events))])
        if isinstance(step, WriteResult):
            delivered = set(range(len(events))) - set(step.retry) - {i for i, _ in step.failed}
            self.written.append([events[i] for i in sorted(delivered)])
            return step
        self.written.append(list(events))
        return None
