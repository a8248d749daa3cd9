"""`logpipe tap`: a live, read-only look at the events leaving one filter of the running daemon.

Why: "what does this event look like after the grok, in production, right now?" is the
question no log line answers. A tap attaches an observer to the filter (`Plugin.observers`,
which the compiled filter chain calls once per batch only while someone listens: nothing
is paid when nobody taps), copies what it sees into a bounded buffer, and detaches when the
request ends. The HTTP API serves it as a long poll, `GET /tap?id=ID&limit=N&sample=N&wait=S`
(local only by default, like the rest of the API), answering JSON lines as soon as `limit`
events were seen or `wait` seconds passed; the CLI polls it.

Taps see the filters of this process: with worker processes, the filters run there and
the tap answers 409 saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs

import orjson

from logpipe.event import Event, event_document
from logpipe.jsonvalues import json_default

MAX_LIMIT = 1000
MAX_WAIT = 60.0
#: Taps open at once: each one costs a copy of what its filter hands on.
MAX_TAPS = 8
_active = [0]


class TapRequestError(ValueError):
    """A tap request that cannot be served: the message says why (HTTP 400/404/409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_query(target: str) -> tuple[str, int, int, float]:
    """(id, limit, sample, wait) from `/tap?…`, bounded."""
    query = parse_qs(target.split("?", 1)[1] if "?" in target else "")

    def number(name: str, default: float, low: float, high: float) -> float:
        try:
            value = float(query.get(name, [default])[0])
        except ValueError:
            raise TapRequestError(f"{name} must be a number") from None
        return min(max(value, low), high)

    plugin_id = (query.get("id") or [""])[0]
    if not plugin_id:
        raise TapRequestError("give the filter to tap: /tap?id=FILTER_ID")
    return (plugin_id, int(number("limit", 10, 1, MAX_LIMIT)), int(number("sample", 1, 1, 1_000_000)),
            number("wait", 10.0, 0.0, MAX_WAIT))


async def tap(pipeline: Any, plugin_id: str, limit: int, sample: int, wait: float) -> bytes:
    """Up to `limit` events (every `sample`-th) leaving filter `plugin_id`, as JSON lines."""
    filters = {f.id: f for f in pipeline.built.filters} if pipeline is not None else {}
    target = filters.get(plugin_id)
    if target is None:
        known = ", ".join(sorted(filters)) or "none"
        raise TapRequestError(f"no filter with id {plugin_id!r} (filters: {known})", 404)
    if getattr(pipeline, "workers", 1) > 1:
        raise TapRequestError("filters run in worker processes here; tap needs --workers 1", 409)
    if _active[0] >= MAX_TAPS:
        raise TapRequestError(f"{MAX_TAPS} taps are open already; try again when one ends", 429)
    seen: list[bytes] = []
    counter = [0]
    done = asyncio.Event()

    def observe(events: list[Event]) -> None:
        for ev in events:
            counter[0] += 1
            if counter[0] % sample:
                continue
            seen.append(orjson.dumps({"tag": ev.tag, **event_document(ev, with_metadata=True)}, default=json_default,
                                     option=orjson.OPT_NON_STR_KEYS))
            if len(seen) >= limit:
                done.set()
                return

    target.observers.append(observe)
    _active[0] += 1
    try:
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), wait)
    finally:
        target.observers.remove(observe)
        _active[0] -= 1
    return b"".join(line + b"\n" for line in seen[:limit])
