"""What every benchmark script shares: the event loop it runs on, peak RSS, and the
serve-an-input-to-a-sender-process loop of the network input benchmarks."""

from __future__ import annotations

import asyncio
import resource
import subprocess
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from logpipe.event import Event
from logpipe.plugin import Input, InputContext

T = TypeVar("T")


def run_loop(main: Callable[[], Coroutine[Any, Any, T]], uvloop: bool = True) -> T:
    """Run on uvloop when asked and installed, as `logpipe run` does."""
    if uvloop:
        try:
            import uvloop as _uvloop
        except ImportError:
            pass
        else:
            return _uvloop.run(main())
    return asyncio.run(main())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def serve_input(inp: Input, events: int, client_cmd: list[str]) -> tuple[float, int]:
    """With `inp` started (its port goes into `client_cmd`), run the sender process (it prints
    its own elapsed seconds), acknowledge every batch at once, and return (the sender's
    elapsed time, events received)."""
    count = 0
    done = asyncio.Event()

    async def emit(batch: list[Event], on_ack: Any) -> None:
        nonlocal count
        count += len(batch)
        if on_ack is not None:
            on_ack()
        if count >= events:
            done.set()

    task = asyncio.create_task(inp.run(InputContext(emit, "/tmp", "bench")))
    proc = await asyncio.create_subprocess_exec(*client_cmd, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    await asyncio.wait_for(done.wait(), 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await inp.close()
    return float(out.decode().strip()), count
