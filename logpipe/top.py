"""`logpipe top`: a live terminal view of the running daemon.

It reads the daemon's `/stats` once a second (the same JSON any monitoring system reads, so
the view shows nothing the API does not) and shows what an operator asks first: is it ready,
is it keeping up (events in and out per second), is an output stuck (retries, buffer fill,
dead letters), and what does not parse (each filter's last failing lines). Rates are the
difference between two polls. Rendered with `rich`; `--once` prints one frame and exits,
for scripts.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

OUTPUT_COUNTERS = ("delivered", "retries", "dead_lettered", "dropped", "write_errors")


def fetch(host: str, port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=5) as response:
        doc: dict[str, Any] = json.loads(response.read())
    return doc


def _rate(now: dict[str, Any] | None, before: dict[str, Any] | None, key: str, seconds: float) -> str:
    if now is None or before is None or seconds <= 0:
        return "—"
    return f"{max(0, (now.get(key) or 0) - (before.get(key) or 0)) / seconds:,.0f}/s"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f}"


def _not_ready(stats: dict[str, Any]) -> str:
    """The daemon's lifecycle state and the reason it is not ready, the reason alone when it
    says the same (`stopping`)."""
    state, status = stats.get("state"), stats.get("status", "not ready")
    return status if not state or status.startswith(state) else f"{state}: {status}"


def render(stats: dict[str, Any], previous: dict[str, Any] | None, seconds: float) -> Group:
    """One frame from two /stats documents `seconds` apart (the first frame has no rates)."""
    pipe = stats.get("pipeline") or {}
    prev_pipe = (previous or {}).get("pipeline") or {}
    state = "[green]ready[/]" if stats.get("ready") else f"[red]{_not_ready(stats)}[/]"
    reloads = stats.get("reloads") or {}
    head = Text.from_markup(
        f"logpipe {stats.get('version', '?')}  pid {stats.get('pid', '?')}  up {stats.get('uptime_seconds', 0):,.0f}s  "
        f"{state}  reloads ok {reloads.get('succeeded', 0)} / failed {reloads.get('failed', 0)}")
    flow = Table(title="pipeline", expand=True)
    for col in ("events in", "in rate", "filtered", "filter rate", "queued batches", "inputs"):
        flow.add_column(col, justify="right", no_wrap=True, min_width=12)
    flow.add_row(f"{pipe.get('events_in', 0):,}", _rate(pipe, prev_pipe, "events_in", seconds),
                 f"{pipe.get('events_filtered', 0):,}", _rate(pipe, prev_pipe, "events_filtered", seconds),
                 str(pipe.get("queue_batches", 0)),
                 ", ".join(i.get("id", "?") for i in pipe.get("inputs", [])))
    outputs = Table(title="outputs", expand=True)
    for col in ("output", "delivered", "rate", "retries", "dead letters", "dropped", "buffered", "bytes", "chunks",
                "oldest"):
        outputs.add_column(col, justify="left" if col == "output" else "right", no_wrap=True, min_width=10)
    prev_outputs = prev_pipe.get("outputs") or {}
    for name, out in sorted((pipe.get("outputs") or {}).items()):
        before = prev_outputs.get(name)
        retries = out.get("retries", 0)
        outputs.add_row(
            name, f"{out.get('delivered', 0):,}", _rate(out, before, "delivered", seconds),
            f"[yellow]{retries:,}[/]" if retries else "0",
            f"[red]{out.get('dead_lettered', 0):,}[/]" if out.get("dead_lettered") else "0",
            f"{out.get('dropped', 0):,}", f"{out.get('buffered_events', 0):,}", _size(out.get("buffered_bytes", 0)),
            str(out.get("chunks", 0)), f"{out.get('oldest_undelivered_seconds', 0):.1f}s")
    parts: list[Any] = [head, flow, outputs]
    inputs = sorted((pipe.get("input_stats") or {}).items())
    files = [(name, f) for name, st in inputs for f in st.get("files", [])]
    losses = "; ".join(
        f"{name}: {_size(st.get('unread_rotated_bytes') or 0)} rotated away unread, "
        f"{st.get('waiting_for_descriptor') or 0} file(s) waiting for a descriptor"
        for name, st in inputs if st.get("unread_rotated_bytes") or st.get("waiting_for_descriptor"))
    if files or losses:
        tailed = Table(title="tailed files", expand=True, caption=f"[red]{losses}[/]" if losses else None)
        for col in ("input", "file", "size", "read", "acknowledged", "lag"):
            tailed.add_column(col, justify="left" if col in ("input", "file") else "right", no_wrap=col != "file")
        for name, f in files[:20]:
            lag = f.get("lag_bytes")
            tailed.add_row(name, f.get("path", "?"), _size(f.get("size") or 0), _size(f.get("read") or 0),
                           _size(f.get("acknowledged") or 0),
                           "?" if lag is None else f"[yellow]{_size(lag)}[/]" if lag else "0")
        parts.append(tailed)
    failures = [(name, f) for name, f in sorted((pipe.get("filters") or {}).items()) if f.get("recent_failures")]
    if failures:
        table = Table(title="recent parse failures", expand=True)
        table.add_column("filter")
        table.add_column("line that did not match", overflow="fold")
        for name, f in failures:
            for line in f["recent_failures"][-3:]:
                table.add_row(name, line[:300])
        parts.append(table)
    if pipe.get("failed"):
        parts.append(Text(f"pipeline failed: {pipe['failed']}", style="bold red"))
    return Group(*parts)


def main(host: str, port: int, interval: float = 1.0, once: bool = False, console: Console | None = None) -> int:
    console = console or Console()
    try:
        stats = fetch(host, port)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        console.print(f"logpipe top: cannot read http://{host}:{port}/stats ({exc}); is the daemon running "
                      "with its HTTP API on?", style="red", markup=False)
        return 1
    if once:
        console.print(render(stats, None, 0))
        return 0
    previous, then = stats, time.monotonic()
    try:
        with Live(render(stats, None, 0), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                try:
                    stats = fetch(host, port)
                except (OSError, urllib.error.URLError, ValueError) as exc:
                    live.update(Text(f"daemon unreachable: {exc}", style="red"))
                    continue
                now = time.monotonic()
                live.update(render(stats, previous, now - then))
                previous, then = stats, now
    except KeyboardInterrupt:
        return 0
