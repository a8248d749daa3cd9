"""Logstash's `kv` filter: `key=value` pairs out of a text field.

`field_split` and `value_split` are sets of characters (Logstash's meaning: `field_split =>
"&?"` splits on either); `field_split_pattern` / `value_split_pattern` take regexes instead.
Values may be quoted (`"..."`, `'...'`) or, with `include_brackets` (the default), bracketed
(`(...)`, `[...]`, `<...>`); quotes and brackets are removed. Keys are trimmed
(`trim_key`, `remove_char_key`, `transform_key`) before `include_keys` / `exclude_keys` are
checked and `prefix` is added; a repeated key collects its values in an array (set
`allow_duplicate_values => false` to drop repeated identical values). Pairs go to the top level
or into `target`. The whole pattern is one compiled regex scanned once per event, under a
`timeout_millis` budget (a pathological split pattern tags `_kv_filter_timeout`).

Checked against Logstash's spec (tests/plugins/filters/test_kv_spec.py): empty quoted or
bracketed values make no field unless `allow_empty_values`; a value that starts quoted but
goes on unquoted is read whole, quotes kept; `include_keys`/`exclude_keys` take sprintf.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import (
    METADATA,
    MISSING,
    TIMESTAMP,
    add_tag,
    compile_getter,
    compile_setter,
    compile_sprintf,
    has_sprintf,
    set_field,
)
from logpipe.grok import watchdog
from logpipe.grok.errors import GrokTimeout
from logpipe.plugin import Filter, Setting

_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "lowercase": str.lower, "uppercase": str.upper, "capitalize": str.capitalize,
}


def _char_class(chars: str) -> str:
    return "[" + "".join("\\" + c if c in "\\]^-[" else c for c in chars) + "]"


def build_scanner(field_split: str, value_split: str, field_split_pattern: str | None,
                  value_split_pattern: str | None, include_brackets: bool, lenient: bool,
                  allow_empty_values: bool = False) -> re.Pattern[str]:
    """One regex finding every pair: key, separator (with optional spaces), value.

    A quoted or bracketed value counts only when a field separator (or the end) follows its
    closing quote; otherwise the value is read unquoted, quotes and all — Logstash's rule for
    `baz="quoted" and more` with a separator that is not a space."""
    for name, value in (("field_split_pattern", field_split_pattern), ("value_split_pattern", value_split_pattern)):
        if value is not None and value == "":
            raise ConfigError(f"{name} must not be empty", setting=name)
    if not (field_split or field_split_pattern) or not (value_split or value_split_pattern):
        raise ConfigError("field_split and value_split must not be empty",
                          setting="field_split" if not (field_split or field_split_pattern) else "value_split")
    fs = field_split_pattern or _char_class(field_split)
    vs = value_split_pattern or _char_class(value_split)
    if field_split_pattern is None and value_split_pattern is None:
        key = rf"(?:\\ |[^{_char_class(field_split + value_split)[1:-1]}])+"
        unquoted = rf"(?:\\ |[^{_char_class(field_split)[1:-1]}])+"
    else:
        key = rf"(?:(?!{fs})(?!{vs}).)+"
        unquoted = rf"(?:(?!{fs}).)+"
    ws = r"[ \t]*" if lenient else ""
    ends = f"(?={fs}|$)"
    values = [rf'"(?P<v0>[^"]*)"{ends}', rf"'(?P<v1>[^']*)'{ends}"]
    if include_brackets:
        values += [rf"\((?P<v2>[^)]*)\){ends}", rf"\[(?P<v3>[^\]]*)\]{ends}", rf"<(?P<v4>[^>]*)>{ends}"]
    values.append(f"(?P<v5>{unquoted})")
    if allow_empty_values:
        values.append(f"(?P<v6>){ends}")
    # A key starts the text or follows a field separator, never the middle of one.
    try:
        return re.compile(f"(?:^|{fs})(?P<key>{key}){ws}(?:{vs}){ws}(?:{'|'.join(values)})")
    except re.error as exc:
        setting = "field_split_pattern" if field_split_pattern else "value_split_pattern"
        raise ConfigError(f"invalid split pattern: {exc}", setting=setting) from exc


_VALUE_GROUPS = frozenset({"v0", "v1", "v2", "v3", "v4", "v5", "v6"})


class KvFilter(Filter):
    name = "kv"
    creates_events = False
    doc = "Extracts key=value pairs from a text field."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "string", default="message", doc="field holding the text"),
        Setting("target", "string", doc="put the pairs under this field instead of the top level"),
        Setting("field_split", "string", default=" ", doc="characters separating pairs"),
        Setting("value_split", "string", default="=", doc="characters separating key from value"),
        Setting("field_split_pattern", "string", doc="regex separating pairs (overrides field_split)"),
        Setting("value_split_pattern", "string", doc="regex separating key from value (overrides value_split)"),
        Setting("include_keys", "array", default=[], doc="only these keys"),
        Setting("exclude_keys", "array", default=[], doc="never these keys"),
        Setting("prefix", "string", default="", doc="prepended to every key"),
        Setting("trim_key", "string", default="", doc="characters trimmed from both ends of keys"),
        Setting("trim_value", "string", default="", doc="characters trimmed from both ends of values"),
        Setting("remove_char_key", "string", default="", doc="characters removed from keys"),
        Setting("remove_char_value", "string", default="", doc="characters removed from values"),
        Setting("transform_key", "string", choices=(None, "lowercase", "uppercase", "capitalize"),
                doc="lowercase | uppercase | capitalize"),
        Setting("transform_value", "string", choices=(None, "lowercase", "uppercase", "capitalize"),
                doc="lowercase | uppercase | capitalize"),
        Setting("include_brackets", "bool", default=True, doc="treat (), [] and <> as value quotes"),
        Setting("allow_duplicate_values", "bool", default=True, doc="keep repeated identical values"),
        Setting("default_keys", "hash", default={}, doc="pairs added when absent"),
        Setting("recursive", "bool", default=False, doc="parse values that contain pairs themselves"),
        Setting("whitespace", "string", default="lenient", choices=("lenient", "strict"),
                doc="lenient allows spaces around the value separator"),
        Setting("allow_empty_values", "bool", default=False,
                doc="keep keys whose value is empty (`a=`, `a=\"\"`) as empty strings"),
        Setting("timeout_millis", "int", default=2000, min=0,
                doc="budget per event for the pair scan (a pathological split pattern); 0 disables"),
        Setting("tag_on_timeout", "string", default="_kv_filter_timeout", doc="tag added when the scan timed out"),
        Setting("tag_on_failure", "array", default=["_kv_filter_error"], doc="tags added when the source is unusable"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self.failures = 0
        self._scan = build_scanner(p["field_split"], p["value_split"], p["field_split_pattern"],
                                   p["value_split_pattern"], p["include_brackets"], p["whitespace"] == "lenient",
                                   p["allow_empty_values"])
        self._allow_empty: bool = p["allow_empty_values"]
        self._timeout = p["timeout_millis"] / 1000.0 if p["timeout_millis"] else None
        self._timeout_tag: str = p["tag_on_timeout"]
        # include/exclude may name keys with sprintf (`%{key}`): rendered per event then.
        self._dynamic_keys = any(has_sprintf(str(k)) for k in [*p["include_keys"], *p["exclude_keys"]])
        self._include_fns = [compile_sprintf(str(k)) for k in p["include_keys"]]
        self._exclude_fns = [compile_sprintf(str(k)) for k in p["exclude_keys"]]
        self._value_groups = tuple(g for g in self._scan.groupindex if g in _VALUE_GROUPS)
        self._get = compile_getter(p["source"])
        self._target = p["target"]
        self._target_get = compile_getter(self._target) if self._target else None
        self._target_put = compile_setter(self._target) if self._target else None
        self._include = frozenset(str(k) for k in p["include_keys"])
        self._exclude = frozenset(str(k) for k in p["exclude_keys"])
        self._key_fix = self._cleaner(p["trim_key"], p["remove_char_key"], p["transform_key"])
        self._value_fix = self._cleaner(p["trim_value"], p["remove_char_value"], p["transform_value"])
        self._prefix: str = p["prefix"]
        self._dupes: bool = p["allow_duplicate_values"]
        self._defaults = {str(k): v for k, v in p["default_keys"].items()}
        self._recursive: bool = p["recursive"]
        self._failure_tags = [str(t) for t in p["tag_on_failure"]]

    @staticmethod
    def _cleaner(trim: str, remove: str, transform: str | None) -> Callable[[str], str] | None:
        steps: list[Callable[[str], str]] = []
        if trim:
            steps.append(lambda s: s.strip(trim))
        if remove:
            table = str.maketrans("", "", remove)
            steps.append(lambda s: s.translate(table))
        if transform:
            steps.append(_TRANSFORMS[transform])
        if not steps:
            return None
        if len(steps) == 1:
            return steps[0]

        def clean(s: str) -> str:
            for step in steps:
                s = step(s)
            return s

        return clean

    def parse(self, text: str, include: frozenset[str] | None = None,
              exclude: frozenset[str] | None = None) -> dict[str, Any]:
        """The pairs of one text, after trimming, filtering and prefixing."""
        pairs: dict[str, Any] = {}
        key_fix, value_fix = self._key_fix, self._value_fix
        prefix = self._prefix
        include = self._include if include is None else include
        exclude = self._exclude if exclude is None else exclude
        value_groups = self._value_groups
        for m in self._scan.finditer(text):
            key = m.group("key")
            value = next(v for v in m.group(*value_groups) if v is not None)
            if key_fix is not None:
                key = key_fix(key)
            if not key or (include and key not in include) or key in exclude:
                continue
            if value_fix is not None:
                value = value_fix(value)
            if not value and not self._allow_empty:
                continue  # Logstash: an empty quoted or bracketed value makes no field
            parsed: Any = value
            if self._recursive:
                inner = self.parse(value, include, exclude)
                if inner:
                    parsed = inner
            key = prefix + key
            if key not in pairs:
                pairs[key] = parsed
                continue
            current = pairs[key]
            if current.__class__ is not list:
                current = pairs[key] = [current]
            if self._dupes or parsed not in current:
                current.append(parsed)
        return pairs

    def filter(self, events: list[Event]) -> list[Event]:
        if self._timeout is not None and watchdog.signals_usable():
            with watchdog.batch_guard(self._timeout) as cell:
                for ev in events:
                    cell[0] += 1
                    try:
                        self._one(ev)
                    except GrokTimeout:
                        add_tag(ev, self._timeout_tag)
                        self.log.warning("kv gave up on an event after %s ms (timeout_millis)",
                                         self.params["timeout_millis"])
        else:
            for ev in events:
                self._one(ev)
        return events

    def _keys_for(self, ev: Event) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        if not self._dynamic_keys:
            return None, None
        return (frozenset(fn(ev) for fn in self._include_fns), frozenset(fn(ev) for fn in self._exclude_fns))

    def _one(self, ev: Event) -> None:
        """Parse one event's source; pairs are stored only once the whole scan is done, so a
        scan cut off by the timeout leaves the event as it was."""
        source = self._get(ev)
        if source is MISSING or source is None:
            return
        include, exclude = self._keys_for(ev)
        if source.__class__ is str:
            pairs = self.parse(source, include, exclude)
        elif isinstance(source, list):
            pairs = {}
            for item in source:
                pairs.update(self.parse(item if isinstance(item, str) else str(item), include, exclude))
        elif isinstance(source, dict):
            self.failures += 1  # Logstash: a hash cannot be parsed for pairs
            for tag in self._failure_tags:
                add_tag(ev, tag)
            return
        else:
            pairs = self.parse(str(source), include, exclude)
        for key, value in self._defaults.items():
            pairs.setdefault(key, value)
        if not pairs:
            return
        self._store(ev, pairs)
        if self._decorate is not None:
            self._decorate(ev)

    def _store(self, ev: Event, pairs: dict[str, Any]) -> None:
        if self._target_get is not None and self._target_put is not None:
            current = self._target_get(ev)
            if isinstance(current, dict):
                current.update(pairs)
            else:
                self._target_put(ev, pairs)
            return
        record = ev.record
        for key, value in pairs.items():
            if key in (TIMESTAMP, METADATA):
                set_field(ev, key, value)
            else:
                record[key] = value
