"""Fluentd's `record_transformer` filter: add or rewrite record fields from placeholders, with
`enable_ruby` for the Ruby real configs write, remove or keep keys.

```
<filter kubernetes.**>
  @type record_transformer
  enable_ruby true
  <record>
    hostname ${hostname}-${record["kubernetes"]["namespace_name"]}
    message  ${record['log'] || record['message']}
    labels   {"app": "${record.dig('kubernetes', 'labels', 'app')}", "tag": "${tag}"}
  </record>
  remove_keys log,$.kubernetes.pod_id
</filter>
```

Placeholders without Ruby: `${record["key"]}` (nested: `${record["a"]["b"]}`), the older `${key}`,
`${tag}`, `${tag_parts[N]}` (negative N counts from the end), `${tag_prefix[N]}`,
`${tag_suffix[N]}`, `${hostname}`, `${time}` (UTC, `2024-01-23 10:00:00 +0000`); one with nothing
behind it becomes empty (nil with `auto_typecast`) and is warned about, as in Fluentd; anything
else needs `enable_ruby true` and is a config error without it. With `enable_ruby true`, each
`${…}` is an expression of logpipe's Ruby subset (logpipe/helpers/ruby_expr.py: record, tag,
time, tag_parts, tag_prefix, tag_suffix, hostname, string/array/hash/Time methods, `||`, `? :`,
`rescue` …); what the subset does not cover is a config error at the value, naming the
expression; an expression that fails for one event (`nil.upcase`) sends that event to `@ERROR`,
as Fluentd's emit_error_event does. Values may be JSON hashes and arrays whose strings and keys
hold placeholders. Every value is computed from the record as it was before this filter changed
it; with `auto_typecast true` a value that is exactly one placeholder keeps its type.
`remove_keys` runs after the new fields and `renew_time_key` (record-accessor paths: `$.a.b`,
`$['a']['b']`); `keep_keys` needs `renew_record true`; `renew_time_key` takes the event time from
a field (epoch seconds, as Fluentd's `to_f`, or — logpipe's addition — ISO-8601 text).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from logpipe.fields import MISSING, compile_deleter, compile_getter
from logpipe.helpers.error_events import ErrorEvents
from logpipe.helpers.ruby_expr import Code, RubyError, RubyRuntimeError, Scope, compile_ruby_template, to_s
from logpipe.plugin import ConfigError, Event, Filter, Setting
from logpipe.timefmt import parse_iso8601

NS = 1_000_000_000
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_RECORD = re.compile(r"""record((?:\[\s*(?:"[^"]*"|'[^']*')\s*\])+)$""")
_SUBSCRIPT = re.compile(r"""\[\s*(?:"([^"]*)"|'([^']*)')\s*\]""")
_TAG_INDEX = re.compile(r"(tag_parts|tag_prefix|tag_suffix)\[\s*(-?\d+)\s*\]$")
_BARE_KEY = re.compile(r"[A-Za-z_@][\w.@-]*$")

Resolver = Callable[[Event], Any]  # returns MISSING when there is nothing to substitute


def _text(value: Any) -> str:
    """What Fluentd writes for a value inside a string: Ruby's `to_s` (`[1, 2]`, `{"a"=>1}`)."""
    return value if value.__class__ is str else to_s(value)


def _tag_resolver(kind: str, index: int) -> Resolver:
    def resolve(ev: Event) -> Any:
        parts = ev.tag.split(".")
        try:
            if kind == "tag_parts":
                return parts[index]
            if not -len(parts) <= index < len(parts):
                return MISSING
            if kind == "tag_prefix":
                return ".".join(parts[: index % len(parts) + 1])
            return ".".join(parts[index:])
        except IndexError:
            return MISSING

    return resolve


def placeholder_resolver(expr: str, hostname: str) -> Resolver:
    """Compile the inside of one `${...}`; ConfigError for anything that would need Ruby."""
    text = expr.strip()
    m = _RECORD.match(text)
    if m:
        path = tuple(a or b for a, b in _SUBSCRIPT.findall(m.group(1)))
        return compile_getter(path)
    if text == "tag":
        return lambda ev: ev.tag
    if text == "hostname":
        return lambda ev: hostname
    if text == "time":
        return lambda ev: datetime.fromtimestamp(ev.time // NS, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
    m = _TAG_INDEX.match(text)
    if m:
        return _tag_resolver(m.group(1), int(m.group(2)))
    if _BARE_KEY.match(text):
        return compile_getter((text,))
    raise ConfigError(f"placeholder ${{{expr}}} needs `enable_ruby true` (without it: ${{record[\"key\"]}}, "
                      "${tag}, ${tag_parts[N]}, ${tag_prefix[N]}, ${tag_suffix[N]}, ${hostname}, ${time})",
                      setting="record")


def compile_template(template: Any, hostname: str, auto_typecast: bool,
                     on_missing: Callable[[str], None] | None = None) -> Callable[[Event], Any]:
    """A record value (or key) as a function of the event; hashes and arrays are walked, their
    keys as text, their strings as templates. A placeholder with nothing behind it gives ""
    (None as a whole typed value) and `on_missing(placeholder)`."""
    if isinstance(template, dict):
        pairs = [(compile_template(str(k), hostname, False, on_missing),
                  compile_template(v, hostname, auto_typecast, on_missing)) for k, v in template.items()]
        return lambda ev: {key(ev): value(ev) for key, value in pairs}
    if isinstance(template, list):
        items = [compile_template(v, hostname, auto_typecast, on_missing) for v in template]
        return lambda ev: [item(ev) for item in items]
    if not isinstance(template, str) or "${" not in template:
        return lambda ev: template
    parts: list[str | tuple[Resolver, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > pos:
            parts.append(template[pos:m.start()])
        parts.append((placeholder_resolver(m.group(1), hostname), m.group(0)))
        pos = m.end()
    if pos < len(template):
        parts.append(template[pos:])
    missing = on_missing or (lambda raw: None)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        resolve, raw = parts[0]

        def single(ev: Event) -> Any:
            value = resolve(ev)
            if value is MISSING:
                missing(raw)
                return None if auto_typecast else ""
            return value if auto_typecast else _text(value)

        return single

    def expand(ev: Event) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part[0](ev)
                if value is MISSING:
                    missing(part[1])
                    continue
                out.append(_text(value))
        return "".join(out)

    return expand


def compile_ruby_value(template: Any, typed: bool, where: str) -> Code:
    """A record value with Ruby placeholders (enable_ruby), hashes and arrays walked."""
    if isinstance(template, dict):
        pairs = [(compile_ruby_value(str(k), False, where), compile_ruby_value(v, typed, where))
                 for k, v in template.items()]
        return lambda scope: {to_s(key(scope)): value(scope) for key, value in pairs}
    if isinstance(template, list):
        items = [compile_ruby_value(v, typed, where) for v in template]
        return lambda scope: [item(scope) for item in items]
    if not isinstance(template, str):
        return lambda scope: template
    try:
        return compile_ruby_template(template, typed)
    except RubyError as exc:
        raise ConfigError(f"enable_ruby: {exc}; logpipe evaluates a Ruby subset (record, tag, time, tag_parts, "
                          "hostname, string/array/hash methods, ||, ? :) and runs no other Ruby",
                          setting=where) from None


def _key_list(value: Any, setting: str) -> list[str]:
    """Fluentd writes key lists as `a,b,c`; the Logstash front-end as arrays."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    keys = [str(k).strip() for k in items if str(k).strip()]
    if not all(keys):
        raise ConfigError(f"{setting}: empty key", setting=setting)
    return keys


def accessor_path(key: str) -> tuple[str, ...]:
    """Fluentd record-accessor syntax (`$.a.b`, `$['a']['b']`) or a plain top-level key."""
    if key.startswith("$."):
        return tuple(key[2:].split("."))
    if key.startswith("$["):
        return tuple(a or b for a, b in _SUBSCRIPT.findall(key[1:]))
    return (key,)


def _time_from(value: Any) -> int | None:
    """renew_time_key: numbers (and numeric text) are epoch seconds, as in Fluentd; else ISO-8601."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value * NS) if isinstance(value, float) else value * NS
    if isinstance(value, str):
        try:
            return int(float(value) * NS)
        except ValueError:
            return parse_iso8601(value)
    return None


class RecordTransformerFilter(Filter):
    name = "record_transformer"
    creates_events = False
    reemits = True  # events an expression fails on go to @ERROR, through its filters
    doc = "Fluentd record_transformer: placeholders, enable_ruby (a Ruby subset), remove_keys, keep_keys, renew_record."
    settings: ClassVar[list[Setting]] = [
        Setting("record", "hash", default={}, doc="the <record> section: key => value with ${...} placeholders"),
        Setting("remove_keys", "any", doc="keys to remove (comma-separated or array; $.a.b for nested)"),
        Setting("keep_keys", "any", doc="keys kept from the old record when renew_record is true"),
        Setting("renew_record", "bool", default=False, doc="start from an empty record"),
        Setting("renew_time_key", "string", doc="field whose value becomes the event time"),
        Setting("enable_ruby", "bool", default=False,
                doc="${...} are Ruby expressions (logpipe's safe subset: record, tag, time, methods, ||, ? :)"),
        Setting("auto_typecast", "bool", default=False, doc="a value that is one placeholder keeps its type"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self._hostname = socket.gethostname()
        typecast: bool = p["auto_typecast"]
        self._ruby: list[tuple[Code, Code]] | None = None
        self._map: list[tuple[Callable[[Event], Any], Callable[[Event], Any]]] = []
        if p["enable_ruby"]:
            self._ruby = [(compile_ruby_value(str(k), False, f"record.{k}"), compile_ruby_value(v, typecast,
                                                                                              f"record.{k}"))
                          for k, v in p["record"].items()]
        else:
            self._map = [(compile_template(str(k), self._hostname, False, self._unknown),
                          compile_template(v, self._hostname, typecast, self._unknown))
                         for k, v in p["record"].items()]
        self._renew: bool = p["renew_record"]
        self._keep = _key_list(p["keep_keys"], "keep_keys")
        if self._keep and not self._renew:
            raise ConfigError("`renew_record` must be true to use `keep_keys`", setting="keep_keys")
        self._remove = [compile_deleter(accessor_path(k)) for k in _key_list(p["remove_keys"], "remove_keys")]
        self._time_key: str | None = p["renew_time_key"]
        self._errors = ErrorEvents(self.metrics, self.log)
        self._warned: set[str] = set()

    def _unknown(self, placeholder: str) -> None:
        """Fluentd warns about every unknown placeholder; here once per placeholder (bounded)."""
        if placeholder not in self._warned and len(self._warned) < 1000:
            self._warned.add(placeholder)
            self.log.warning("%s: unknown placeholder `%s` found", self.id, placeholder)

    def _pairs(self, ev: Event) -> list[tuple[Any, Any]]:
        if self._ruby is None:
            return [(key_of(ev), value_of(ev)) for key_of, value_of in self._map]
        scope = Scope(ev.record, ev.tag, ev.time, self._hostname)
        return [(to_s(key_of(scope)), value_of(scope)) for key_of, value_of in self._ruby]

    def filter(self, events: list[Event]) -> list[Event]:
        remove, keep, decorate = self._remove, self._keep, self._decorate
        failed: list[Event] = []
        for ev in events:
            try:
                pairs = self._pairs(ev)
            except RubyRuntimeError as exc:
                failed.append(self._errors.send(ev, f"failed to expand: {exc}"))
                continue
            if self._renew:
                old = ev.record
                ev.record = {k: old[k] for k in keep if k in old}
            record = ev.record
            for key, value in pairs:
                record[key] = value
            if self._time_key is not None and self._time_key in record:
                ns = _time_from(record[self._time_key])
                if ns is not None:
                    ev.time = ns
            for delete in remove:
                delete(ev)
            if decorate is not None:
                decorate(ev)
        if not failed:
            return events
        failed_ids = {id(ev) for ev in failed}
        if self.reemit(failed):  # to @ERROR, through that label's filters
            return [ev for ev in events if id(ev) not in failed_ids]
        return events
