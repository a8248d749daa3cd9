"""grok → mutate (split + convert) → date over the real Apache access log, stage by stage.

Events flow in batches (as in the pipeline) through:

    grok     { match => { "message" => "%{COMBINEDAPACHELOG}" } }
    mutate   { convert => { "response" => "integer" "bytes" => "integer" } split => { "request" => "/" } }
    date     { match => ["timestamp", "dd/MMM/yyyy:HH:mm:ss Z"] }

Each stage's time is measured separately (event construction is not timed), and the script
prints events/s per stage and for the chain. The target: mutate + date together cost less per
event than the grok match they follow. The log's 10,000 lines are cycled; their timestamps are
mostly distinct seconds, so the date parser's caches help little here (a worst case for it).
If grok is not installed, mutate + date are measured alone on pre-parsed records.

    python benchmarks/bench_filters.py [--events N] [--batch N] [--file PATH]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from harness import peak_rss_mib

from logpipe.event import Event
from logpipe_plugins.filters.date import DateFilter
from logpipe_plugins.filters.mutate import MutateFilter

DEFAULT_LOG = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "apache_logs", "access.log")
T0 = 1_700_000_000 * 10**9


def load_grok() -> Any:
    try:
        from logpipe_plugins.filters.grok import GrokFilter
    except ImportError:
        return None
    return GrokFilter(match={"message": "%{COMBINEDAPACHELOG}"}, ecs_compatibility="disabled")


def preparsed(lines: list[str]) -> list[dict[str, Any]]:
    """Records as grok would leave them, for the no-grok fallback (regex stands in, untimed)."""
    import re

    rx = re.compile(r'(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+) HTTP/([\d.]+)" (\d+) (\d+|-)')
    out = []
    for line in lines:
        m = rx.match(line)
        if m:
            out.append({"message": line, "clientip": m[1], "timestamp": m[4], "verb": m[5], "request": m[6],
                        "httpversion": m[7], "response": m[8], "bytes": m[9]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--file", default=DEFAULT_LOG)
    args = ap.parse_args()
    with open(args.file, encoding="utf-8", errors="replace") as fh:
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    grok = load_grok()
    mutate = MutateFilter(convert={"response": "integer", "bytes": "integer"}, split={"request": "/"})
    date = DateFilter(match=["timestamp", "dd/MMM/yyyy:HH:mm:ss Z"])
    records = preparsed(lines) if grok is None else [{"message": line} for line in lines]

    stages: list[tuple[str, Callable[[list[Event]], list[Event]]]] = [("mutate", mutate.filter), ("date", date.filter)]
    if grok is not None:
        stages.insert(0, ("grok", grok.filter))
    spent = dict.fromkeys((name for name, _ in stages), 0.0)
    done = 0
    cursor = 0
    n_records = len(records)
    perf = time.perf_counter
    while done < args.events:
        size = min(args.batch, args.events - done)
        batch = []
        for _ in range(size):
            batch.append(Event("bench", T0, dict(records[cursor])))
            cursor = cursor + 1 if cursor + 1 < n_records else 0
        for name, run in stages:
            t = perf()
            batch = run(batch)
            spent[name] += perf() - t
        done += size

    failures = {"mutate": mutate.failures, "date": date.failures}
    if grok is None:
        print("grok: not installed here; measuring mutate + date alone on pre-parsed records")
    for name, secs in spent.items():
        print(f"{name:8s} {done / secs:12,.0f} events/s   {secs / done * 1e6:6.2f} µs/event")
    total = sum(spent.values())
    print(f"{'chain':8s} {done / total:12,.0f} events/s   {total / done * 1e6:6.2f} µs/event  ({done:,} events)")
    both = spent["mutate"] + spent["date"]
    print(f"mutate+date {both / done * 1e6:.2f} µs/event", end="")
    if grok is not None:
        verdict = "below" if both < spent["grok"] else "ABOVE"
        print(f" vs grok {spent['grok'] / done * 1e6:.2f} µs/event: {verdict} grok's cost", end="")
    print(f"\nfailures: {failures}; peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
