"""Errors of the grok engine.

`GrokError` is a user mistake (unknown pattern, bad regex, recursion): it derives
from `LogpipeError` so the CLI prints it without a traceback, and it carries the
pattern name and position so a config checker can point at the culprit.
`GrokTimeout` is not a mistake but an outcome: a match ran out of time.
"""

from __future__ import annotations

from logpipe.errors import LogpipeError


class GrokError(LogpipeError):
    """A pattern that cannot be compiled. `pattern` names the definition at fault
    (or None for the expression as given), `position` is a 0-based offset in it."""

    def __init__(self, message: str, pattern: str | None = None, position: int | None = None,
                 text: str | None = None) -> None:
        self.reason = message
        self.pattern = pattern
        self.position = position
        self.text = text
        where = ""
        if pattern is not None:
            where = f" in pattern {pattern}"
        elif text is not None:
            where = " in the expression"
        if position is not None:
            where += f" at position {position}"
        full = f"{message}{where}"
        if text is not None and position is not None:
            full += f"\n    {text}\n    {' ' * position}^"
        super().__init__(full)


class GrokTimeout(Exception):
    """A match took longer than the allowed time and was abandoned."""
