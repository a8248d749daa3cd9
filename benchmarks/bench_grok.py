"""Grok.match vs a bare stdlib-re loop on the same expanded pattern.

Runs COMBINEDAPACHELOG (legacy) and HTTPD_COMBINEDLOG (ECS v1, with :int
coercions and nested fields) over the real Apache access log, side by side in one
process, best of several rounds each, and prints lines/s for:

- re (search only): `rx.search(line)` — the regex alone, nothing extracted;
- re + groupdict: `rx.search(line).groupdict()` — a bare loop that yields the captures;
- Grok.match: nested dict, coercions, empty captures dropped;
- grok filter: the pipeline path (events in a batch, watchdog armed, fields set).

The target is Grok.match ≥ 85% of the bare re loop.

    python benchmarks/bench_grok.py [--rounds N] [--file PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from logpipe.grok import Grok

DEFAULT_LOG = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "apache_logs", "access.log")


def best_rate(fn: Callable[[list[str]], object], lines: list[str], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(lines)
        dt = time.perf_counter() - t0
        best = max(best, len(lines) / dt)
    return best


def run(expression: str, mode: str, lines: list[str], rounds: int) -> dict[str, float]:
    grok = Grok(expression, ecs_compatibility=mode)
    rx = grok.regex
    search = rx.search
    match = grok.match

    def re_only(ls: list[str]) -> None:
        for line in ls:
            search(line)

    def re_groupdict(ls: list[str]) -> None:
        for line in ls:
            m = search(line)
            if m is not None:
                m.groupdict()

    def grok_loop(ls: list[str]) -> None:
        for line in ls:
            match(line)

    rates = {
        "re (search only)": best_rate(re_only, lines, rounds),
        "re + groupdict": best_rate(re_groupdict, lines, rounds),
        "Grok.match": best_rate(grok_loop, lines, rounds),
    }
    filt = _filter_rate(expression, mode, lines, rounds)
    if filt is not None:
        rates["grok filter (batch of 1000)"] = filt
    return rates


def _filter_rate(expression: str, mode: str, lines: list[str], rounds: int) -> float | None:
    try:
        from logpipe_plugins.filter_grok import GrokFilter

        from logpipe.event import Event
    except ImportError:
        return None
    flt = GrokFilter(match={"message": expression}, ecs_compatibility=mode)
    best = 0.0
    for _ in range(rounds):
        batches = [[Event("bench", 0, {"message": line}) for line in lines[i:i + 1000]]
                   for i in range(0, len(lines), 1000)]
        t0 = time.perf_counter()
        for batch in batches:
            flt.filter(batch)
        best = max(best, len(lines) / (time.perf_counter() - t0))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--file", default=DEFAULT_LOG)
    args = parser.parse_args(argv)
    with open(args.file, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    print(f"{len(lines)} lines from {os.path.normpath(args.file)}, best of {args.rounds} rounds")
    ok = True
    for expression, mode in (("%{COMBINEDAPACHELOG}", "disabled"), ("%{HTTPD_COMBINEDLOG}", "v1")):
        rates = run(expression, mode, lines, args.rounds)
        print(f"\n{expression} (ecs_compatibility={mode})")
        for label, rate in rates.items():
            print(f"  {label:<30} {rate:>12,.0f} lines/s")
        ratio = rates["Grok.match"] / rates["re + groupdict"]
        ratio_raw = rates["Grok.match"] / rates["re (search only)"]
        print(f"  ratio Grok.match / re+groupdict: {ratio:.1%}   / re search only: {ratio_raw:.1%}")
        ok = ok and ratio >= 0.85
    print("\ntarget (Grok.match >= 85% of the bare re loop):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
