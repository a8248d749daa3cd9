"""Oniguruma (Ruby syntax, as Logstash's grok uses it) → Python `re`.

The Logstash pattern library and the patterns users copy from the internet are
written for Oniguruma/Joni. Python 3.11's `re` shares most of the syntax (atomic
groups and possessive quantifiers included) but differs in these places, which
this one-pass translator rewrites:

- `(?<name>…)` / `(?'name'…)` named groups → `(?P<safe>…)`; names like
  `[http][request][method]` are not identifiers, so every capture gets a safe name
  and the caller keeps the mapping.
- plain `(…)` groups → `(?:…)`: in Ruby a regex with named groups does not
  capture plain groups, and fewer groups is faster. They stay capturing only when
  the expression uses numbered back-references.
- POSIX brackets `[[:alnum:]]`, nested classes `[a[b]]` (flattened), `\\h`/`\\H`
  (hex digit), `\\z`, `\\Z`, `\\x{HHHH}`, `\\e`, unknown letter escapes (literal in Ruby,
  an error in Python), `\\k<name>` back-references.
- `(?m)` is Ruby's "dot matches newline" (Python's `s`), and inline flags in the
  middle of an expression apply to the rest of the enclosing group: they become a
  scoped `(?s:…)` group closed where that group closes.
- `X{n,m}+` is a quantified repetition in Ruby but possessive in Python 3.11: it is
  written `(?:X{n,m})+`.
- literal `&`, `~`, `|`, `[`, `-` inside classes are escaped so Python does not warn
  about future set operations.

Logstash compiles grok with `Regexp::MULTILINE` (dot matches newline) on Ruby
semantics where `^`/`$` are line anchors and `\\w`, `\\d`, `\\s`, `\\b` are ASCII; the
caller compiles with `re.S | re.M | re.A` to match (`FLAGS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from logpipe.errors import GrokError

FLAGS = re.DOTALL | re.MULTILINE | re.ASCII

_POSIX = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "xdigit": "0-9a-fA-F",
    "upper": "A-Z", "lower": "a-z", "space": " \\t\\r\\n\\v\\f", "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~", "cntrl": "\\x00-\\x1f\\x7f", "print": " -~", "graph": "!-~",
    "word": "\\w", "ascii": "\\x00-\\x7f",
}
_CLASS_ESCAPES = {"d", "D", "w", "W", "s", "S"}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "e": "\x1b"}
_SAFE_ESCAPES = set("dDwWsSbBAnrtfva")
_CLASS_SPECIAL = set("\\]^-[&~|")
_FLAG_MAP = {"i": "i", "m": "s", "x": "x"}


@dataclass
class Translation:
    """The Python regex, the capture names in group order, and an output → input offset map."""

    pattern: str
    names: list[str]
    numbered: bool
    offsets: list[tuple[int, int]]

    def input_offset(self, out_offset: int) -> int:
        best = 0
        for out_start, in_start in self.offsets:
            if out_start > out_offset:
                break
            best = in_start
        return best


@dataclass
class _Frame:
    out_start: int
    src_start: int
    extra_closes: int = 0


class _Translator:
    def __init__(self, src: str, name_group: Callable[[str], str]) -> None:
        self.src = src
        self.n = len(src)
        self.i = 0
        self.out: list[str] = []
        self.offsets: list[tuple[int, int]] = []
        self.out_len = 0
        self.name_group = name_group
        self.names: list[str] = []
        self.numbered = bool(re.search(r"(?<!\\)\\[1-9]", src))
        self.stack: list[_Frame] = []
        self.last_atom: int | None = None
        self.last_was_quant = False
        #: scoped flag groups opened at the top level, closed at the very end
        self.top_extra = 0

    def fail(self, message: str, at: int | None = None) -> GrokError:
        return GrokError(message, position=self.i if at is None else at)

    def emit(self, text: str, src_pos: int) -> int:
        index = len(self.out)
        self.out.append(text)
        self.offsets.append((self.out_len, src_pos))
        self.out_len += len(text)
        return index

    def atom(self, text: str, src_pos: int) -> None:
        self.last_atom = self.emit(text, src_pos)
        self.last_was_quant = False

    def run(self) -> Translation:
        src = self.src
        while self.i < self.n:
            c = src[self.i]
            start = self.i
            if c == "\\":
                self.atom(self.escape(), start)
            elif c == "[":
                self.atom(self.char_class(), start)
            elif c == "(":
                self.open_group()
            elif c == ")":
                self.close_group()
            elif c in "*+?":
                self.quantifier(c)
            elif c == "{" and (m := re.match(r"\{(\d*)(?:,(\d*))?\}", src[self.i:])) and (m.group(1) or m.group(2)):
                self.i += len(m.group(0))
                lazy = "?" if self.src.startswith("?", self.i) else ""
                self.i += len(lazy)
                self.apply_quant(m.group(0) + lazy, start)
            elif c == "|":
                self.emit("|", start)
                self.last_atom = None
                self.i += 1
            else:
                self.atom(re.escape(c) if c in "{}" else c, start)
                self.i += 1
        if self.stack:
            raise self.fail("missing ')' for this '('", self.stack[-1].src_start)
        self.emit(")" * self.top_extra, self.n)
        return Translation("".join(self.out), self.names, self.numbered, self.offsets)

    # -- quantifiers -------------------------------------------------------------
    def quantifier(self, c: str) -> None:
        start = self.i
        self.i += 1
        text = c
        if self.i < self.n and self.src[self.i] in "?+":
            text += self.src[self.i]
            self.i += 1
        self.apply_quant(text, start)

    def apply_quant(self, text: str, start: int) -> None:
        if self.last_atom is None:
            raise self.fail(f"quantifier {text!r} has nothing to repeat", start)
        if self.last_was_quant:
            # Ruby accepts a quantifier on a quantified atom (X{2}+, X*{3}); Python reads
            # some of those as possessive or rejects them: group the repetition first.
            self.out.insert(self.last_atom, "(?:")
            self.offsets.insert(self.last_atom, (0, start))
            self.out.append(")")
            self.offsets.append((0, start))
            self._reindex()
        self.emit(text, start)
        self.last_was_quant = True

    def _reindex(self) -> None:
        total = 0
        fixed = []
        for piece, (_, src_pos) in zip(self.out, self.offsets):
            fixed.append((total, src_pos))
            total += len(piece)
        self.offsets = fixed
        self.out_len = total

    # -- groups ------------------------------------------------------------------
    def open_group(self) -> None:
        src, start = self.src, self.i
        rest = src[self.i:self.i + 4]
        frame = _Frame(len(self.out), self.i)
        if rest.startswith("(?#"):
            end = src.find(")", self.i)
            if end < 0:
                raise self.fail("unterminated comment group")
            self.i = end + 1
            return
        if rest.startswith("(?<") and not rest.startswith(("(?<=", "(?<!")) or rest.startswith(("(?'", "(?P<")):
            opener = "'" if rest.startswith("(?'") else "<"
            name_start = self.i + (4 if rest.startswith("(?P<") else 3)
            close = src.find(">" if opener == "<" else "'", name_start)
            if close < 0:
                raise self.fail("unterminated group name")
            raw = src[name_start:close]
            if not raw:
                raise self.fail("empty group name")
            safe = self.name_group(raw)
            self.names.append(safe)
            self.i = close + 1
            self.stack.append(frame)
            self.emit(f"(?P<{safe}>", start)
            self.last_atom = None
            return
        for head in ("(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>"):
            if src.startswith(head, self.i):
                self.i += len(head)
                self.stack.append(frame)
                self.emit(head, start)
                self.last_atom = None
                return
        m = re.match(r"\(\?([imx]*)(?:-([imx]*))?([:)])", src[self.i:])
        if m:
            on = "".join(_FLAG_MAP[f] for f in m.group(1))
            off = "".join(_FLAG_MAP[f] for f in (m.group(2) or ""))
            flags = on + (f"-{off}" if off else "")
            self.i += len(m.group(0))
            if m.group(3) == ":":
                self.stack.append(frame)
                self.emit(f"(?{flags}:" if flags else "(?:", start)
            elif flags:
                # Ruby: the flags apply to the rest of the enclosing group.
                self.emit(f"(?{flags}:", start)
                if self.stack:
                    self.stack[-1].extra_closes += 1
                else:
                    self.top_extra += 1
            self.last_atom = None
            return
        if src.startswith("(?", self.i):
            raise self.fail(f"unsupported group syntax {src[self.i:self.i + 4]!r}")
        self.i += 1
        self.stack.append(frame)
        self.emit("(" if self.numbered else "(?:", start)
        self.last_atom = None

    def close_group(self) -> None:
        if not self.stack:
            raise self.fail("unmatched ')'")
        frame = self.stack.pop()
        self.emit(")" * (1 + frame.extra_closes), self.i)
        self.i += 1
        self.last_atom = frame.out_start
        self.last_was_quant = False

    # -- escapes -----------------------------------------------------------------
    def escape(self) -> str:
        src = self.src
        if self.i + 1 >= self.n:
            raise self.fail("trailing backslash")
        c = src[self.i + 1]
        self.i += 2
        if c == "h":
            return "[0-9a-fA-F]"
        if c == "H":
            return "[^0-9a-fA-F]"
        if c == "z":
            return "\\Z"
        if c == "Z":
            return "(?=\\n?\\Z)"
        if c == "R":
            return "(?:\\r\\n|[\\n\\v\\f\\r\\x85\\u2028\\u2029])"
        if c == "k" and self.i < self.n and src[self.i] == "<":
            close = src.find(">", self.i)
            raw = src[self.i + 1:close]
            self.i = close + 1
            if raw.isdigit():
                return f"\\{raw}"
            return f"(?P={self.name_group(raw)})"
        if c == "x":
            return "\\x" if not src.startswith("{", self.i) else self._braced_hex()
        if c.isdigit():
            return "\\" + c
        if c in _SAFE_ESCAPES:
            return "\\" + c
        if c in _SIMPLE_ESCAPES:
            return re.escape(_SIMPLE_ESCAPES[c])
        if c in ("G", "K", "X", "p", "P", "g"):
            raise self.fail(f"\\{c} is not supported by logpipe's grok (Python re has no equivalent)", self.i - 2)
        if c.isalpha() and c.isascii():
            return c
        return "\\" + c

    def _braced_hex(self) -> str:
        close = self.src.find("}", self.i)
        digits = self.src[self.i + 1:close]
        if close < 0 or not re.fullmatch(r"[0-9a-fA-F]{1,8}", digits):
            raise self.fail("bad \\x{...} escape")
        self.i = close + 1
        return re.escape(chr(int(digits, 16)))

    # -- character classes -------------------------------------------------------
    def char_class(self) -> str:
        start = self.i
        negate, items = self._class_body()
        if not items:
            raise self.fail("empty character class", start)
        return ("[^" if negate else "[") + "".join(items) + "]"

    def _class_body(self) -> tuple[bool, list[str]]:
        """Parse `[...]` at self.i; returns (negated, Python class items)."""
        src = self.src
        opened = self.i
        self.i += 1
        negate = False
        if self.i < self.n and src[self.i] == "^":
            negate = True
            self.i += 1
        items: list[str] = []
        first = True
        while True:
            if self.i >= self.n:
                raise self.fail("missing ']' for this character class", opened)
            c = src[self.i]
            if c == "]" and not first:
                self.i += 1
                return negate, items
            first = False
            if c == "[":
                m = re.match(r"\[:(\^?)([a-z]+):\]", src[self.i:])
                if m:
                    if m.group(2) not in _POSIX:
                        raise self.fail(f"unknown POSIX class [:{m.group(2)}:]")
                    if m.group(1):
                        raise self.fail(f"negated POSIX class [:^{m.group(2)}:] is not supported")
                    items.append(_POSIX[m.group(2)])
                    self.i += len(m.group(0))
                    continue
                at = self.i
                inner_neg, inner = self._class_body()
                if inner_neg:
                    raise self.fail("a negated class nested in a class is not supported", at)
                items.extend(inner)
                continue
            if c == "&" and src.startswith("&&", self.i):
                raise self.fail("class intersection '&&' is not supported")
            lo, lo_text = self._class_char()
            if (self.i + 1 < self.n and src[self.i] == "-" and src[self.i + 1] != "]"
                    and lo is not None):
                save = self.i
                self.i += 1
                hi, hi_text = self._class_char()
                if hi is None:
                    raise self.fail("bad character range", save)
                if ord(hi) < ord(lo):
                    raise self.fail(f"bad character range {lo_text}-{hi_text}", save)
                items.append(f"{lo_text}-{hi_text}")
                continue
            items.append(lo_text)

    def _class_char(self) -> tuple[str | None, str]:
        """One class member: (the character or None for a set like \\d, its Python text)."""
        src = self.src
        c = src[self.i]
        if c != "\\":
            self.i += 1
            return c, ("\\" + c if c in _CLASS_SPECIAL else c)
        if self.i + 1 >= self.n:
            raise self.fail("trailing backslash")
        e = src[self.i + 1]
        self.i += 2
        if e in _CLASS_ESCAPES:
            return None, "\\" + e
        if e == "h":
            return None, "0-9a-fA-F"
        if e in _SIMPLE_ESCAPES:
            ch = _SIMPLE_ESCAPES[e]
            return ch, _class_literal(ch)
        if e == "b":
            return "\b", "\\x08"
        if e == "x":
            if src.startswith("{", self.i):
                text = self._braced_hex()
                ch = re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL) if text.startswith("\\") else text
                return ch, _class_literal(ch)
            m = re.match(r"[0-9a-fA-F]{1,2}", src[self.i:])
            if not m:
                raise self.fail("bad \\x escape")
            self.i += len(m.group(0))
            ch = chr(int(m.group(0), 16))
            return ch, _class_literal(ch)
        if e == "u":
            m = re.match(r"[0-9a-fA-F]{4}", src[self.i:])
            if not m:
                raise self.fail("bad \\u escape")
            self.i += 4
            ch = chr(int(m.group(0), 16))
            return ch, _class_literal(ch)
        if e.isdigit():
            m = re.match(r"[0-7]{0,2}", src[self.i:])
            digits = e + (m.group(0) if m else "")
            self.i += len(digits) - 1
            ch = chr(int(digits, 8))
            return ch, _class_literal(ch)
        if e in ("H", "p", "P"):
            raise self.fail(f"\\{e} inside a character class is not supported", self.i - 2)
        return e, _class_literal(e)


def _class_literal(ch: str) -> str:
    if ch in _CLASS_SPECIAL:
        return "\\" + ch
    if ord(ch) < 0x20 or ch == "\x7f":
        return f"\\x{ord(ch):02x}"
    return ch


def translate(src: str, name_group: Callable[[str], str]) -> Translation:
    """Translate an Oniguruma expression; `name_group(raw_name)` returns the safe
    Python group name for each named group (in order of appearance)."""
    return _Translator(src, name_group).run()
