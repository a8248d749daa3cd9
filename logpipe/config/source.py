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


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UPPER_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def substitute_env(
    text: str,
    offset_of: Callable[[int], int],
    source: SourceText,
    env: Mapping[str, str] | None = None,
    upper_only: bool = False,
) -> str:
    """Replace `${VAR}` and `${VAR:default}` with environment values.

    A default may itself hold references (`${B:${A}}`, `${B:${A:x}}`), as in a shell; it is
    only looked at when VAR is unset, so an unset name inside an unused default is no
    error. `${VAR:` without its closing brace is refused at its position.

    `offset_of(i)` maps an index in `text` back to an offset in `source`, so an unset
    variable without a default is reported where it was written. With `upper_only`,
    only upper-case names are environment references: Fluentd uses `${tag}` and
    `${record["x"]}` as its own placeholders, and those must reach the plugins intact.
    """
    if "${" not in text:
        return text
    return _EnvExpander(text, offset_of, source, os.environ if env is None else env, upper_only).run()


class _EnvExpander:
    """A recursive-descent pass over one value: text, `${NAME}`, `${NAME:default…}`."""

    def __init__(self, text: str, offset_of: Callable[[int], int], source: SourceText,
                 env: Mapping[str, str], upper_only: bool) -> None:
        self.text = text
        self.offset_of = offset_of
        self.source = source
        self.env = env
        self.upper_only = upper_only

    def run(self) -> str:
        out, _ = self._expand(0, closing=None, evaluate=True)
        return out

    def _expand(self, i: int, closing: int | None, evaluate: bool) -> tuple[str, int]:
        """Expand from `i`; inside a default (`closing` = where its `${` is), stop after
        the brace that closes it. Returns the text and the index after what was read."""
        text, parts = self.text, list[str]()
        n = len(text)
        while i < n:
            char = text[i]
            if closing is not None and char == "}":
                return "".join(parts), i + 1
            if char == "$" and text.startswith("${", i):
                ref = self._reference(i, evaluate)
                if ref is not None:
                    value, i = ref
                    parts.append(value)
                    continue
            parts.append(char)
            i += 1
        if closing is not None:
            raise self.source.error("'${' without its closing '}'", self.offset_of(closing))
        return "".join(parts), i

    def _reference(self, start: int, evaluate: bool) -> tuple[str, int] | None:
        """`${NAME}` or `${NAME:default}` at `start`: (its value, index after it); None when
        what follows `${` is not an environment reference (left as written)."""
        text = self.text
        m = _ENV_NAME.match(text, start + 2)
        if m is None or m.end() >= len(text) or text[m.end()] not in ":}":
            return None
        name = m.group(0)
        if self.upper_only and not _UPPER_NAME.match(name):
            return None
        value = self.env.get(name) if evaluate else ""
        if text[m.end()] == "}":
            end, default = m.end() + 1, None
        else:
            default, end = self._expand(m.end() + 1, closing=start, evaluate=evaluate and value is None)
        if value is not None:
            return value, end
        if default is not None:
            return default, end
        raise self.source.error(
            f"environment variable '{name}' is not set and has no default (write ${{{name}:default}})",
            self.offset_of(start),
        )
