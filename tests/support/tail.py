"""A harness for the tail/file inputs against real files, shared by the tail tests and the
container-log (Kubernetes) tests: an InputContext whose `emit` collects events, can be
blocked (a full pipeline) and leaves acknowledgement to the test; waits on conditions
with timeouts, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe.event import Event
from logpipe.plugin import InputContext
from logpipe_plugins.inputs.tail import FileInput, TailInput

FAST = {"stat_interval": 0.02, "refresh_interval": 0.05, "rotate_wait": 0.2, "save_interval": 0.05}


class Collector:
    """Plays the pipeline: records batches, optionally blocks in emit, acks when told."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.events: list[Event] = []
        self.batches: list[tuple[list[Event], Callable[[], None] | None]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.blocked = asyncio.Event()
        self._changed = asyncio.Event()
        self.crashed: BaseException | None = None

    def watch(self, task: asyncio.Task[None]) -> None:
        """Fail waits at once if the input task dies instead of timing out."""

        def done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                self.crashed = t.exception()
                self._changed.set()

        task.add_done_callback(done)

    async def emit(self, events: list[Event], on_ack: Callable[[], None] | None) -> None:
        if not self.open.is_set():
            self.blocked.set()
            await self.open.wait()
        self.batches.append((events, on_ack))
        self.events.extend(events)
        if self.auto_ack and on_ack is not None:
            on_ack()
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Event]:
        async def until() -> None:
            while len(self.events) < count:
                if self.crashed is not None:
                    raise AssertionError("input task crashed") from self.crashed
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)
        return self.events

    def messages(self) -> list[str]:
        return [e.record["message"] for e in self.events]


class Running:
    """An input task with its collector; `stop` cancels it like the pipeline does at shutdown."""

    def __init__(self, plugin: TailInput, collector: Collector, state_dir: Path) -> None:
        self.plugin = plugin
        self.collector = collector
        self.ctx = InputContext(collector.emit, str(state_dir), plugin.id)
        self.task = asyncio.create_task(plugin.run(self.ctx))
        collector.watch(self.task)

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.plugin.close()


def start(tmp_path: Path, cls: type[TailInput] = TailInput, collector: Collector | None = None,
          **settings: Any) -> Running:
    merged = dict(FAST) if cls is TailInput else {k: v for k, v in FAST.items() if k != "refresh_interval"}
    if cls is FileInput:
        merged["discover_interval"] = 2
    merged.update(settings)
    return Running(cls(**merged), collector or Collector(), tmp_path / "state")


def numbered(start: int, count: int, prefix: str = "line") -> bytes:
    return b"".join(f"{prefix} {i}\n".encode() for i in range(start, start + count))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def write_lines(path: Path, start: int, count: int, prefix: str = "line") -> None:
    append(path, numbered(start, count, prefix))


def rename_while_writing(path: Path, new_name: Path, data: bytes) -> None:
    """The application keeps its descriptor across the rename and writes on into the old file."""
    with open(path, "ab") as writer:
        os.rename(path, new_name)
        writer.write(data)


def expect_exact(messages: list[str], start: int, count: int, prefix: str = "line") -> None:
    assert sorted(messages, key=lambda m: int(m.split()[-1])) == [f"{prefix} {i}" for i in range(start, start + count)]


async def sentinel(run: Running, path: Path, expected_before: int) -> None:
    """Append a marker and wait for it: everything read before it has been counted,
    so an exact count afterwards also proves there were no late duplicates."""
    append(path, b"sentinel 999999999\n")
    await run.collector.wait_for(expected_before + 1)
    assert run.collector.events[-1].record["message"] == "sentinel 999999999"
    del run.collector.events[-1]


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def saved_offsets(state_dir: Path) -> dict[str, int]:
    (pos,) = list(state_dir.glob("tail-*.pos"))
    return {e["path"]: e["offset"] for e in orjson.loads(pos.read_bytes())["files"]}


def open_fds_to(path: str) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(path):
                count += 1
        except OSError:
            pass
    return count
