"""Logstash field references (`[a][b]`, `[@metadata][k]`, `@timestamp`) and sprintf (`%{field}`).

Config conditions, grok, mutate and outputs read and write fields millions of times a second, so a
reference is parsed once, when the setting is compiled, into a closure specialised for its shape:
the common one- and two-level paths are straight-line code without loops, and only deeper paths
walk a tuple. Absent fields are reported with the `MISSING` sentinel, because `None` is a legal
JSON value.

Semantics (Logstash's):
- a bare name is one top-level key, dots included (`a.b` is the key "a.b");
- `[@metadata]...` addresses `Event.meta`;
- `@timestamp` reads the event time as ISO-8601 UTC with milliseconds and writes `Event.time`;
- a numeric key indexes a list (`[arr][0]`, `[arr][-1]`) and is an ordinary key in a dict.
"""

from __future__ import annotations

import math
import re
import time as _time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.jsonvalues import json_default
from logpipe.timefmt import NS, compile_joda_formatter, format_iso_ms, parse_iso8601


class _Missing:
    """The type of MISSING: falsy, and distinct from None (a present null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

TIMESTAMP = "@timestamp"
METADATA = "@metadata"
TIMESTAMP_FAILURE_TAG = "_timestampparsefailure"
TIMESTAMP_FAILURE_FIELD = "_@timestamp"

Getter = Callable[[Event], Any]
Setter = Callable[[Event, Any], None]
Deleter = Callable[[Event], Any]
Ref = str | tuple[str, ...]

_SEGMENT = re.compile(r"\[([^\[\]]+)\]")


def parse_ref(ref: str) -> tuple[str, ...]:
    """`[a][b]` → ("a", "b"); `a` → ("a",); `a.b` → ("a.b",). `a[b]` is read as `[a][b]`.

    Raises ConfigError for an empty reference, an empty `[]`, unbalanced brackets or text after a
    closing bracket (`[a]b`)."""
    if not isinstance(ref, str):
        raise ConfigError(f"field reference must be a string, got {ref!r}")
    text = ref.strip()
    if not text:
        raise ConfigError("empty field reference")
    if "[" not in text and "]" not in text:
        return (text,)
    head = ""
    if not text.startswith("["):
        cut = text.find("[")
        if cut < 0 or "]" in text[:cut]:
            raise ConfigError(f"malformed field reference {ref!r}: unbalanced brackets")
        head, text = text[:cut], text[cut:]
    parts: list[str] = [head] if head else []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            rest = text[pos:]
            if rest.startswith("[]"):
                problem = "empty brackets '[]'"
            elif rest.startswith("["):
                problem = "a '[' is never closed"
            else:
                problem = f"unexpected text {rest!r}"
            raise ConfigError(
                f"malformed field reference {ref!r}: {problem} (write nested fields as [outer][inner])"
            )
        parts.append(m.group(1))
        pos = m.end()
    return tuple(parts)


def _as_path(ref: Ref) -> tuple[str, ...]:
    return ref if isinstance(ref, tuple) else parse_ref(ref)


def _index(key: str) -> int | None:
    """The list index a key denotes, if it looks like one."""
    if key.isdigit() or (key[:1] == "-" and key[1:].isdigit()):
        return int(key)
    return None


def _step(container: Any, key: str, idx: int | None) -> Any:
    """One level down, for anything that is not a plain dict (lists, other mappings)."""
    if container is MISSING:
        return MISSING
    if isinstance(container, list):
        if idx is None:
            return MISSING
        try:
            return container[idx]
        except IndexError:
            return MISSING
    if isinstance(container, Mapping):
        return container.get(key, MISSING)
    return MISSING


# ---- getters ----------------------------------------------------------------------------------


def compile_getter(ref: Ref) -> Getter:
    """A function returning the referenced value, or MISSING when any level is absent."""
    path = _as_path(ref)
    if path == (TIMESTAMP,):
        return lambda ev: format_iso_ms(ev.time)
    if path[0] == TIMESTAMP:
        return lambda ev: MISSING
    if path[0] == METADATA:
        rest = path[1:]
        if not rest:
            return lambda ev: ev.meta
        return _path_getter(rest, meta=True)
    return _path_getter(path, meta=False)


def _path_getter(path: tuple[str, ...], meta: bool) -> Getter:
    k0 = path[0]
    if len(path) == 1:
        if meta:
            return lambda ev: ev.meta.get(k0, MISSING)
        return lambda ev: ev.record.get(k0, MISSING)
    if len(path) == 2:
        k1 = path[1]
        i1 = _index(k1)

        def get2_meta(ev: Event) -> Any:
            v = ev.meta.get(k0, MISSING)
            if v.__class__ is dict:
                return v.get(k1, MISSING)
            return _step(v, k1, i1)

        def get2_record(ev: Event) -> Any:
            v = ev.record.get(k0, MISSING)
            if v.__class__ is dict:
                return v.get(k1, MISSING)
            return _step(v, k1, i1)

        return get2_meta if meta else get2_record
    steps = tuple((k, _index(k)) for k in path[1:])

    def get_n(ev: Event) -> Any:
        v = (ev.meta if meta else ev.record).get(k0, MISSING)
        for key, idx in steps:
            if v.__class__ is dict:
                v = v.get(key, MISSING)
            else:
                v = _step(v, key, idx)
            if v is MISSING:
                return MISSING
        return v

    return get_n


# ---- setters ----------------------------------------------------------------------------------


def timestamp_to_ns(value: Any) -> int | None:
    """What `@timestamp` accepts: int = nanoseconds (logpipe's native time), float = epoch seconds,
    an ISO-8601 string, or a datetime (naive = UTC). None when the value is none of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value * NS)
    if isinstance(value, str):
        return parse_iso8601(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000
    return None


def _set_timestamp(ev: Event, value: Any) -> None:
    """Logstash's rule: a value that is not a time is kept in `_@timestamp` and the event tagged,
    rather than failing the event."""
    ns = timestamp_to_ns(value)
    if ns is not None:
        ev.time = ns
        return
    ev.record[TIMESTAMP_FAILURE_FIELD] = value
    add_tag(ev, TIMESTAMP_FAILURE_TAG)


def _set_meta_root(ev: Event, value: Any) -> None:
    if isinstance(value, dict):
        ev.meta = value


def compile_setter(ref: Ref) -> Setter:
    """A function storing a value at the reference, creating intermediate dicts.

    An intermediate level that is not a container (or a list addressed by a non-numeric key) is
    replaced by a dict: the new value wins rather than the event failing. A list index past the
    end appends. `@timestamp` takes what `timestamp_to_ns` accepts; `[@metadata]` takes a dict."""
    path = _as_path(ref)
    if path == (TIMESTAMP,):
        return _set_timestamp
    if path[0] == TIMESTAMP:
        return lambda ev, value: None
    meta = path[0] == METADATA
    if meta:
        path = path[1:]
        if not path:
            return _set_meta_root
    k0 = path[0]
    if len(path) == 1:
        if meta:
            def set1_meta(ev: Event, value: Any) -> None:
                ev.meta[k0] = value
            return set1_meta

        def set1(ev: Event, value: Any) -> None:
            ev.record[k0] = value
        return set1
    indices = [_index(k) for k in path]
    # Each parent step knows whether the next key is a list index: a list is only kept as the
    # container of a numeric key, so the final store always lands (never on a list by name).
    parents = tuple((path[i], indices[i], indices[i + 1] is not None) for i in range(len(path) - 1))
    last = path[-1]
    last_idx = indices[-1]

    def set_n(ev: Event, value: Any) -> None:
        container: Any = ev.meta if meta else ev.record
        for key, idx, next_is_index in parents:
            container = _descend_create(container, key, idx, next_is_index)
        _store(container, last, last_idx, value)

    return set_n


def _descend_create(container: Any, key: str, idx: int | None, next_is_index: bool) -> Any:
    """The child at `key`, replaced by a new dict unless it can hold the next key. `container`
    is a dict, or a list with `idx` set (the previous step guaranteed it)."""
    if isinstance(container, list):
        child = container[idx] if idx is not None and -len(container) <= idx < len(container) else MISSING
    else:
        child = container.get(key, MISSING)
    if isinstance(child, dict) or (next_is_index and isinstance(child, list)):
        return child
    child = {}
    _store(container, key, idx, child)
    return child


def _store(container: Any, key: str, idx: int | None, value: Any) -> None:
    if isinstance(container, list) and idx is not None:
        if -len(container) <= idx < len(container):
            container[idx] = value
        else:
            container.append(value)
    elif isinstance(container, dict):
        container[key] = value


# ---- deleters ---------------------------------------------------------------------------------


def compile_deleter(ref: Ref) -> Deleter:
    """A function removing the referenced value and returning it (MISSING if absent).

    The event time cannot be absent: deleting `@timestamp` returns its text and leaves the time.
    Deleting `[@metadata]` empties the metadata and returns the old dict."""
    path = _as_path(ref)
    if path == (TIMESTAMP,):
        return lambda ev: format_iso_ms(ev.time)
    if path[0] == TIMESTAMP:
        return lambda ev: MISSING
    meta = path[0] == METADATA
    if meta:
        path = path[1:]
        if not path:
            def del_meta_root(ev: Event) -> Any:
                old, ev.meta = ev.meta, {}
                return old
            return del_meta_root
    k0 = path[0]
    if len(path) == 1:
        if meta:
            return lambda ev: ev.meta.pop(k0, MISSING)
        return lambda ev: ev.record.pop(k0, MISSING)
    parents = _path_getter(path[:-1], meta)
    last = path[-1]
    last_idx = _index(last)

    def del_n(ev: Event) -> Any:
        container = parents(ev)
        if isinstance(container, dict):
            return container.pop(last, MISSING)
        if isinstance(container, list) and last_idx is not None:
            try:
                return container.pop(last_idx)
            except IndexError:
                return MISSING
        return MISSING

    return del_n


# ---- conveniences -----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _cached_getter(ref: Ref) -> Getter:
    return compile_getter(ref)


@lru_cache(maxsize=4096)
def _cached_setter(ref: Ref) -> Setter:
    return compile_setter(ref)


@lru_cache(maxsize=4096)
def _cached_deleter(ref: Ref) -> Deleter:
    return compile_deleter(ref)


@lru_cache(maxsize=4096)
def runtime_ref(ref: str) -> tuple[str, ...]:
    """The path of a reference rendered per event (`%{name}` in a field name). Event data is not
    config: text that is no valid reference names the top-level key written, rather than raising
    (which would fail the whole batch)."""
    try:
        return parse_ref(ref)
    except ConfigError:
        return (ref,)


def get_field(event: Event, ref: Ref) -> Any:
    """Read a field by reference (compiled accessors are cached); MISSING when absent."""
    return _cached_getter(ref)(event)


def set_field(event: Event, ref: Ref, value: Any) -> None:
    _cached_setter(ref)(event, value)


def delete_field(event: Event, ref: Ref) -> Any:
    return _cached_deleter(ref)(event)


def add_tag(event: Event, tag: str) -> None:
    """Append to `record["tags"]` unless present (Logstash's Event#tag); a scalar `tags` becomes a list."""
    tags = event.record.get("tags")
    if tags.__class__ is list:
        if tag not in tags:
            tags.append(tag)
    elif tags is None:
        event.record["tags"] = [tag]
    elif tags != tag:
        event.record["tags"] = [tags, tag]


# ---- sprintf ----------------------------------------------------------------------------------


def render_value(value: Any) -> str:
    """A field value as sprintf writes it: lists joined with ',' (Logstash), dicts as JSON,
    booleans as true/false."""
    cls = value.__class__
    if cls is str:
        return value
    if cls is bool:
        return "true" if value else "false"
    if cls is int or cls is float:
        return str(value)
    if cls is list or cls is tuple:
        return ",".join(_render_element(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value, default=json_default).decode()
    if value is None:
        return ""
    return str(value)


def _render_element(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=json_default).decode()
    return render_value(value)


def has_sprintf(template: str) -> bool:
    """True when the text holds a `%{...}` reference, so callers can skip sprintf entirely."""
    if not isinstance(template, str):
        return False
    open_at = template.find("%{")
    return open_at >= 0 and template.find("}", open_at) >= 0


Part = str | Callable[[Event], str]


def _field_part(content: str) -> Callable[[Event], str]:
    getter = compile_getter(content)
    raw = "%{" + content + "}"

    def part(ev: Event) -> str:
        v = getter(ev)
        if v.__class__ is str:
            return v
        if v is MISSING or v is None:
            return raw
        return render_value(v)

    return part


def _java_time_part(pattern: str) -> Callable[[Event], str]:
    if pattern == "TIME_NOW":
        return lambda ev: format_iso_ms(_time.time_ns())
    if "%" in pattern:  # strftime, as a convenience for users who think in C formats
        def strf(ev: Event) -> str:
            return datetime.fromtimestamp(ev.time / NS, UTC).strftime(pattern)
        return strf
    fmt = compile_joda_formatter(pattern, java_time=True)
    return lambda ev: fmt(ev.time)


def _time_part(pattern: str) -> Callable[[Event], str]:
    if pattern == "%s":
        return lambda ev: str(ev.time // NS)
    fmt = compile_joda_formatter(pattern)
    return lambda ev: fmt(ev.time)


def _sprintf_parts(template: str) -> list[Part]:
    """Split a template exactly as Logstash's StringInterpolation does: a reference runs from `%{`
    to the next `}` (`%{{...}}` takes one more)."""
    parts: list[Part] = []
    pos, n = 0, len(template)
    open_at = template.find("%{")
    close = template.find("}", open_at) if open_at >= 0 else -1
    while open_at >= 0 and close >= 0:
        if open_at > pos:
            parts.append(template[pos:open_at])
        content = template[open_at + 2:close]
        if content.startswith("{") and close + 1 < n and template[close + 1] == "}":
            parts.append(_java_time_part(content[1:]))
            close += 1
        elif content.startswith("+"):
            parts.append(_time_part(content[1:]))
        elif not content.strip():
            parts.append(template[open_at:close + 1])
        else:
            parts.append(_field_part(content))
        pos = close + 1
        open_at = template.find("%{", pos)
        close = template.find("}", open_at) if open_at >= 0 else -1
    if pos < n:
        parts.append(template[pos:])
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return merged


def compile_sprintf(template: str) -> Callable[[Event], str]:
    """Compile a sprintf template once into `f(event) -> str`.

    `%{field}` / `%{[a][b]}` insert a field (a missing one leaves the reference as written),
    `%{+YYYY.MM.dd}` formats the event time with a Joda pattern (UTC), `%{+%s}` gives epoch
    seconds, `%{{yyyy-MM-dd}}` a java.time pattern (`%{{%Y-%m-%d}}`, containing `%`, is read as
    strftime) and `%{{TIME_NOW}}` the current time. Malformed field references raise ConfigError.
    """
    if not has_sprintf(template):
        return lambda ev: template
    parts = _sprintf_parts(template)
    if len(parts) == 1:
        only = parts[0]
        if isinstance(only, str):
            return lambda ev: only
        return only
    if len(parts) == 2:
        a, b = parts
        if isinstance(a, str) and not isinstance(b, str):
            return lambda ev: a + b(ev)
        if isinstance(b, str) and not isinstance(a, str):
            return lambda ev: a(ev) + b
    funcs = tuple(parts)
    return lambda ev: "".join([p if p.__class__ is str else p(ev) for p in funcs])  # type: ignore[operator]


def compile_text(value: Any) -> Callable[[Event], str]:
    """A setting value used as text, as Logstash treats `add_field`/`replace` values: strings are
    sprintf templates, anything else is rendered once (`5` → "5")."""
    return compile_sprintf(value if isinstance(value, str) else render_value(value))


@lru_cache(maxsize=4096)
def cached_sprintf(template: str) -> Callable[[Event], str]:
    """compile_sprintf with a cache, for callers whose templates are only known at run time."""
    return compile_sprintf(template)
