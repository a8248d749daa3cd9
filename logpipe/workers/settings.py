"""How many worker processes a pipeline runs (README, "Parallel pipeline").

`workers` comes from, first to last: the caller (`Pipeline(workers=…)`, `logpipe run
--workers N` / `-w N` / `--pipeline.workers N` as Logstash spells it, `auto` for one per
core), then the config (Fluentd's `<system> workers N`), then the default: one. One
worker is the single-process pipeline: no processes, no IPC.

Why not one per core by default, as Logstash's `pipeline.workers`: what an operator reads
from the filters — `logpipe tap`, each filter's /stats (grok's last unmatched lines, shown
by `logpipe top`), the filters' own metrics — is kept by the filter instances of the
process that ran them, and the worker processes do not report theirs to the main process
yet. A default that made those go quiet would break them for everyone; asking for workers
trades them for throughput, knowingly.

A pipeline runs in one process whatever `workers` says when parallel workers would change
what it does: a filter that keeps state across batches or whose side effects must happen
once, in order (`Filter.parallel = False`: throttle, the stdout filter), or when the pipeline
has nothing for workers to do (no filter and no output that formats).
"""

from __future__ import annotations

import os

from logpipe.config.model import PipelineConfig
from logpipe.plugin import Filter, Output


def default_daemon_workers() -> int:
    """`auto`: one per core this process may run on (Logstash's default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_workers(text: str) -> int:
    """`N` (at least 1) or `auto` (one per core); ValueError otherwise."""
    if text == "auto":
        return default_daemon_workers()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"workers must be a whole number of at least 1, or auto, not {text!r}")
    return int(text)


def daemon_workers(asked: int | None, config: PipelineConfig) -> int:
    """`logpipe run`'s count: the command line's, else the config's, else one."""
    if asked is not None:
        return asked
    return config.workers or 1


def single_process_reason(filters: list[Filter], outputs: list[Output]) -> str | None:
    """Why this pipeline must run in one process (None: workers may run it)."""
    pinned = [f for f in filters if not f.parallel]
    if pinned:
        names = ", ".join(sorted({f"{f.name} ({f.id})" for f in pinned}))
        return f"filter {names} keeps state across batches or must run once, in order"
    if not filters and all(o.wants_events for o in outputs):
        return "no filter and no output that formats: nothing for workers to do"
    return None
