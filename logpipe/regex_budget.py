"""User-supplied regexes with a time budget: conditionals (`=~` `!~`), tail's
`format => /…/`, Fluentd `<parse> @type regexp` and multiline patterns.

A regex such as `^(a+)+$` backtracks exponentially: 36 `a`s and a `!` keep stdlib `re`
busy for hours while holding the GIL, so the event loop — and with it /healthz — stops.
Grok already bounds its matches (logpipe.grok.watchdog); every other user regex goes
through `BoundedPattern.search`, which uses the same watchdog:

- inside a batch the caller armed with `watchdog.batch_guard` (the parsers do, once
  per batch of lines), a search only bumps the progress counter: no syscall per line;
- otherwise, in the main thread, a one-shot timer around the one search;
- in any other thread, the `regex` module's own `timeout=`.

A search over budget raises `RegexTimeout`; callers treat it as "no match", tag the
event `_regextimeout` where there is one, and count it in
`logpipe_regex_timeouts_total{where=...}`.
"""

from __future__ import annotations

from typing import Any

import regex as regex_module

from logpipe.grok import watchdog
from logpipe.grok.errors import GrokTimeout
from logpipe.metrics import counter

#: Budget of one search, in seconds. Short enough that a poisoned event stalls the
#: pipeline (and the health check, which shares its thread) for about a second;
#: generous for any regex that does not backtrack catastrophically.
DEFAULT_TIMEOUT = 1.0
TIMEOUT_TAG = "_regextimeout"


class RegexTimeout(Exception):
    """A user regex ran out of its time budget."""


class BoundedPattern:
    """A compiled pattern (stdlib `re` or the `regex` module) whose searches are bounded."""

    __slots__ = ("pattern", "timeout", "_slow", "_timeouts")

    def __init__(self, pattern: Any, where: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.pattern = pattern
        self.timeout = timeout
        self._slow: Any = None
        self._timeouts = counter("logpipe_regex_timeouts_total", "user regex searches that ran out of time",
                                 where=where)

    def search(self, text: str) -> Any:
        """`pattern.search(text)` within the budget; raises RegexTimeout."""
        try:
            if watchdog.is_armed():
                watchdog.progress_cell()[0] += 1
                return self.pattern.search(text)
            if watchdog.signals_usable():
                with watchdog.single_guard(self.timeout):
                    return self.pattern.search(text)
            return self._fallback().search(text, timeout=self.timeout)
        except (GrokTimeout, TimeoutError):
            self._timeouts.inc()
            raise RegexTimeout(f"regex /{self.pattern.pattern}/ exceeded its {self.timeout}s budget") from None

    def match(self, text: str) -> Any:
        """Anchored at the start, as `re.match`, within the budget."""
        try:
            if watchdog.is_armed():
                watchdog.progress_cell()[0] += 1
                return self.pattern.match(text)
            if watchdog.signals_usable():
                with watchdog.single_guard(self.timeout):
                    return self.pattern.match(text)
            return self._fallback().match(text, timeout=self.timeout)
        except (GrokTimeout, TimeoutError):
            self._timeouts.inc()
            raise RegexTimeout(f"regex /{self.pattern.pattern}/ exceeded its {self.timeout}s budget") from None

    def _fallback(self) -> Any:
        if self._slow is None:
            flags = self.pattern.flags & ~0x20  # stdlib re.UNICODE (implied in the regex module's V0)
            self._slow = regex_module.compile(self.pattern.pattern, flags | regex_module.VERSION0)
        return self._slow


def batch_guard(timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Arm the watchdog for a loop of searches (no-op outside the main thread, where
    each search falls back to the `regex` module's timeout)."""
    if watchdog.signals_usable():
        return watchdog.batch_guard(timeout)
    return _NoGuard()


class _NoGuard:
    def __enter__(self) -> list[int]:
        return [0]

    def __exit__(self, *exc: object) -> None:
        return None
