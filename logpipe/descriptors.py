"""The process's file descriptors, shared out so that running short costs only new work.

With `ulimit -n 256` and 400 tailed files the daemon used to open files until EMFILE:
then the output could not open its file, positions could not be saved and nothing was
delivered. So descriptors are taken in two tiers:

- the last `reserve` (an eighth of the soft RLIMIT_NOFILE, at least 32) are never taken
  by inputs for new files or new clients: they stay for outputs, the position files,
  buffer chunks and the HTTP API, which must keep working;
- tail inputs together hold at most half of the rest (`tail_budget`) unless their
  `max_open_files` says less, so that a node with thousands of files still accepts
  network clients, and thousands of clients never stop the files from being read.

`headroom()` counts the open descriptors (/proc/self/fd) at most every 50 ms and adjusts
that count between reads by what the callers report (`took`, `gave`), so a burst of opens
or accepts cannot overshoot it while costing no more than a directory read a tick.
"""

from __future__ import annotations

import os
import resource
import time

#: Never fewer than this many descriptors are left for outputs, positions and the API.
MIN_RESERVE = 32
#: How stale the count of open descriptors may get before /proc is read again.
RECOUNT_SECONDS = 0.05


def soft_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def reserve() -> int:
    """Descriptors kept for outputs, positions, buffers and the HTTP API."""
    return max(MIN_RESERVE, soft_limit() // 8)


def tail_budget() -> int:
    """Descriptors all tail inputs of the process may hold together (by default)."""
    return max(1, (soft_limit() - reserve()) // 2)


class Descriptors:
    """Open-descriptor count of this process, cheap to ask often."""

    def __init__(self) -> None:
        self._open = 0
        self._counted_at = -1.0
        #: Descriptors the tail inputs of this process hold (their shared budget).
        self.tail_open = 0

    def open_count(self) -> int:
        now = time.monotonic()
        if now - self._counted_at >= RECOUNT_SECONDS:
            self._open = _count_open(self._open)
            self._counted_at = now
        return self._open

    def headroom(self) -> int:
        """Descriptors an input may still take for a new file or client (≤ 0: none)."""
        return soft_limit() - reserve() - self.open_count()

    def took(self, n: int = 1) -> None:
        self._open += n

    def gave(self, n: int = 1) -> None:
        self._open = max(0, self._open - n)


def _count_open(fallback: int) -> int:
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:  # no /proc (not Linux): rely on what callers reported
        return fallback


#: The process-wide instance (inputs of every pipeline share the one limit).
DESCRIPTORS = Descriptors()
