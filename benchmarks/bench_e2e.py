"""End to end, the peers' benchmark: tail a real Apache log → grok → null or file.

The same shape as the peer figures in benchmarks/RESULTS.md (Fluent Bit ~286k events/s to null,
~222k to a file; Fluentd ~112k/s to null, ~51k/s to a file), on the same machine.
Lines are the real access log of ../shared/data, repeated to --lines.

    python benchmarks/bench_e2e.py [--lines 2000000] [--output null|file] [--parse grok|none]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from harness import peak_rss_mib, run_loop

from logpipe import CallbackOutput
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe.process import tune_gc

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "apache_logs" / "access.log"

CONFIG = """
input {{ tail {{ path => "{log}" read_from_head => true pos_file => "{tmp}/pos" }} }}
filter {{ {parse} }}
output {{ {output} }}
"""


def make_log(path: Path, lines: int) -> None:
    sample = SAMPLE.read_bytes().splitlines(keepends=True)
    with path.open("wb") as fh:
        for start in range(0, lines, len(sample)):
            fh.writelines(sample[: min(len(sample), lines - start)])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--output", choices=["null", "file"], default="null")
    parser.add_argument("--parse", choices=["grok", "none"], default="grok")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "access.log"
        make_log(log, args.lines)
        parse = 'grok { match => { "message" => "%{HTTPD_COMBINEDLOG}" } }' if args.parse == "grok" else ""
        output = f'file {{ path => "{tmp}/out.log" }}' if args.output == "file" else "null {}"
        seen = 0
        done = asyncio.Event()

        def count(events: list[Event]) -> None:
            nonlocal seen
            seen += len(events)
            if seen >= args.lines:
                done.set()

        counter = CallbackOutput(count, id="count")
        pipeline = Pipeline.from_string(CONFIG.format(log=log, tmp=tmp, parse=parse, output=output),
                                        outputs=[counter], state_dir=tmp)
        tune_gc()
        started = time.perf_counter()
        await pipeline.start()
        await done.wait()
        await pipeline.flush()
        elapsed = time.perf_counter() - started
        await pipeline.stop()
    rss_mib = peak_rss_mib()
    print(f"tail→{args.parse}→{args.output}: {args.lines} lines in {elapsed:.2f}s = "
          f"{args.lines / elapsed:,.0f} events/s, peak RSS {rss_mib:.0f} MiB")


if __name__ == "__main__":
    run_loop(main)
