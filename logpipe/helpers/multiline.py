"""Multiline joining with the Logstash multiline codec's semantics (plugin-private helper of in_tail).

`pattern`, `negate`, `what => previous|next`: a line for which `pattern` matches
(or does not, with `negate`) belongs to the previous event (`previous`) or to the
next one (`next`). Joined events are tagged `multiline` like Logstash does, and
cut with `multiline_codec_max_lines_reached` / `multiline_codec_max_bytes_reached`
past `max_lines` / `max_bytes` so memory stays bounded. The pattern runs under a time
budget (logpipe.regex_budget); a line it times out on starts an event of its own. The joiner also counts the
raw bytes of what it still holds, so the tail input never commits a position past
a line that has not left in an event yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from logpipe.regex_budget import BoundedPattern, RegexTimeout, batch_guard

Joined = tuple[str, list[str] | None]


@dataclass(frozen=True, slots=True)
class MultilineSpec:
    pattern: str
    negate: bool = False
    what: str = "previous"
    flush_interval: float | None = 5.0
    max_lines: int = 500
    max_bytes: int = 10 * 1024 * 1024


class Multiline:
    """Joins lines into events; `pending_raw` is the raw byte count of the lines held back."""

    __slots__ = ("_chars", "_lines", "_max_bytes", "_max_lines", "_negate", "_next", "_search", "pending_raw")

    def __init__(self, spec: MultilineSpec) -> None:
        self._search = BoundedPattern(re.compile(spec.pattern), "multiline").search
        self._negate = spec.negate
        self._next = spec.what == "next"
        self._max_lines = spec.max_lines
        self._max_bytes = spec.max_bytes
        self._lines: list[str] = []
        self._chars = 0
        self.pending_raw = 0

    @property
    def pending(self) -> bool:
        return bool(self._lines)

    def feed(self, lines: list[str], raw_lens: list[int]) -> tuple[list[Joined], list[int]]:
        """Returns the completed events and the raw bytes each covers (the first from the
        first byte held): the tail input turns them into each event's end offset."""
        out: list[Joined] = []
        consumed: list[int] = []
        negate, held = self._negate, self._lines
        with batch_guard():
            for line, raw in zip(lines, raw_lens):
                self._line(line, raw, negate, held, out, consumed)
        return out, consumed

    def _line(self, line: str, raw: int, negate: bool, held: list[str], out: list[Joined],
              consumed: list[int]) -> None:
        try:
            cont = (self._search(line) is None) is negate
        except RegexTimeout:
            cont = False  # over its budget: the line starts an event of its own
        if self._next:
            held.append(line)
            self._chars += len(line)
            self.pending_raw += raw
            if not cont:
                consumed.append(self._emit(out, None))
        else:
            if held and not cont:
                consumed.append(self._emit(out, None))
            held.append(line)
            self._chars += len(line)
            self.pending_raw += raw
        if len(held) >= self._max_lines:
            consumed.append(self._emit(out, "multiline_codec_max_lines_reached"))
        elif self._chars >= self._max_bytes and held:
            consumed.append(self._emit(out, "multiline_codec_max_bytes_reached"))

    def flush(self) -> tuple[list[Joined], list[int]]:
        """Emit what is held as a normal event (flush timeout, file closed)."""
        out: list[Joined] = []
        consumed = [self._emit(out, None)] if self._lines else []
        return out, consumed

    def _emit(self, out: list[Joined], reason: str | None) -> int:
        held = self._lines
        tags = ["multiline"] if len(held) > 1 else None
        if reason is not None:
            tags = (tags or []) + [reason]
        out.append(("\n".join(held) if len(held) > 1 else held[0], tags))
        raw = self.pending_raw
        held.clear()
        self._chars = 0
        self.pending_raw = 0
        return raw


def expand_multiline_pattern(pattern: str, patterns_dir: list[str] | None = None) -> str:
    """Logstash's multiline patterns may use grok (`^%{TIMESTAMP_ISO8601} `): expanded to a plain
    regex here. Raises ValueError (with the reason) for a pattern that does not compile."""
    if "%{" in pattern:
        from logpipe.grok.engine import Grok
        from logpipe.grok.errors import GrokError

        try:
            pattern = Grok(pattern, named_captures_only=True, patterns_dir=patterns_dir or None).regex.pattern
        except GrokError as exc:
            raise ValueError(f"invalid multiline pattern: {exc}") from None
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid multiline pattern {pattern!r}: {exc}") from None
    return pattern
