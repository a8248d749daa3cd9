"""Errors a user can cause. The CLI prints them without a traceback."""

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
    """Base of every error caused by user input (config, patterns, arguments)."""


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
