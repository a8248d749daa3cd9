"""Events a filter sends back to the top of the filter stage (Fluentd's `router.emit`), and the
acknowledgement of the batch being filtered (ARCHITECTURE.md, "Delivery").

Two things Fluentd plugins do that a plain `list[Event] -> list[Event]` filter cannot:

- **Re-emit now** (rewrite_tag_filter): an event with a new tag goes through the filter stage
  again from the top, as Fluentd routes it afresh. `Filter.reemit(events)` puts the events in
  the current pass's sink; when the pass ends, `with_reemits` runs them through the whole
  filter stage again, within the same batch and acknowledgement, and appends what comes out
  after the pass's own events. Each event counts its passes in `[@metadata][_reemits]`; past
  `MAX_REEMITS` it is a loop (a rule that keeps rewriting to a tag it matches again): the
  event goes, unfiltered, to the `@ERROR` label (Fluentd's error route), counted in
  `logpipe_reemit_loops_total` and warned about once a second — never re-run forever.
- **Hold events across batches** (concat): `current_ack()` is the Ack of the batch being
  filtered. A filter that keeps an event for later holds that ack (`ack.hold()`) and releases
  it once whatever it made of the event has been delivered: `release_with(held, carrier)`.
  So the input does not commit a line while it sits in a filter's group, and after a crash
  the line is read again.

Filters that emit on their own (a timeout flush) do it through `Filter.reinject`, which the
pipeline sets when it starts: a new batch at the top of the filter stage, with an Ack whose
completion releases what the filter held.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable

from logpipe.ack import Ack
from logpipe.event import Event
from logpipe.metrics import counter

log = logging.getLogger("logpipe.pipeline")

#: Passes one event may make through the filter stage in one batch before it is a loop.
MAX_REEMITS = 32
REEMITS_META = "_reemits"
ERROR_LABEL = "@ERROR"

_sink: contextvars.ContextVar[list[Event] | None] = contextvars.ContextVar("logpipe_reemit_sink", default=None)
_ack: contextvars.ContextVar[Ack | None] = contextvars.ContextVar("logpipe_current_ack", default=None)
_loops = counter("logpipe_reemit_loops_total", "events re-emitted more than MAX_REEMITS times in one batch "
                 "(sent to @ERROR)")
_last_warning = [0.0]

FilterStep = Callable[[list[Event]], list[Event]]


def reemit(events: list[Event]) -> bool:
    """Queue events for another pass from the top; False when no pass is running (a filter
    called on its own, outside `with_reemits`)."""
    sink = _sink.get()
    if sink is None:
        return False
    sink.extend(events)
    return True


def with_reemits(step: FilterStep) -> FilterStep:
    """`step` (the whole filter stage) with re-emitted events run through it again."""

    def run(events: list[Event]) -> list[Event]:
        sink: list[Event] = []
        token = _sink.set(sink)
        try:
            out = step(events)
            while sink:
                again, looping = _count_passes(sink)
                sink.clear()
                if again:
                    out = out + step(again)
                if looping:
                    out = out + looping
        finally:
            _sink.reset(token)
        return out

    return run


def _count_passes(events: list[Event]) -> tuple[list[Event], list[Event]]:
    again: list[Event] = []
    looping: list[Event] = []
    for ev in events:
        n = ev.meta.get(REEMITS_META, 0) + 1
        ev.meta[REEMITS_META] = n
        if n <= MAX_REEMITS:
            again.append(ev)
            continue
        ev.meta["_label"] = ERROR_LABEL
        ev.meta["_error"] = f"re-emitted more than {MAX_REEMITS} times (a rewrite loop)"
        looping.append(ev)
    if looping:
        _loops.inc(len(looping))
        now = time.monotonic()
        if now - _last_warning[0] >= 1.0:
            _last_warning[0] = now
            log.warning("%d event(s) re-emitted more than %d times in one batch (a rewrite rule matching its "
                        "own result?); sent to @ERROR; last tag=%s", len(looping), MAX_REEMITS, looping[-1].tag)
    return again, looping


def current_ack() -> Ack | None:
    """The Ack of the batch being filtered now (None outside the pipeline's filter stage)."""
    return _ack.get()


def set_current_ack(ack: Ack | None) -> contextvars.Token[Ack | None]:
    return _ack.set(ack)


def reset_current_ack(token: contextvars.Token[Ack | None]) -> None:
    _ack.reset(token)


def release_with(held: list[Ack], carrier: Ack | None) -> None:
    """Release acks a filter held once `carrier` (the batch now carrying what became of the
    held events) completes; an ack that is the carrier itself is released now (the pipeline
    still holds it, so it cannot complete early)."""
    for ack in held:
        if carrier is None or ack is carrier:
            ack.release()
        else:
            carrier.on_done(ack.release)
