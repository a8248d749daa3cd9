"""Throughput of the buffer engine: events/s through a memory or file buffer into a null output.

    python benchmarks/bench_buffer.py                 # memory and file, each in its own process
    python benchmarks/bench_buffer.py file --events 500000 --batch 1000 --fsync always

Measures put → chunk → write → acknowledgement, with every ack counted, and prints the
peak RSS of the process (each mode runs in a fresh process so the figures do not mix).
Ten distinct batches are cycled so that RSS shows the buffer, not the test data.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from typing import Any

from harness import peak_rss_mib

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.event import Event
from logpipe.plugin import Output, WriteResult


class NullOutput(Output):
    name = "null"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.count = 0

    async def write(self, events: list[Event]) -> WriteResult | None:
        self.count += len(events)
        return None


def make_batches(total: int, size: int) -> list[list[Event]]:
    base = 1_700_000_000_000_000_000
    return [
        [Event("bench.access", base + i, {
            "message": f'127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /item/{i} HTTP/1.0" 200 2326',
            "host": "web-1", "status": 200, "bytes": 2326, "n": i,
        }) for i in range(start, min(start + size, total))]
        for start in range(0, total, size)
    ]


async def run(mode: str, total: int, size: int, fsync: str) -> None:
    distinct = make_batches(10 * size, size)
    batches = [distinct[i % len(distinct)] for i in range(total // size)]
    total = len(batches) * size
    with tempfile.TemporaryDirectory() as state:
        settings: dict[str, Any] = {"buffer": mode, "flush_interval": "100ms"}
        if mode == "file":
            settings["buffer_fsync"] = fsync
        out = NullOutput(**settings)
        runner = OutputRunner(out, state_dir=state)
        await runner.start()
        acked = 0

        def on_ack() -> None:
            nonlocal acked
            acked += 1

        started = time.perf_counter()
        for batch in batches:
            ack = Ack(on_ack)
            await runner.put(batch, ack)
            ack.release()
        await runner.flush()
        elapsed = time.perf_counter() - started
        await runner.stop(10)
    assert out.count == total and acked == len(batches), (out.count, acked)
    rss_mb = peak_rss_mib()
    label = mode if mode == "memory" else f"file (fsync {fsync})"
    print(f"{label:<22} {total:>9} events  batch {size:>5}  {total / elapsed:>11,.0f} events/s  "
          f"peak RSS {rss_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="all", choices=("all", "memory", "file"))
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--fsync", default="always", choices=("always", "interval", "never"))
    args = parser.parse_args()
    if args.mode == "all":
        for mode in ("memory", "file"):
            subprocess.run([sys.executable, __file__, mode, "--events", str(args.events),
                            "--batch", str(args.batch), "--fsync", args.fsync], check=True)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args.mode, args.events, args.batch, args.fsync))


if __name__ == "__main__":
    main()
