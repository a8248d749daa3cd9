"""Tail input raw throughput: lines read from a file into events, per second.

Generates a temp file of N Apache-style lines, runs the `tail` input from the head
with a collector that acknowledges every batch at once, and prints lines/s and the
process's peak RSS. One core, one file, no filters or outputs: the input's own cost.

    python benchmarks/bench_tail.py [--lines 2000000] [--input tail|file] [--format none|json] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from typing import Any

from harness import peak_rss_mib

from logpipe.event import Event
from logpipe.plugin import InputContext
from logpipe.process import tune_gc
from logpipe_plugins.inputs.tail import FileInput, TailInput

LINE = ('203.0.113.{i} - - [10/Oct/2024:13:55:36 +0000] "GET /index.html?id={n} HTTP/1.1" 200 {n} '
        '"-" "Mozilla/5.0"\n')
JSON = '{{"host":"203.0.113.{i}","path":"/index.html","id":{n},"status":200,"agent":"Mozilla/5.0"}}\n'


def make_file(directory: str, lines: int, fmt: str) -> str:
    path = os.path.join(directory, "bench.log")
    template = JSON if fmt == "json" else LINE
    with open(path, "w") as fh:
        fh.writelines(template.format(i=n % 250, n=n) for n in range(lines))
    return path


async def run(path: str, lines: int, cls: type[TailInput], settings: dict[str, Any],
              state: str) -> tuple[float, float]:
    """Returns (wall seconds, CPU seconds): on a shared machine the CPU figure is the steadier one."""
    done = asyncio.Event()
    count = 0

    async def emit(events: list[Event], on_ack: Any) -> None:
        nonlocal count
        count += len(events)
        if on_ack is not None:
            on_ack()
        if count >= lines:
            done.set()

    plugin = cls(path=path, **settings)
    ctx = InputContext(emit, state, "bench")
    t0, c0 = time.perf_counter(), time.process_time()
    task = asyncio.create_task(plugin.run(ctx))
    await done.wait()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await plugin.close()
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--input", choices=("tail", "file"), default="tail")
    ap.add_argument("--format", choices=("none", "json"), default="none")
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(tmp, args.lines, args.format)
        size = os.path.getsize(path)
        cls = FileInput if args.input == "file" else TailInput
        settings: dict[str, Any] = {"format": args.format}
        settings["start_position" if cls is FileInput else "read_from_head"] = (
            "beginning" if cls is FileInput else True)
        if args.uvloop:
            import uvloop

            uvloop.install()
        tune_gc()  # as `logpipe run` does
        elapsed, cpu = asyncio.run(run(path, args.lines, cls, settings, os.path.join(tmp, "state")))
    rss = peak_rss_mib()
    print(f"tail input={args.input} format={args.format} lines={args.lines} file={size / 2**20:.0f} MiB")
    print(f"{args.lines / elapsed:,.0f} lines/s ({size / elapsed / 2**20:.0f} MiB/s) in {elapsed:.2f}s; "
          f"{args.lines / cpu:,.0f} lines per CPU second; peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
