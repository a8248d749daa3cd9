"""Fluentd tag globs (`<match web.**>`, `match => "app.*"`), compiled to one regex.

The translation follows Fluentd's `GlobMatchPattern`:

- `*` matches one tag part (no dot): `a.*` matches `a.b`, not `a` nor `a.b.c`;
- `**` matches zero or more parts: `a.**` matches `a`, `a.b`, `a.b.c` (not `ab`),
  `**.b` matches `b` and `x.y.b`;
- `{x,y}` matches either alternative (alternatives may hold globs; nesting allowed);
- `\\c` matches `c` literally; `/regex/` is a regular expression on the whole tag;
- a string with several space-separated patterns matches when any of them does.

Tags repeat a lot, so the matcher caches its answer per tag in a bounded dict
(cleared when full: a rare rebuild beats an LRU's per-call bookkeeping).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from logpipe.errors import ConfigError

CACHE_SIZE = 4096


def glob_to_regex(pattern: str) -> str:
    """The regex source (without anchors) of one Fluentd tag glob."""
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        return pattern[1:-1]
    stack: list[list[str]] = []
    parts = [""]
    escape = False
    dot = False
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if escape:
            parts[-1] += re.escape(c)
            escape = False
            i += 1
            continue
        if pattern.startswith("**", i):
            if dot:
                parts[-1] += r"(?![^.])"
                dot = False
            if pattern.startswith(".", i + 2):
                parts[-1] += r"(?:.*\.|\A)"
                i += 3
            else:
                parts[-1] += ".*"
                i += 2
            continue
        if dot:
            parts[-1] += r"\."
            dot = False
        if c == "\\":
            escape = True
        elif c == ".":
            dot = True
        elif c == "*":
            parts[-1] += r"[^.]*"
        elif c == "{":
            stack.append([])
            parts.append("")
        elif c == "}" and stack:
            stack[-1].append(parts.pop())
            parts[-1] += "(?:" + "|".join(stack.pop()) + ")"
        elif c == "," and stack:
            stack[-1].append(parts.pop())
            parts.append("")
        else:
            parts[-1] += re.escape(c)
        i += 1
    if dot:
        parts[-1] += r"\."
    while stack:
        stack[-1].append(parts.pop())
        parts[-1] += "(?:" + "|".join(stack.pop()) + ")"
    return parts[-1]


def compile_tag_patterns(patterns: list[str]) -> Callable[[str], bool]:
    """A predicate `tag -> bool`: does the tag match any of the globs?

    Each item may itself hold several space-separated globs. Raises ConfigError for an
    invalid `/regex/` pattern or an empty pattern list.
    """
    globs = [g for p in patterns for g in p.split()]
    if not globs:
        raise ConfigError("a tag match needs at least one pattern")
    if "**" in globs:
        return _always
    sources = []
    for glob in globs:
        source = f"(?:{glob_to_regex(glob)})"
        try:  # checked as it will be embedded: a global flag such as (?i) is only valid at the start
            re.compile(source)
        except re.error as exc:
            raise ConfigError(f"invalid tag pattern {glob!r}: {exc}") from None
        sources.append(source)
    regex = re.compile("(?:" + "|".join(sources) + r")\Z")
    fullmatch = regex.match
    cache: dict[str, bool] = {}
    get = cache.get

    def match(tag: str) -> bool:
        hit = get(tag)
        if hit is None:
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            hit = cache[tag] = fullmatch(tag) is not None
        return hit

    return match


def _always(tag: str) -> bool:
    return True
