"""Propose a grok pattern for a sample line (GrokConstructor's automatic construction).

The line is read left to right. At each position the known tokens are tried
most specific first (timestamps before numbers, IPs before hostnames, quoted
strings before words); the first that matches there, ends on a token boundary
and covers at least one letter or digit becomes `%{NAME:field}`. Anything else —
spaces, brackets, dashes — stays a literal. The result is checked against the
line before it is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from logpipe.grok.engine import Grok, cached_compile

#: (pattern, field name) in the order they are tried.
CANDIDATES: list[tuple[str, str]] = [
    ("TIMESTAMP_ISO8601", "timestamp"),
    ("HTTPDATE", "timestamp"),
    ("DATESTAMP_RFC2822", "timestamp"),
    ("DATESTAMP_OTHER", "timestamp"),
    ("SYSLOGTIMESTAMP", "timestamp"),
    ("DATESTAMP", "timestamp"),
    ("UUID", "uuid"),
    ("MAC", "mac"),
    ("IP", "ip"),
    ("EMAILADDRESS", "email"),
    ("URI", "uri"),
    ("QUOTEDSTRING", "quoted"),
    ("UNIXPATH", "path"),
    ("TIME", "time"),
    ("LOGLEVEL", "level"),
    ("NUMBER", "number"),
    ("HOSTNAME", "host"),
    ("WORD", "word"),
    ("NOTSPACE", "token"),
]

_ALNUM = re.compile(r"[A-Za-z0-9]")
#: Characters that structure a line: always literals, and never inside a plain token.
_DELIMS = frozenset("[](){}<>=,;|\"'")
#: Tokens that must not swallow delimiters (structured ones like QUOTEDSTRING may).
_PLAIN = {"NOTSPACE", "WORD", "HOSTNAME"}


@dataclass
class Proposal:
    pattern: str
    captures: dict[str, object]


def discover(line: str, ecs_compatibility: str = "disabled") -> Proposal:
    """A grok pattern that matches `line`, built from recognised tokens."""
    compiled = [(name, field, cached_compile(f"%{{{name}}}", ecs_compatibility=ecs_compatibility).regex)
                for name, field in CANDIDATES]
    parts: list[str] = []
    used: dict[str, int] = {}
    i, n = 0, len(line)
    while i < n:
        token = _token_at(line, i, compiled)
        if token is None:
            parts.append(_literal(line[i]))
            i += 1
            continue
        name, field, end = token
        used[field] = used.get(field, 0) + 1
        label = field if used[field] == 1 else f"{field}{used[field]}"
        parts.append(f"%{{{name}:{label}}}")
        i = end
    pattern = _squeeze_spaces("".join(parts))
    captures = Grok(f"^{pattern}$", ecs_compatibility=ecs_compatibility).match(line)
    if captures is None:  # a token that only matched in context: fall back to the literal line
        pattern = re.escape(line)
        captures = {}
    return Proposal(pattern, captures)


def _token_at(line: str, i: int, compiled: list[tuple[str, str, re.Pattern[str]]]) -> tuple[str, str, int] | None:
    c = line[i]
    if c.isspace() or (c in _DELIMS and c not in "\"'") or (i > 0 and line[i - 1].isalnum() and c.isalnum()):
        return None
    for name, field, rx in compiled:
        m = rx.match(line, i)
        if m is None or m.end() == i:
            continue
        end = m.end()
        text = line[i:end]
        if not _ALNUM.search(text):
            continue
        if name in _PLAIN and (_DELIMS.intersection(text) or (name == "HOSTNAME" and "." not in text)):
            continue
        if end < len(line) and line[end].isalnum() and line[end - 1].isalnum() and name != "NUMBER":
            continue  # stops inside a word: not a token boundary (a number may carry a unit: 12ms)
        return name, field, end
    return None


def _literal(ch: str) -> str:
    return re.escape(ch) if ch not in " -:,;=/@'\"<>" else ch


def _squeeze_spaces(pattern: str) -> str:
    """Runs of spaces become ` +`, so lines padded differently still match."""
    return re.sub(r" {2,}", " +", pattern)
