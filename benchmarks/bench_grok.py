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


def measure(loops: dict[str, Callable[[], object]], lines: int, rounds: int) -> dict[str, float]:
    """Best lines/s of each loop; rounds are interleaved so that a noisy neighbour on a
    shared machine hits every variant alike."""
    best = dict.fromkeys(loops, 0.0)
    for _ in range(rounds):
        for label, loop in loops.items():
            t0 = time.perf_counter()
            loop()
            best[label] = max(best[label], lines / (time.perf_counter() - t0))
    return best


def run(expression: str, mode: str, lines: list[str], rounds: int) -> dict[str, float]:
    grok = Grok(expression, ecs_compatibility=mode)
    search = grok.regex.search
    match = grok.match

    def re_only() -> None:
        for line in lines:
            search(line)

    def re_groupdict() -> None:
        for line in lines:
            m = search(line)
            if m is not None:
                m.groupdict()

    def grok_loop() -> None:
        for line in lines:
            match(line)

    loops: dict[str, Callable[[], object]] = {
        "re (search only)": re_only, "re + groupdict": re_groupdict, "Grok.match": grok_loop,
    }
    filter_loop = _filter_loop(expression, mode, lines)
    if filter_loop is not None:
        loops["grok filter (batches of 1000)"] = filter_loop
    return measure(loops, len(lines), rounds)


def _filter_loop(expression: str, mode: str, lines: list[str]) -> Callable[[], object] | None:
    """The pipeline path. Events must be fresh each round (the filter adds fields), so
    creating them (~0.3 µs each) is inside the timed part."""
    try:
        from logpipe.event import Event
        from logpipe_plugins.filters.grok import GrokFilter
    except ImportError:
        return None
    flt = GrokFilter(match={"message": expression}, ecs_compatibility=mode)

    def loop() -> None:
        for i in range(0, len(lines), 1000):
            flt.filter([Event("bench", 0, {"message": line}) for line in lines[i:i + 1000]])

    return loop


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
