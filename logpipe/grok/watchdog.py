"""Timeout safety for grok matches: a SIGALRM watchdog over stdlib `re`, and the
`regex` module (which has `timeout=`) where signals cannot reach.

Why this design
---------------
Grok patterns backtrack; a bad pattern/line pair can run for minutes ((a+)+$ on
'a'*40+'b'). Logstash bounds each match with `timeout_millis`. Our options:

1. The `regex` module with `timeout=`: safe everywhere, but measured here at about
   a third of `re`'s speed on COMBINEDAPACHELOG — it would lose the speed target.
2. A watchdog *thread*: useless, because `_sre` holds the GIL for the whole match,
   so a Python thread cannot even run until the match ends.
3. A kernel timer (`setitimer(ITIMER_REAL)`) delivering SIGALRM: the C handler only
   sets a flag, and `_sre` calls `PyErr_CheckSignals()` periodically while it
   matches, so our Python handler runs *inside* the stuck match and its exception
   aborts it (verified by tests/test_grok_engine.py: (a+)+$ is interrupted within
   the budget). Python only runs signal handlers in the main thread, where the
   pipeline's filter stage runs.

Arming a timer around every match costs two syscalls (~0.56 µs measured here,
~16% of a 3.3 µs Apache-line match), so the pipeline path arms one *periodic*
timer per batch instead: ticks every `timeout/4`, the filter bumps a counter per
event (one list-cell increment). The first tick after an event starts sees the
counter move; if the next 3 ticks see it unchanged, the event has run for more
than 3/4 and at most 4/4 of the budget, and the handler raises `GrokTimeout` —
so no event outlives `timeout`. Single `Grok.match` calls
in the main thread arm a one-shot timer (the syscall cost is then acceptable);
calls from other threads, or when another component already owns SIGALRM, or on
platforms without `setitimer`, use the `regex` module with `timeout=` instead.

The handler stays installed once installed: restoring SIG_DFL could let a tick
already queued terminate the process. When no guard is armed it does nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from logpipe.errors import GrokTimeout

TICKS = 4


class _State:
    def __init__(self) -> None:
        self.armed = False
        self.counter = [0]
        self.seen = 0
        self.stale = 0
        self.limit = TICKS
        self.unavailable = not hasattr(signal, "setitimer")


_STATE = _State()


def _on_alarm(signum: int, frame: object) -> None:
    st = _STATE
    if not st.armed:
        return
    current = st.counter[0]
    if current != st.seen:
        st.seen = current
        st.stale = 0
        return
    st.stale += 1
    if st.stale >= st.limit:
        st.stale = 0
        raise GrokTimeout("grok match exceeded its time budget")


def signals_usable() -> bool:
    """True when this thread can use the SIGALRM watchdog right now: the main
    thread, a platform with setitimer, and SIGALRM not owned by someone else
    (checked each time: a test runner may own it for a while)."""
    st = _STATE
    if st.unavailable or threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGALRM)
    if current is _on_alarm:
        return True
    if current not in (signal.SIG_DFL, signal.SIG_IGN, None):
        return False
    signal.signal(signal.SIGALRM, _on_alarm)
    return True


def is_armed() -> bool:
    return _STATE.armed


def progress_cell() -> list[int]:
    """The counter a batch loop bumps once per event (`cell[0] += 1`)."""
    return _STATE.counter


def _arm(interval: float, limit: int) -> None:
    st = _STATE
    st.seen = st.counter[0]
    st.stale = 0
    st.limit = limit
    st.armed = True
    signal.setitimer(signal.ITIMER_REAL, interval, interval)


def _disarm() -> None:
    _STATE.armed = False
    signal.setitimer(signal.ITIMER_REAL, 0, 0)


@contextmanager
def batch_guard(timeout: float) -> Iterator[list[int]]:
    """Arm the periodic watchdog for a batch; yields the progress cell. The caller
    must bump the cell before each event and catch GrokTimeout per event. Requires
    `signals_usable()`; nested use is a no-op."""
    if _STATE.armed:
        yield _STATE.counter
        return
    _arm(timeout / TICKS, TICKS - 1)
    try:
        yield _STATE.counter
    finally:
        _disarm()


@contextmanager
def single_guard(timeout: float) -> Iterator[None]:
    """Arm a one-shot budget for one match (main thread only)."""
    if _STATE.armed:
        _STATE.counter[0] += 1
        yield
        return
    _arm(timeout, 1)
    try:
        yield
    finally:
        _disarm()
