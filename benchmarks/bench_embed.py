"""Embedding overhead: events pushed in from Python into a pipeline with a null output.

Three ways in, one run: `emit` one event at a time (awaiting each call), `emit_many` in
batches of 1000, and a `ThreadedPipeline` called from a plain thread in batches of 1000.
Prints events/s for each and peak RSS.

    python benchmarks/bench_embed.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from harness import peak_rss_mib, run_loop

from logpipe import Pipeline, ThreadedPipeline

CONFIG = "output { null {} }"


async def single(n: int, state: str) -> float:
    async with Pipeline.from_string(CONFIG, state_dir=state) as pipeline:
        started = time.perf_counter()
        ack = None
        for i in range(n):
            ack = await pipeline.emit("bench", {"message": "hello", "n": i})
        assert ack is not None
        await pipeline.delivered(ack)
        return time.perf_counter() - started


async def batched(n: int, state: str, size: int = 1000) -> float:
    async with Pipeline.from_string(CONFIG, state_dir=state) as pipeline:
        started = time.perf_counter()
        ack = None
        for start in range(0, n, size):
            ack = await pipeline.emit_many("bench", [{"message": "hello", "n": i} for i in range(start, start + size)])
        assert ack is not None
        await pipeline.delivered(ack)
        return time.perf_counter() - started


def threaded(n: int, state: str, size: int = 1000) -> float:
    with ThreadedPipeline.from_string(CONFIG, state_dir=state) as pipeline:
        started = time.perf_counter()
        ack = None
        for start in range(0, n, size):
            ack = pipeline.emit_many("bench", [{"message": "hello", "n": i} for i in range(start, start + size)])
        assert ack is not None
        pipeline.delivered(ack, timeout=60)
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        one = await single(n // 10, tmp)
        print(f"emit (one event per call): {n // 10 / one:,.0f} events/s")
        many = await batched(n, tmp)
        print(f"emit_many (batches of 1000): {n / many:,.0f} events/s")
        th = await asyncio.to_thread(threaded, n, tmp)
        print(f"ThreadedPipeline.emit_many from a thread (batches of 1000): {n / th:,.0f} events/s")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    run_loop(main)
