"""Built-in stack-trace joiners: `java`, `python`, `go`, `ruby` (Fluent Bit's built-in multiline parsers).

Each preset is a small state machine of rules `(from states, regex, to state)`, the
model Fluent Bit took from Google's fluent-plugin-detect-exceptions. A line that
matches a rule of `start_state` opens a group; while a group is open, a line that
matches a rule of the current state joins it and moves the state on; any other line
closes the group, and is then tried as a new start or passed on alone. So ordinary
log lines are never held back longer than one line, and a stack trace leaves as
one event tagged `multiline`.

`PresetJoiner` has the interface of `logpipe.helpers.multiline.Multiline`
(`feed(lines, raw_lens)`, `flush()`, `pending`, `pending_raw`), so the tail input
treats both the same way, on plain files and per container stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from logpipe.helpers.multiline import Joined, Multiline, MultilineSpec

START = "start_state"

#: (from states, pattern, to state), in the order Fluent Bit declares them.
_RULES: dict[str, list[tuple[tuple[str, ...], str, str]]] = {
    "java": [
        ((START, "java_start_exception"), r"(.)(?:Exception|Error|Throwable|V8 errors stack trace)[:\r\n]",
         "java_after_exception"),
        (("java_after_exception",), r"^[\t ]*nested exception is:[\t ]*", "java_start_exception"),
        (("java_after_exception",), r"^[\r\n]*$", "java_after_exception"),
        (("java_after_exception", "java"), r"^[\t ]+(?:eval )?at ", "java"),
        (("java_after_exception", "java"), r"^[\t ]+--- End of inner exception stack trace ---$", "java"),
        (("java_after_exception", "java"),
         r"^--- End of stack trace from previous location where exception was thrown ---$", "java"),
        (("java_after_exception", "java"), r"^[\t ]*(?:Caused by|Suppressed):", "java_after_exception"),
        (("java_after_exception", "java"), r"^[\t ]*... \d+ (?:more|common frames omitted)", "java"),
    ],
    "python": [
        ((START,), r"^Traceback \(most recent call last\):$", "python"),
        (("python",), r"^[\t ]+File ", "python_code"),
        (("python_code",), r"[^\t ]", "python"),
        (("python",), r"^(?:[^\s.():]+\.)*[^\s.():]+:", START),
    ],
    "go": [
        ((START,), r"\bpanic: ", "go_after_panic"),
        ((START,), r"http: panic serving", "go_goroutine"),
        (("go_after_panic", "go_after_signal", "go_frame_1"), r"^$", "go_goroutine"),
        (("go_after_panic",), r"^\[signal ", "go_after_signal"),
        (("go_goroutine",), r"^goroutine \d+ \[[^\]]+\]:$", "go_frame_1"),
        (("go_frame_1",), r"^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by ", "go_frame_2"),
        (("go_frame_2",), r"^\s", "go_frame_1"),
    ],
    "ruby": [
        ((START, "ruby_start_exception"), r"^.+:\d+:in\s+.*", "ruby_after_exception"),
        (("ruby_after_exception", "ruby"), r"^\s+from\s+.*:\d+:in\s+.*", "ruby"),
    ],
}

PRESETS = tuple(_RULES)


@dataclass(frozen=True, slots=True)
class PresetSpec:
    """A built-in joiner by name; `flush_interval` as MultilineSpec's (None: only at file end)."""

    preset: str
    flush_interval: float | None = 5.0
    max_lines: int = 1000
    max_bytes: int = 10 * 1024 * 1024


class PresetJoiner:
    """Joins the lines of one stream by a preset's rules; `pending_raw` counts the raw bytes held."""

    __slots__ = ("_chars", "_lines", "_max_bytes", "_max_lines", "_rules", "_start", "_state", "pending_raw")

    def __init__(self, spec: PresetSpec) -> None:
        table: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for states, pattern, to in _RULES[spec.preset]:
            compiled = re.compile(pattern)
            for state in states:
                table.setdefault(state, []).append((compiled, to))
        self._rules = table
        self._start = table[START]
        self._max_lines = spec.max_lines
        self._max_bytes = spec.max_bytes
        self._state = START
        self._lines: list[str] = []
        self._chars = 0
        self.pending_raw = 0

    @property
    def pending(self) -> bool:
        return bool(self._lines)

    def feed(self, lines: list[str], raw_lens: list[int]) -> tuple[list[Joined], list[int]]:
        out: list[Joined] = []
        consumed: list[int] = []
        held = self._lines
        for line, raw in zip(lines, raw_lens):
            if held:
                to = _first_match(self._rules.get(self._state, ()), line)
                if to is not None:
                    held.append(line)
                    self._chars += len(line)
                    self.pending_raw += raw
                    self._state = to
                    if len(held) >= self._max_lines:
                        consumed.append(self._emit(out, "multiline_codec_max_lines_reached"))
                    elif self._chars >= self._max_bytes:
                        consumed.append(self._emit(out, "multiline_codec_max_bytes_reached"))
                    continue
                consumed.append(self._emit(out, None))
            to = _first_match(self._start, line)
            if to is None:
                out.append((line, None))
                consumed.append(raw)
                continue
            held.append(line)
            self._chars = len(line)
            self.pending_raw = raw
            self._state = to
        return out, consumed

    def flush(self) -> tuple[list[Joined], list[int]]:
        out: list[Joined] = []
        return out, [self._emit(out, None)] if self._lines else []

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
        self._state = START
        return raw


def _first_match(rules: list[tuple[re.Pattern[str], str]] | tuple[()], line: str) -> str | None:
    for pattern, to in rules:
        if pattern.search(line) is not None:
            return to
    return None


Joiner = Multiline | PresetJoiner


def make_joiner(spec: MultilineSpec | PresetSpec) -> Joiner:
    """The joiner a multiline setting describes: a preset by name, or a Logstash-style pattern."""
    if isinstance(spec, PresetSpec):
        return PresetJoiner(spec)
    return Multiline(spec)
