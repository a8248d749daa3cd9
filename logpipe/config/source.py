"""Config text with positions, shared by both front-ends.

Parsers work on offsets into the whole text; this turns an offset into the
file:line:col of `logpipe.errors.Pos` and builds `ConfigError`s that quote the
offending line, so every syntax error looks the same whichever language it came from.
It also holds `${VAR}` / `${VAR:default}` substitution, which both languages share.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable, Mapping

from logpipe.errors import ConfigError, Pos

#: Deeper nesting than this (brackets, blocks, parentheses) is refused with a ConfigError
#: instead of letting Python's recursion limit turn garbage input into a traceback.
MAX_DEPTH = 100


class SourceText:
    """One config text (a file or an inline string) and its line index."""

    __slots__ = ("_starts", "name", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def pos(self, offset: int) -> Pos:
        """1-based line and column (in characters) of an offset."""
        index = bisect.bisect_right(self._starts, offset) - 1
        return Pos(self.name, index + 1, offset - self._starts[index] + 1)

    def line(self, number: int) -> str:
        """The text of a 1-based line, without its line break."""
        if not 0 < number <= len(self._starts):
            return ""
        start = self._starts[number - 1]
        end = self._starts[number] - 1 if number < len(self._starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def error(self, message: str, offset: int) -> ConfigError:
        """A ConfigError pointing at `offset`, quoting its line."""
        pos = self.pos(offset)
        return ConfigError(message, pos, self.line(pos.line))

    def where(self, offset: int) -> str:
        """`line:col` of an offset, for messages that mention a second place (an opener)."""
        pos = self.pos(offset)
        return f"{pos.line}:{pos.col}"


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_UPPER_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def substitute_env(
    text: str,
    offset_of: Callable[[int], int],
    source: SourceText,
    env: Mapping[str, str] | None = None,
    upper_only: bool = False,
) -> str:
    """Replace `${VAR}` and `${VAR:default}` with environment values.

    `offset_of(i)` maps an index in `text` back to an offset in `source`, so an unset
    variable without a default is reported where it was written. With `upper_only`,
    only upper-case names are environment references: Fluentd uses `${tag}` and
    `${record["x"]}` as its own placeholders, and those must reach the plugins intact.
    """
    if "${" not in text:
        return text
    environ = os.environ if env is None else env

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if upper_only and not _UPPER_NAME.match(name):
            return match.group(0)
        value = environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        raise source.error(
            f"environment variable '{name}' is not set and has no default (write ${{{name}:default}})",
            offset_of(match.start()),
        )

    return _ENV_REF.sub(replace, text)
