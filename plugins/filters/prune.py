"""Logstash's `prune` filter: keep or drop top-level fields by name or value regex.

`whitelist_names` keeps only fields whose name matches one of the regexes, `blacklist_names`
drops matching ones (default: names that still hold an unexpanded `%{…}`), and the `_values`
forms do the same on a field's value (`{"field" => "regex"}`; arrays element by element).
`@timestamp` is never pruned (it is the event's time, not a field). With `interpolate`, the
regexes take sprintf. Regexes run under the `regex` module's timeout.
"""

from __future__ import annotations

from typing import Any, ClassVar

import regex as regex_module

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.plugin import Filter, Setting

TIMEOUT = 1.0


class PruneFilter(Filter):
    name = "prune"
    creates_events = False
    doc = "Removes top-level fields by name or value (white- and blacklists of regexes)."
    settings: ClassVar[list[Setting]] = [
        Setting("whitelist_names", "array", default=[], doc="keep only fields whose name matches"),
        Setting("blacklist_names", "array", default=["%\\{[^}]+\\}"], doc="remove fields whose name matches"),
        Setting("whitelist_values", "hash", default={}, doc="field => regex: keep only matching values"),
        Setting("blacklist_values", "hash", default={}, doc="field => regex: remove matching values"),
        Setting("interpolate", "bool", default=False, doc="expand %{field} in the regexes per event"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        for key in ("whitelist_names", "blacklist_names"):
            for pattern in p[key]:
                self._compile(str(pattern), key)
        for key in ("whitelist_values", "blacklist_values"):
            for pattern in p[key].values():
                self._compile(str(pattern), key)
        self._render = {str(t): compile_sprintf(str(t)) for key in ("whitelist_names", "blacklist_names")
                        for t in p[key]}
        self._render.update({str(t): compile_sprintf(str(t)) for key in ("whitelist_values", "blacklist_values")
                             for t in p[key].values()})

    @staticmethod
    def _compile(pattern: str, setting: str) -> Any:
        try:
            return regex_module.compile(pattern)
        except regex_module.error as exc:
            raise ConfigError(f"prune: invalid regex {pattern!r}: {exc}", setting=setting) from None

    def _search(self, pattern: str, text: str, ev: Event) -> bool:
        if self.params["interpolate"]:
            pattern = self._render[pattern](ev)
        try:
            compiled = regex_module.compile(pattern) if self.params["interpolate"] else _cached(pattern)
            return compiled.search(text, timeout=TIMEOUT) is not None
        except (regex_module.error, TimeoutError):
            return False

    def filter(self, events: list[Event]) -> list[Event]:
        p = self.params
        for ev in events:
            record = ev.record
            for name in list(record):
                if self._prunes_name(name, ev):
                    del record[name]
            for name, pattern in p["whitelist_values"].items():
                if name in record:
                    kept = self._values(record[name], str(pattern), ev, keep=True)
                    self._store(record, name, kept)
            for name, pattern in p["blacklist_values"].items():
                if name in record:
                    kept = self._values(record[name], str(pattern), ev, keep=False)
                    self._store(record, name, kept)
            self.matched(ev)
        return events

    def _prunes_name(self, name: str, ev: Event) -> bool:
        whitelist, blacklist = self.params["whitelist_names"], self.params["blacklist_names"]
        if whitelist and not any(self._search(str(r), name, ev) for r in whitelist):
            return True
        return any(self._search(str(r), name, ev) for r in blacklist)

    def _values(self, value: Any, pattern: str, ev: Event, keep: bool) -> Any:
        if isinstance(value, list):
            return [v for v in value if self._search(pattern, str(v), ev) is keep]
        return value if self._search(pattern, str(value), ev) is keep else _REMOVE

    @staticmethod
    def _store(record: dict[str, Any], name: str, value: Any) -> None:
        if value is _REMOVE:
            del record[name]
        else:
            record[name] = value


_REMOVE = object()
_PATTERNS: dict[str, Any] = {}


def _cached(pattern: str) -> Any:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        if len(_PATTERNS) > 4096:
            _PATTERNS.clear()
        compiled = _PATTERNS[pattern] = regex_module.compile(pattern)
    return compiled
