"""What watching costs: the filter chain (grok %{HTTPD_COMBINEDLOG} → mutate) over the access-log
sample, in batches of 1000, with nobody tapping (the normal case) and with a tap-style observer
on each filter (one call per batch). Prints events/s of both and the difference, best of N rounds.

    python benchmarks/bench_observability.py [--events 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from logpipe.event import Event
from logpipe.pipeline import Pipeline

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "apache_logs", "access.log")
CONFIG = """filter {
  grok { id => "g" match => { "message" => "%{HTTPD_COMBINEDLOG}" } }
  mutate { id => "m" add_tag => ["parsed"] }
}"""


def rate(pipeline: Pipeline, lines: list[str], n: int) -> float:
    started = time.perf_counter()
    done = 0
    while done < n:
        for i in range(0, len(lines), 1000):
            pipeline.filter_batch([Event("web", 0, {"message": line}) for line in lines[i:i + 1000]])
            done += min(1000, len(lines) - i)
            if done >= n:
                break
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with open(SAMPLE, encoding="utf-8", errors="replace") as fh:
        lines = [line.rstrip("\n") for line in fh][:10_000]
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline.from_string(CONFIG, state_dir=tmp)
        idle = max(rate(pipeline, lines, args.events) for _ in range(args.rounds))
        for f in pipeline.built.filters:
            f.observers.append(lambda events: None)
        watched = max(rate(pipeline, lines, args.events) for _ in range(args.rounds))
    print(f"nobody tapping: {idle:,.0f} events/s; an observer on each filter: {watched:,.0f} events/s; "
          f"difference {100 * (idle - watched) / idle:+.2f}%")


if __name__ == "__main__":
    main()
