"""Logstash's `useragent` filter: browser, OS and device from a User-Agent string.

Parsing is `ua-parser` with the uap-core rules packaged in `ua-parser-builtins` (the rules
Logstash's plugin bundles, newer), or a `regexes` YAML file of the same format. Field layout
follows the Logstash plugin (8.x):

- `ecs_compatibility => disabled`: under `target` (default: the event root), with `prefix`:
  `name`, `version`, `major`, `minor`, `patch`, `device`, `os`, `os_name`, `os_full`,
  `os_version`, `os_major`, `os_minor`, `os_patch`;
- v1/v8: `[user_agent]` by default: `name`, `version`, `device.name`, `os.name`, `os.version`,
  `os.full`; the version parts go to `[@metadata][filter][user_agent]` (`prefix` is ignored
  with a warning, as in Logstash).

Versions are joined the way the plugin joins them: OS versions with `.`, or a space after a
non-numeric major (`Vista`), the browser version with a patch-minor read back from the string.
An array source uses its first element; an empty or missing one is left alone. Results are
kept in an LRU of `lru_cache_size` strings, so a realistic mix costs a dict hit per event.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

import ua_parser
from ua_parser import Parser
from ua_parser.loaders import load_yaml

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_deleter, compile_getter, compile_setter, parse_ref
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.plugin import Filter, Setting

Assignment = tuple[tuple[str, ...], str]


def build_version(major: str | None, minor: str | None, patch: str | None, patch_minor: str | None,
                  source: str) -> str | None:
    """The browser version string (`89.0.4389.90`), as the Logstash plugin builds it."""
    if not major:
        return None
    version = major
    if minor:
        version += "." + minor
        if patch:
            version += "." + patch
            if patch_minor:
                version += "." + patch_minor
            else:
                version = _adjust_version(source, version)
    return version


def _adjust_version(source: str, version: str) -> str:
    """The rules drop a fourth component the string carries (`Outlook/16.24.0.190414`): read it back."""
    at = source.find(version)
    if at < 0:
        return version
    end = at + len(version)
    if source[end:end + 1] == ".":
        space = source.find(" ", end + 1)
        if space >= 0:
            tail = source[end + 1:space]
            if tail.isdigit() and str(int(tail)) == tail:
                return f"{version}.{tail}"
    return version


def build_os_version(major: str | None, minor: str | None, patch: str | None, patch_minor: str | None) -> str | None:
    if not major:
        return None
    numeric = major.lstrip("-").isdigit()
    version = major
    if minor:
        version += ("." if numeric else " ") + minor
        if patch:
            version += "." + patch
            if patch_minor:
                version += "." + patch_minor
    return version


class UseragentFilter(Filter):
    name = "useragent"
    creates_events = False
    doc = "Parses a User-Agent string into browser, OS and device fields (uap-core rules)."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "string", required=True, doc="the field holding the User-Agent string"),
        Setting("target", "string", doc="where the fields go (legacy: the event root; ECS: [user_agent])"),
        Setting("regexes", "path", doc="a uap-core regexes.yaml to use instead of the packaged rules"),
        Setting("prefix", "string", default="", doc="prefix of the legacy field names (not with ECS)"),
        Setting("lru_cache_size", "int", default=100_000, doc="User-Agent strings whose result is kept"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self._ecs = ecs_enabled(p)
        if self._ecs and p["prefix"]:
            self.log.warning("useragent: `prefix` is not supported in ECS compatibility mode; remove "
                             "`prefix => %r`", p["prefix"])
        if p["lru_cache_size"] < 0:
            raise ConfigError("setting 'lru_cache_size' must be 0 or more", setting="lru_cache_size")
        if p["regexes"] is not None:
            if load_yaml is None:
                raise ConfigError("useragent: reading `regexes` needs PyYAML", setting="regexes")
            try:
                self._parse = Parser.from_matchers(load_yaml(p["regexes"])).parse
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"useragent: cannot load regexes {p['regexes']}: {exc}", setting="regexes") from None
        else:
            self._parse = ua_parser.parse
        target = p["target"]
        if target is None:
            target = "[user_agent]" if self._ecs else ""
        self._target = parse_ref(target) if target else ()
        self._get = compile_getter(p["source"])
        self._remove_source = compile_deleter(p["source"]) if p["target"] == p["source"] else None
        self._cache: OrderedDict[str, list[tuple[Any, str]]] = OrderedDict()
        self._setters: dict[tuple[str, ...], Any] = {}

    def _path(self, legacy: str, ecs: str | None, meta_ecs: bool = False) -> tuple[str, ...] | None:
        """Where one value goes: the legacy name (with prefix) or the ECS sub-path."""
        if not self._ecs:
            return ("",) + self._target + (self.params["prefix"] + legacy,)
        if ecs is None:
            return None
        if meta_ecs:
            return ("@metadata", "filter", "user_agent") + tuple(ecs.split("."))
        return ("",) + self._target + tuple(ecs.split("."))

    def analyse(self, text: str) -> list[tuple[Any, str]]:
        """(setter, value) pairs for one string, from the LRU or the parser."""
        cache = self._cache
        hit = cache.get(text)
        if hit is not None:
            cache.move_to_end(text)
            return hit
        result = self._assignments(text)
        setters = self._setters
        out = []
        for path, value in result:
            setter = setters.get(path)
            if setter is None:
                ref = "".join(f"[{k}]" for k in (path[1:] if path[0] == "" else path))
                setter = setters[path] = compile_setter(ref)
            out.append((setter, value))
        size = self.params["lru_cache_size"]
        if size:
            cache[text] = out
            if len(cache) > size:
                cache.popitem(last=False)
        return out

    def _assignments(self, text: str) -> list[Assignment]:
        parsed = self._parse(text)
        ua, os_, device = parsed.user_agent, parsed.os, parsed.device
        out: list[tuple[tuple[str, ...] | None, str]] = []
        out.append((self._path("name", "name"), ua.family if ua else "Other"))
        out.append((self._path("device", "device.name"), device.family if device else "Other"))
        if ua is not None:
            for part, value in (("major", ua.major), ("minor", ua.minor), ("patch", ua.patch)):
                if value:
                    out.append((self._path(part, f"version.{part}", meta_ecs=True), value))
            version = build_version(ua.major, ua.minor, ua.patch, ua.patch_minor, text)
            if version:
                out.append((self._path("version", "version"), version))
        if os_ is not None:
            for part, value in (("major", os_.major), ("minor", os_.minor), ("patch", os_.patch)):
                if value:
                    out.append((self._path(f"os_{part}", f"os.version.{part}", meta_ecs=True), value))
            os_version = build_os_version(os_.major, os_.minor, os_.patch, os_.patch_minor)
            if os_version:
                out.append((self._path("os_version", "os.version"), os_version))
            out.append((self._path("os_name", "os.name"), os_.family))
            out.append((self._path("os", None), os_.family))
            full = os_.family + (" " + os_version if os_version else "")
            out.append((self._path("os_full", "os.full"), full))
        else:
            out.append((self._path("os_name", "os.name"), "Other"))
            out.append((self._path("os", None), "Other"))
            out.append((self._path("os_full", "os.full"), "Other"))
        return [(path, value) for path, value in out if path is not None]

    def filter(self, events: list[Event]) -> list[Event]:
        get, remove = self._get, self._remove_source
        for ev in events:
            value = get(ev)
            if isinstance(value, list):
                value = value[0] if value else MISSING
            if value.__class__ is not str or not value:
                continue
            fields = self.analyse(value)
            if remove is not None:
                remove(ev)
            for setter, val in fields:
                setter(ev, val)
            self.matched(ev)
        return events
