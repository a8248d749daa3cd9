"""Every exception logpipe raises on purpose, in one tree.

    LogpipeError                 base: the CLI prints these without a traceback
    ├── ConfigError              a config mistake, at file:line:col (`pos`), naming the `setting`
    ├── GrokError                a grok pattern that cannot compile (pattern name and offset)
    ├── GrokTimeout              a grok match ran out of its time budget (an outcome per event)
    ├── BufferOverflowError      a put refused: the buffer is full, overflow_action throw_exception
    └── PluginError              a plugin failed at run time, for a reason outside the config
        ├── RetryableError       a write that may pass later (refused, 503): the chunk is retried
        └── ProtocolError        a network peer broke the protocol: its connection is closed

Plugins derive their private errors from PluginError (forward's HandshakeError,
AckTimeout). Where a user can cause an error, it says where: a plugin raises
`ConfigError(..., setting=NAME)` — from `__init__` or from `start()` — and the core
places it (`Plugin.placed`) at where NAME, or the plugin, was written. The modules that
used to define these (logpipe.grok.errors, logpipe.plugin, logpipe.helpers.server,
logpipe.buffer) still export them under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pos:
    """Where something was written: file name, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class LogpipeError(Exception):
    """Base of every error logpipe raises on purpose (config, patterns, plugins)."""


class ConfigError(LogpipeError):
    """A config mistake. Rendered as `file:line:col: message`, the source line and a caret.

    A plugin that rejects one of its settings raises it with `setting=NAME` and no
    position; the config loader then points it at where that setting's value was
    written (or at its name, with `at_name=True`: an unknown setting has no value to blame).
    `source_line` is the text of the offending line when the parser knows it; the
    renderer shows it with a caret under `pos.col`.
    """

    def __init__(
        self, message: str, pos: Pos | None = None, source_line: str | None = None, setting: str | None = None,
        at_name: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.source_line = source_line
        self.setting = setting
        self.at_name = at_name

    def render(self) -> str:
        if self.pos is None:
            return f"error: {self.message}"
        text = f"{self.pos}: error: {self.message}"
        line = self.source_line
        if line is None:
            line = _read_line(self.pos)
        if line is not None:
            caret = " " * (max(self.pos.col, 1) - 1) + "^"
            text += f"\n    {line.rstrip()}\n    {caret}"
        return text

    def __str__(self) -> str:
        return self.render()


def _read_line(pos: Pos) -> str | None:
    """Fetch the offending line from disk so errors raised after parsing can still show it."""
    if pos.file in _INLINE_SOURCES:
        lines = _INLINE_SOURCES[pos.file]
        return lines[pos.line - 1] if 0 < pos.line <= len(lines) else None
    try:
        with open(pos.file, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if number == pos.line:
                    return line
    except OSError:
        return None
    return None


_INLINE_SOURCES: dict[str, list[str]] = {}


def remember_source(name: str, text: str) -> None:
    """Keep the text of a config given inline (`-e`) so later errors can quote its lines."""
    _INLINE_SOURCES[name] = text.split("\n")


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


class GrokTimeout(LogpipeError):
    """A match took longer than the allowed time and was abandoned: not a mistake but an
    outcome (the event is tagged `_groktimeout`), raised by the grok watchdog."""


class BufferOverflowError(LogpipeError):
    """A put was refused because the buffer is full and overflow_action is throw_exception."""


class PluginError(LogpipeError):
    """A plugin failed at run time for a reason outside the config (a peer, a server)."""


class RetryableError(PluginError):
    """The whole write failed for a reason that may pass (connection refused, 503):
    the chunk is retried with backoff."""


class ProtocolError(PluginError):
    """The peer broke the protocol: log the reason, count it, close its connection."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
