"""Turn a regex match into the captures dict, by generated code.

The match loop is the hot path of a pipeline (hundreds of thousands of lines a
second), and a generic loop over a (group, path, converter) table costs a few
hundred nanoseconds per capture in interpreter overhead. So for each compiled
expression we generate one straight-line Python function that searches, reads
`m.groups()` once and stores each value where it belongs: flat names are a
single dict store, nested ones go through intermediate dicts created lazily and
kept in locals, conversions are inlined. It is built once per expression, like
the regex itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from logpipe.errors import GrokError

MatchFn = Callable[[str], "dict[str, Any] | None"]
ExtractFn = Callable[[Any], "dict[str, Any]"]
IntoFn = Callable[[str, "dict[str, Any]"], "bool | list[tuple[str, str, str]] | None"]


class GrokCaptures(dict):  # type: ignore[type-arg]
    """The captures of a match where a `:int`/`:float` coercion failed: the value
    stays a string and `coerce_failures` lists (field, value, type). Plain matches
    return a plain dict, so the common path pays nothing for this."""

    coerce_failures: list[tuple[str, str, str]]


@dataclass(frozen=True)
class CaptureEntry:
    group: int
    field: str
    path: tuple[str, ...]
    type: str | None


def capture_path(name: str) -> tuple[str, ...]:
    """`[a][b]` and `a.b` both nest; a bare name is one key. (Logstash itself keeps
    dotted names as literal keys; logpipe nests them, as its design asks.)"""
    if name.startswith("["):
        # Lenient like Logstash's parser: the ECS library itself has a capture named
        # `[source][user][name` (its `?]` tail is ignored by the reference syntax).
        parts = [p for p in name[1:].replace("][", "\0").rstrip("]").split("\0")]
        if any(not p or "[" in p or "]" in p for p in parts):
            raise GrokError(f"bad field name {name!r}")
        return tuple(parts)
    if "." in name.strip("."):
        return tuple(p for p in name.split(".") if p)
    return (name,)


def _fail(fails: list[tuple[str, str, str]] | None, field: str, value: str, typ: str) -> list[tuple[str, str, str]]:
    if fails is None:
        fails = []
    fails.append((field, value, typ))
    return fails


def _to_float(value: str) -> float:
    result = float(value)
    if math.isinf(result) or math.isnan(result):
        raise ValueError(value)
    return result


def _add(container: dict[str, Any], key: str, value: Any) -> None:
    """A field captured more than once: the values collect into a list (Logstash)."""
    old = container.get(key)
    if old is None:
        container[key] = value
    elif type(old) is list:
        old.append(value)
    else:
        container[key] = [old, value]


def _wrap(d: dict[str, Any], fails: list[tuple[str, str, str]]) -> GrokCaptures:
    result = GrokCaptures(d)
    result.coerce_failures = fails
    return result


def build_matcher(search: Callable[[str], Any], entries: list[CaptureEntry],
                  keep_empty: bool) -> tuple[MatchFn, ExtractFn, IntoFn]:
    """Generate, for one expression: `match(text) -> dict | None`; `extract(m)`, the
    same body applied to a match object found some other way; and `into(text, d)`,
    which stores the captures straight into an existing dict (an event record) with
    Logstash's rules for fields that already exist, and returns None (no match),
    True, or the list of coercion failures."""
    _check_conflicts(entries)
    counts: dict[tuple[str, ...], int] = {}
    for e in entries:
        counts[e.path] = counts.get(e.path, 0) + 1
    fresh = _body(entries, keep_empty, counts, into=False)
    merged = _body(entries, keep_empty, counts, into=True)
    typed = any(e.type for e in entries)
    tail_fresh = ["    if fails is not None:", "        return _wrap(d, fails)"] if typed else []
    tail_into = ["    if fails is not None:", "        return fails"] if typed else []
    fresh_text = "\n".join(["    g = m.groups()", "    d = {}", *fresh, *tail_fresh, "    return d"])
    into_text = "\n".join(["    g = m.groups()", *merged, *tail_into, "    return True"])
    head = "    m = search(text)\n    if m is None:\n        return None\n"
    source = (f"def match(text):\n{head}{fresh_text}\n\n"
              f"def extract(m):\n{fresh_text}\n\n"
              f"def into(text, d):\n{head}{into_text}\n")
    namespace: dict[str, Any] = {
        "search": search, "_fail": _fail, "_to_float": _to_float, "_add": _add, "_wrap": _wrap,
        "_handle": _handle,
    }
    exec(compile(source, "<grok-matcher>", "exec"), namespace)  # noqa: S102 - generated from our own table
    return namespace["match"], namespace["extract"], namespace["into"]


def _body(entries: list[CaptureEntry], keep_empty: bool, counts: dict[tuple[str, ...], int],
          into: bool) -> list[str]:
    """Statements storing each capture. Fresh dicts can store blindly; `into` mode
    must respect what the record already holds."""
    prefixes: dict[tuple[str, ...], str] = {}
    for e in entries:
        for k in range(1, len(e.path)):
            prefixes.setdefault(e.path[:k], f"n{len(prefixes)}")
    lines = []
    if any(e.type for e in entries):
        lines.append("    fails = None")
    for var in prefixes.values():
        lines.append(f"    {var} = None")
    for e in entries:
        lines.append(f"    v = g[{e.group - 1}]")
        # Logstash skips nil and "" captures unless keep_empty_captures.
        lines.append("    if True:" if keep_empty else "    if v:")
        ind = "        "
        if e.type:
            conv = "int" if e.type == "int" else "_to_float"
            cind = ind
            if keep_empty:  # None and "" are kept as they are, not coerced
                lines.append(f"{ind}if v:")
                cind += "    "
            lines += [f"{cind}try:", f"{cind}    v = {conv}(v)", f"{cind}except ValueError:",
                      f"{cind}    fails = _fail(fails, {e.field!r}, v, {e.type!r})"]
        parent = "d"
        for k in range(1, len(e.path)):
            var = prefixes[e.path[:k]]
            key = e.path[k - 1]
            lines.append(f"{ind}if {var} is None:")
            if into:
                # An existing object is extended; an existing value of another kind
                # is left alone (the capture goes to a detached dict).
                lines += [f"{ind}    {var} = {parent}.get({key!r})",
                          f"{ind}    if {var} is None:",
                          f"{ind}        {var} = {parent}[{key!r}] = {{}}",
                          f"{ind}    elif type({var}) is not dict:",
                          f"{ind}        {var} = {{}}"]
            else:
                # Every write under this prefix goes through `var`: None means "not created yet".
                lines.append(f"{ind}    {var} = {parent}[{key!r}] = {{}}")
            parent = var
        leaf = e.path[-1]
        if into:
            lines += [f"{ind}if {leaf!r} in {parent}:", f"{ind}    _handle({parent}, {leaf!r}, v)",
                      f"{ind}else:", f"{ind}    {parent}[{leaf!r}] = v"]
        elif counts[e.path] > 1:
            lines.append(f"{ind}_add({parent}, {leaf!r}, v)")
        else:
            lines.append(f"{ind}{parent}[{leaf!r}] = v")
    return lines


def _handle(container: dict[str, Any], key: str, value: Any) -> None:
    """Logstash grok's rule for a field that exists: null is replaced, an array is
    appended to, a string becomes an array of both, anything else is left alone."""
    old = container[key]
    if old is None:
        container[key] = value
    elif type(old) is list:
        old.append(value)
    elif type(old) is str:
        container[key] = [old, value]


def _check_conflicts(entries: list[CaptureEntry]) -> None:
    leaves = {e.path: e.field for e in entries}
    for e in entries:
        for k in range(1, len(e.path)):
            if e.path[:k] in leaves:
                raise GrokError(
                    f"field {leaves[e.path[:k]]!r} is captured as a value and {e.field!r} needs it to be an object"
                )
