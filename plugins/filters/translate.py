"""Logstash's `translate` filter: replace a value by its entry in a dictionary.

The dictionary is inline (`dictionary`) or a file (`dictionary_path`: .yml/.yaml, .json, .csv
with key,value rows), re-read when it changed every `refresh_interval` seconds (0: never;
`refresh_behaviour` merge keeps old keys, replace drops them). The check runs on the filter's
own path, between batches: no thread, and a file that fails to load keeps the last good dictionary
(logged). Keys are compared as text: YAML's `200:` is the key "200".

Lookup modes, as the Logstash plugin:
- `exact` (default): the whole value is a key; with `regex` the keys are regular expressions
  tried in order and the first that matches anywhere in the value wins;
- `exact => false`: every occurrence of a key inside the value is replaced (keys are text).

`target` defaults to `translation` (legacy) or the source itself (ECS, in place). An existing
target is left alone unless `override`. With no match, `fallback` (sprintf) is written.
`iterate_on` names an array: of values (when it is the source) or of hashes whose `source`
key is translated into their `target` key. Regex keys run under the `regex` module's timeout.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

import regex as regex_module
import yaml

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, compile_setter, compile_sprintf, parse_ref
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.plugin import Filter, Setting

REGEX_TIMEOUT = 1.0
Lookup = Callable[[str], Any]


def load_dictionary(path: str) -> dict[str, Any]:
    """A dictionary file by its extension; keys as text. Raises ValueError on a bad file."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    lower = path.lower()
    if lower.endswith((".yml", ".yaml")):
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"invalid YAML: {exc}") from None
    elif lower.endswith(".json"):
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
    elif lower.endswith(".csv"):
        data = {}
        for row in csv.reader(io.StringIO(text)):
            if len(row) >= 2:
                data[row[0]] = row[1]
            elif row:
                raise ValueError(f"CSV row {row!r} needs two columns (key,value)")
    else:
        raise ValueError("dictionary_path must end in .yml, .yaml, .json or .csv")
    if isinstance(data, list) and all(isinstance(p, tuple) and len(p) == 2 for p in data):
        data = dict(data)  # a YAML !!omap
    if not isinstance(data, dict):
        raise ValueError("the dictionary must be a mapping of keys to values")
    return {_key(k): v for k, v in data.items()}


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


class TranslateFilter(Filter):
    name = "translate"
    creates_events = False
    doc = "Replaces a field's value by its entry in a dictionary (inline or a YAML/JSON/CSV file)."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "string", aliases=("field",), doc="the field to translate"),
        Setting("target", "string", aliases=("destination",),
                doc="where the translation goes (legacy: translation; ECS: the source)"),
        Setting("dictionary", "hash", default={}, doc="inline key => value entries"),
        Setting("dictionary_path", "path", doc="a .yml/.yaml, .json or .csv dictionary file"),
        Setting("refresh_interval", "int", default=300, doc="seconds between checks of the file; 0 never"),
        Setting("refresh_behaviour", "string", default="merge", choices=("merge", "replace"),
                doc="on reload, keep (merge) or drop (replace) keys the file no longer has"),
        Setting("exact", "bool", default=True, doc="the whole value is a key (false: replace keys inside it)"),
        Setting("regex", "bool", default=False, doc="keys are regular expressions (with exact)"),
        Setting("override", "bool", doc="overwrite an existing target (default: only when in place)"),
        Setting("fallback", "string", doc="written when nothing matched (sprintf)"),
        Setting("iterate_on", "string", doc="an array field to translate element by element"),
        Setting("yaml_dictionary_code_point_limit", "int", doc="accepted for Logstash compatibility"),
        Setting("yaml_load_strategy", "string", default="one_shot", choices=("streaming", "one_shot"),
                doc="accepted for Logstash compatibility"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        if p["dictionary_path"] and p["dictionary"]:
            raise ConfigError("translate: 'dictionary' and 'dictionary_path' are mutually exclusive",
                              setting="dictionary_path")
        if not p["source"]:
            raise ConfigError("translate requires setting 'source' (the field to translate)")
        source = p["source"]
        target = p["target"] or (source if ecs_enabled(p) else "translation")
        self.source, self.target = source, target
        override = p["override"]
        if parse_ref(source) == parse_ref(target):
            if override is False:
                raise ConfigError("translate: `override => false` with in-place translation has no effect; "
                                  "remove it", setting="override")
            override = True
        self._override = bool(override)
        self._fallback = compile_sprintf(p["fallback"]) if p["fallback"] is not None else None
        self._path = p["dictionary_path"]
        self._mtime: float | None = None
        self._next_check = 0.0
        self.dictionary: dict[str, Any] = {_key(k): v for k, v in p["dictionary"].items()}
        if self._path:
            try:
                self._reload(initial=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"translate: cannot load {self._path}: {exc}", setting="dictionary_path") from None
        self._lookup = self._build_lookup()
        self._iterate = p["iterate_on"]
        self._get_source, self._get_target = compile_getter(source), compile_getter(target)
        self._set_target = compile_setter(target)
        if self._iterate:
            self._get_iter = compile_getter(self._iterate)
        self._inner_source, self._inner_target = parse_ref(source), parse_ref(target)

    # -- dictionary -----------------------------------------------------------------
    def _reload(self, initial: bool = False) -> None:
        assert self._path is not None
        mtime = os.stat(self._path).st_mtime
        if not initial and mtime == self._mtime:
            return
        fresh = load_dictionary(self._path)
        if self.params["refresh_behaviour"] == "merge" and not initial:
            self.dictionary.update(fresh)
        else:
            self.dictionary = fresh
        self._mtime = mtime
        if not initial:
            self._lookup = self._build_lookup()
            self.log.info("translate: reloaded %s (%d entries)", self._path, len(self.dictionary))

    def _maybe_refresh(self) -> None:
        interval = self.params["refresh_interval"]
        if not self._path or interval <= 0:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + interval
        try:
            self._reload()
        except (OSError, ValueError) as exc:
            self.log.error("translate: keeping the previous dictionary; cannot reload %s: %s", self._path, exc)

    def _build_lookup(self) -> Lookup:
        """value → translation, or MISSING when nothing matched."""
        dictionary = self.dictionary
        if self.params["exact"] and not self.params["regex"]:
            def exact(value: str) -> Any:
                hit = dictionary.get(value, MISSING)
                return hit if hit is MISSING else _clone(hit)
            return exact
        if self.params["exact"]:
            try:
                compiled = [(regex_module.compile(k), v) for k, v in dictionary.items()]
            except regex_module.error as exc:
                raise ConfigError(f"translate: invalid regex key: {exc}", setting="dictionary") from None

            def exact_regex(value: str) -> Any:
                for pattern, translation in compiled:
                    if pattern.search(value, timeout=REGEX_TIMEOUT):
                        return _clone(translation)
                return MISSING
            return exact_regex
        if not dictionary:
            return lambda value: MISSING
        keys = sorted(dictionary, key=len, reverse=True)
        union = regex_module.compile("|".join(regex_module.escape(k) for k in keys))

        def substitute(value: str) -> Any:
            replaced = union.sub(lambda m: _key(dictionary[m.group(0)]), value, timeout=REGEX_TIMEOUT)
            return MISSING if replaced == value else replaced
        return substitute

    # -- events ---------------------------------------------------------------------
    def filter(self, events: list[Event]) -> list[Event]:
        self._maybe_refresh()
        for ev in events:
            try:
                changed = self._update(ev)
            except TimeoutError:
                self.log.warning("translate: a regex key timed out on %s", self.source)
                continue
            if changed:
                self.matched(ev)
        return events

    def _translate(self, value: str, ev: Event) -> Any:
        hit = self._lookup(value)
        if hit is MISSING and self._fallback is not None:
            return self._fallback(ev)
        return hit

    def _update(self, ev: Event) -> bool:
        if self._iterate is None:
            if not self._override and self._get_target(ev) is not MISSING:
                return False
            value = self._get_source(ev)
            if value is MISSING:
                return False
            if isinstance(value, list):
                value = _key(value[0]) if value else ""
            elif not isinstance(value, str):
                value = _key(value) if value is not None else ""
            result = self._translate(value, ev)
            if result is MISSING:
                return self._inner_source == self._inner_target
            self._set_target(ev, result)
            return True
        items = self._get_iter(ev)
        if items is MISSING:
            return False
        if parse_ref(self._iterate) == self._inner_source:
            return self._update_values(ev, items)
        return self._update_maps(ev, items)

    def _update_values(self, ev: Event, items: Any) -> bool:
        if not self._override and self._get_target(ev) is not MISSING:
            return False
        values = items if isinstance(items, list) else [items]
        fallback = self._fallback(ev) if self._fallback is not None else None
        out = []
        for item in values:
            hit = self._lookup(_key(item) if item is not None else "")
            out.append(fallback if hit is MISSING else hit)
        self._set_target(ev, out)
        return any(v is not None for v in out)

    def _update_maps(self, ev: Event, items: Any) -> bool:
        changed = False
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict):
                continue
            inner = _dig(item, self._inner_source)
            if inner is MISSING or inner is None:
                continue
            result = self._translate(_key(inner), ev)
            if result is MISSING:
                continue
            _place(item, self._inner_target, result)
            changed = True
        return changed


def _dig(container: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = container
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def _place(container: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        nxt = container.get(key)
        if not isinstance(nxt, dict):
            nxt = container[key] = {}
        container = nxt
    container[path[-1]] = value
