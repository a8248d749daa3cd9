"""Fluentd's record_accessor syntax for naming a field: `$.a.b`, `$['a']['b']` or a plain
top-level key, as a path for `logpipe.fields.compile_getter` / `compile_deleter`."""

from __future__ import annotations

import re

_SUBSCRIPT = re.compile(r"""\[\s*(?:"([^"]*)"|'([^']*)'|(-?\d+))\s*\]""")


def accessor_path(key: str) -> tuple[str, ...]:
    """`$.a.b` → ("a", "b"); `$['a']['b']` → ("a", "b"); `a.b` (no `$`) is one key."""
    if key.startswith("$."):
        return tuple(key[2:].split("."))
    if key.startswith("$["):
        return tuple(a or b or c for a, b, c in _SUBSCRIPT.findall(key[1:]))
    return (key,)
