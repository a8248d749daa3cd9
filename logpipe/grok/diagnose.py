"""Why did a line not match? The longest prefix of the pattern that still matches.

The expression is cut into tokens at `%{…}` references and regex atoms (a group,
a class, an escape or a character, each with its quantifier); prefixes of growing
length are compiled and searched in the line. The longest one that matches says
how far the line follows the pattern; the next token is what the line lacks. A
top-level alternation is diagnosed branch by branch and the branch that goes
furthest is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from logpipe.errors import GrokError, GrokTimeout
from logpipe.grok.engine import Grok, definitions_for
from logpipe.grok.expand import find_references


@dataclass
class Diagnosis:
    """`prefix` is the part of the pattern that matched, `expected` the token after it,
    `start`/`end` the span of the line the prefix consumed (end = where it diverges)."""

    prefix: str
    expected: str
    rest: str
    start: int
    end: int
    via: tuple[str, ...] = ()

    def render(self, line: str) -> list[str]:
        shown = line.replace("\t", " ").replace("\n", " ")
        out = []
        if self.via:
            out.append(f"  (looking inside {' > '.join('%{' + v + '}' for v in self.via)})")
        if self.prefix:
            out.append(f"  pattern matched up to: {self.prefix}")
            out.append(f"  it consumed:           {line[self.start:self.end]!r}")
        else:
            out.append("  not even the first token matches anywhere in the line")
        shown_token = repr(self.expected) if not self.expected.strip() else self.expected
        out.append(f"  next, the pattern expects: {shown_token}")
        out.append(f"  the line diverges at column {self.end + 1}:")
        out.append(f"    {shown}")
        out.append(f"    {' ' * self.end}^")
        return out


def tokenize(expression: str) -> list[str]:
    """Split a grok expression at reference and atom boundaries."""
    refs = {r.start: r.end for r in find_references(expression)}
    tokens: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        start = i
        c = expression[i]
        if i in refs:
            i = refs[i]
        elif c == "\\":
            i += 2
        elif c == "[":
            i = _class_end(expression, i)
        elif c == "(":
            i = _group_end(expression, i, refs)
        else:
            i += 1
        i = _quantifier_end(expression, i)
        tokens.append(expression[start:i])
    return tokens


def _class_end(s: str, i: int) -> int:
    """Index after the character class opening at `i` (nested classes and POSIX brackets included)."""
    j = i + 1
    if j < len(s) and s[j] == "^":
        j += 1
    if j < len(s) and s[j] == "]":
        j += 1
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
        elif c == "[" and s.startswith("[:", j) and ":]" in s[j:]:
            j = s.index(":]", j) + 2
        elif c == "[":
            j = _class_end(s, j)
        elif c == "]":
            return j + 1
        else:
            j += 1
    return len(s)


def _group_end(s: str, i: int, refs: dict[int, int]) -> int:
    depth = 0
    j = i
    while j < len(s):
        if j in refs:
            j = refs[j]
            continue
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _class_end(s, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return len(s)


def _quantifier_end(s: str, i: int) -> int:
    if i < len(s) and s[i] in "*+?":
        i += 1
        if i < len(s) and s[i] in "?+":
            i += 1
    elif i < len(s) and s[i] == "{":
        close = s.find("}", i)
        body = s[i + 1:close] if close > 0 else ""
        if body and all(ch.isdigit() or ch == "," for ch in body):
            i = close + 1
            if i < len(s) and s[i] in "?+":
                i += 1
    return i


def _branches(tokens: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for t in tokens:
        if t == "|":
            out.append([])
        else:
            out[-1].append(t)
    return out


def diagnose(expression: str, line: str, **options: Any) -> Diagnosis:
    """The longest matching prefix of `expression` on `line` (options as for Grok).
    When the token that fails is a `%{NAME}` reference, its definition is opened
    in place and the search goes on inside it, so `%{COMBINEDAPACHELOG}` alone
    still points at the exact character."""
    defs = definitions_for(options.get("ecs_compatibility", "disabled"), options.get("patterns_dir"),
                           options.get("pattern_definitions"))
    via: list[str] = []
    found = _diagnose_expression(expression, line, options)
    for _ in range(12):
        if not _is_reference(found.expected):
            break
        refs = find_references(found.expected)
        body = defs.get(refs[0].name)
        if body is None:
            break
        inner = tokenize(body)
        if "|" in inner:
            break  # an alternation cannot be opened in place without changing the pattern
        if len(inner) == 1 and not _is_reference(inner[0]):
            break  # one opaque token: the reference as written says more
        via.append(refs[0].name)
        found = _diagnose_expression(found.prefix + body + found.rest[len(found.expected):], line, options)
    found.via = tuple(via)
    return found


def _is_reference(token: str) -> bool:
    refs = find_references(token)
    return len(refs) == 1 and refs[0].start == 0 and refs[0].end == len(token)


def _diagnose_expression(expression: str, line: str, options: dict[str, Any]) -> Diagnosis:
    best: Diagnosis | None = None
    for tokens in _branches(tokenize(expression)):
        found = _diagnose_branch(tokens, line, options)
        if best is None or len(found.prefix) > len(best.prefix):
            best = found
    assert best is not None
    return best


def _diagnose_branch(tokens: list[str], line: str, options: dict[str, Any]) -> Diagnosis:
    options = {**options, "timeout": options.get("timeout", 5.0)}
    best_k, span = 0, (0, 0)
    lo, hi = 1, len(tokens)
    # Prefix matching is monotone for practical patterns: binary search, then confirm.
    while lo <= hi:
        mid = (lo + hi) // 2
        found = _prefix_span(tokens[:mid], line, options)
        if found is not None:
            best_k, span = mid, found
            lo = mid + 1
        else:
            hi = mid - 1
    prefix = "".join(tokens[:best_k])
    expected = tokens[best_k] if best_k < len(tokens) else "(end of pattern)"
    rest = "".join(tokens[best_k:])
    return Diagnosis(prefix, expected, rest, span[0], span[1])


def _prefix_span(tokens: list[str], line: str, options: dict[str, Any]) -> tuple[int, int] | None:
    try:
        m = Grok("".join(tokens), **options).search(line)
    except (GrokError, GrokTimeout):
        return None
    return None if m is None else (m.start(), m.end())
