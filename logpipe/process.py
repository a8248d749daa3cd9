"""Process-wide tuning for the daemon (not applied when logpipe is embedded).

Every event is a few small container objects, so CPython's default generation-0
threshold (700 allocations) runs the cyclic collector thousands of times a second
for objects that are never cyclic garbage. Freezing the start-up heap and raising
the thresholds gave the tail input +50% (0.79M → 1.19M lines/s, benchmarks/RESULTS.md).
Reference counting still frees events at once; only cycle detection runs less often.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 20, 20)
