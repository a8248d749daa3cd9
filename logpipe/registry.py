"""Plugin discovery through the `logpipe.plugins` entry-point group.

Built-ins and third-party packages register the same way (`"filter.grok" =
"pkg.module:Class"`), so the core never imports a plugin module by name. Entry
points are listed eagerly (cheap) and loaded lazily: importing every plugin would
pull in elasticsearch, pymongo … for a pipeline that uses none of them.
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from logpipe.errors import ConfigError
from logpipe.plugin import Codec, Plugin

GROUP = "logpipe.plugins"
KINDS = ("input", "filter", "output", "codec")

_extra: dict[tuple[str, str], type[Plugin]] = {}


def _entry_points() -> dict[tuple[str, str], EntryPoint]:
    found: dict[tuple[str, str], EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        kind, _, name = ep.name.partition(".")
        if kind in KINDS and name:
            found[(kind, name)] = ep
    return found


_cache: dict[tuple[str, str], type[Plugin]] = {}
_eps: dict[tuple[str, str], EntryPoint] | None = None


def register(cls: type[Plugin]) -> type[Plugin]:
    """Register a plugin class in-process (for embedding programs and tests);
    takes precedence over entry points of the same kind and name."""
    _extra[(cls.kind, cls.name)] = cls
    return cls


def known(kind: str) -> list[str]:
    global _eps
    if _eps is None:
        _eps = _entry_points()
    names = {name for (k, name) in _eps if k == kind} | {name for (k, name) in _extra if k == kind}
    return sorted(names)


def lookup(kind: str, name: str) -> type[Plugin]:
    """The plugin class, or a ConfigError naming the known plugins of that kind."""
    global _eps
    key = (kind, name)
    if key in _extra:
        return _extra[key]
    if key in _cache:
        return _cache[key]
    if _eps is None:
        _eps = _entry_points()
    ep = _eps.get(key)
    if ep is None:
        names = known(kind)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"unknown {kind} plugin '{name}'; {hint}known {kind}s: {', '.join(names)}")
    try:
        cls = ep.load()
    except ImportError as exc:
        raise ConfigError(f"{kind} plugin '{name}' could not be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin) and cls.kind == kind):
        raise ConfigError(f"entry point {ep.name} = {ep.value} is not a logpipe {kind} plugin")
    _cache[key] = cls
    return cls


def create(kind: str, name: str, **settings: Any) -> Plugin:
    return lookup(kind, name)(**settings)


def create_codec(name: str, **settings: Any) -> Codec:
    codec = create("codec", name, **settings)
    assert isinstance(codec, Codec)
    return codec
