"""Core throughput: generator → pass-through conditionals → null (or file).

Prints events/s and peak RSS. The core must not be the bottleneck: target
≥ 500k events/s on one core with a pass-through filter.

    python benchmarks/bench_core.py [--events N] [--output null|file]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from harness import peak_rss_mib, run_loop

from logpipe.pipeline import Pipeline
from logpipe.process import tune_gc

CONFIG = """
input {{ generator {{ count => {count} batch_size => 1000 lines => ["GET /index.html 200", "POST /api 500"] }} }}
filter {{
  if [message] =~ /never-matches/ {{ drop {{}} }}
  if [sequence] < 0 {{ drop {{}} }} else if "x" in [tags] {{ drop {{}} }}
}}
output {{ {output} }}
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--output", choices=["null", "file"], default="null")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        output = "null {}" if args.output == "null" else f'file {{ path => "{tmp}/out.log" }}'
        # count is rounds of both lines (Logstash semantics): two events per round
        pipeline = Pipeline.from_string(CONFIG.format(count=args.events // 2, output=output), state_dir=tmp)
        tune_gc()  # as `logpipe run` does
        started = time.perf_counter()
        status = await pipeline.run()
        elapsed = time.perf_counter() - started
    rss_mib = peak_rss_mib()
    print(f"core generator→conditionals→{args.output}: {args.events} events in {elapsed:.2f}s = "
          f"{args.events / elapsed:,.0f} events/s, peak RSS {rss_mib:.0f} MiB, exit {status}")


if __name__ == "__main__":
    run_loop(main)
