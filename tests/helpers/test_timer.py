"""Timers: periodic callbacks that die with their plugin."""

from __future__ import annotations

import asyncio

import pytest

from logpipe.helpers.timer import Timers
from logpipe.plugin import Output


class Ticking(Output):
    name = "ticking_probe"

    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0
        self.ticked = asyncio.Event()

    async def start(self) -> None:
        self.timers.every(0.01, self._tick, immediately=True)

    async def _tick(self) -> None:
        self.ticks += 1
        if self.ticks >= 3:
            self.ticked.set()


async def test_timers_start_with_the_plugin_and_stop_at_close() -> None:
    plugin = Ticking()
    await plugin.lifecycle_start()
    await asyncio.wait_for(plugin.ticked.wait(), 5)
    assert len(plugin.timers) == 1
    await plugin.lifecycle_close()
    assert len(plugin.timers) == 0
    seen = plugin.ticks
    await asyncio.sleep(0.05)
    assert plugin.ticks == seen


async def test_a_failing_tick_is_logged_and_the_timer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    timers = Timers()
    calls: list[int] = []
    done = asyncio.Event()

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        done.set()

    timers.every(0.01, flaky)
    await asyncio.wait_for(done.wait(), 5)
    await timers.close()
    assert len(calls) >= 2 and "timer callback flaky failed" in caplog.text


async def test_cancel_stops_one_timer() -> None:
    timers = Timers()
    timer = timers.every(0.01, lambda: None)
    timer.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not timer.running
    with pytest.raises(ValueError):
        timers.every(0, lambda: None)
    await timers.close()
