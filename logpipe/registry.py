"""Plugin discovery through the `logpipe.plugins` entry-point group.

Built-ins and third-party packages register the same way (`"filter.grok" =
"pkg.module:Class"`), so the core never imports a plugin module by name. Entry
points are listed eagerly (cheap) and loaded lazily: importing every plugin would
pull in elasticsearch, pymongo … for a pipeline that uses none of them.
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from logpipe.errors import ConfigError

if TYPE_CHECKING:
    from logpipe.base import Codec, Plugin

GROUP = "logpipe.plugins"
KINDS = ("input", "filter", "output", "codec")
#: The base class a plugin of each kind must extend: the pipeline calls that base's methods.
#: logpipe.base registers them when it is imported (it sits above this module: the base
#: classes build codecs through `create`), which happens before any plugin class exists.
_BASES: dict[str, type[Plugin]] = {}

_extra: dict[tuple[str, str], type[Plugin]] = {}
_cache: dict[tuple[str, str], type[Plugin]] = {}
_eps: dict[tuple[str, str], EntryPoint] | None = None


def _entry_points() -> dict[tuple[str, str], EntryPoint]:
    """Every `kind.name` entry point of the group, read once per process."""
    global _eps
    if _eps is None:
        found: dict[tuple[str, str], EntryPoint] = {}
        for ep in entry_points(group=GROUP):
            kind, _, name = ep.name.partition(".")
            if kind in KINDS and name:
                found[(kind, name)] = ep
        _eps = found
    return _eps


def register_bases(bases: dict[str, type[Plugin]]) -> None:
    """Called once by logpipe.base with the base class of every kind."""
    _BASES.update(bases)


def register(cls: type[Plugin] | None = None, *, name: str | None = None) -> Any:
    """Register a plugin class in-process, so configs can name it (embedding programs, tests);
    it takes precedence over an entry point of the same kind and name. Use it as a call,
    `register(MyFilter)`, or as a decorator, `@register` or `@register(name="status_class")`.
    The kind comes from the base class (Input, Filter, Output, Codec)."""

    def add(plugin: type[Plugin]) -> type[Plugin]:
        kind = next((k for k, base in _BASES.items() if isinstance(plugin, type) and issubclass(plugin, base)), None)
        if kind is None:
            raise TypeError(f"{plugin!r} is not a logpipe plugin class (subclass Input, Filter, Output or Codec)")
        if name is not None:
            plugin.name = name
        if not plugin.name:
            raise TypeError(f"{plugin.__name__} has no `name`: set the class attribute or register(name=...)")
        _extra[(kind, plugin.name)] = plugin
        return plugin

    return add if cls is None else add(cls)


def registered() -> dict[tuple[str, str], type[Plugin]]:
    """The plugins registered in this process (`register`), by (kind, name): a worker process
    registers them again (logpipe/workers/spec.py)."""
    return dict(_extra)


def known(kind: str) -> list[str]:
    """The names of every plugin of a kind, registered or installed."""
    names = {name for (k, name) in _entry_points() if k == kind} | {name for (k, name) in _extra if k == kind}
    return sorted(names)


def lookup(kind: str, name: str) -> type[Plugin]:
    """The plugin class, or a ConfigError naming the known plugins of that kind."""
    key = (kind, name)
    if key in _extra:
        return _extra[key]
    if key in _cache:
        return _cache[key]
    ep = _entry_points().get(key)
    if ep is None:
        names = known(kind)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"unknown {kind} plugin '{name}'; {hint}known {kind}s: {', '.join(names)}")
    try:
        cls = ep.load()
    except ImportError as exc:
        raise ConfigError(f"{kind} plugin '{name}' could not be loaded: {exc}") from exc
    base = _BASES[kind]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"entry point {ep.name} = {ep.value} is not a logpipe {kind} plugin "
                          f"(a subclass of logpipe.plugin.{base.__name__})")
    _cache[key] = cls
    return cls


def create(kind: str, name: str, **settings: Any) -> Plugin:
    """A plugin instance from its kind, name and settings (ConfigError for any mistake)."""
    return lookup(kind, name)(**settings)


def create_codec(name: str, **settings: Any) -> Codec:
    """`create` for codecs, typed: `lookup` guarantees the class extends Codec."""
    codec = create("codec", name, **settings)
    assert isinstance(codec, _BASES["codec"])
    return codec  # type: ignore[return-value]
