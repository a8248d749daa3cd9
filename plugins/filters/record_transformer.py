"""Fluentd's `record_transformer` filter, without Ruby: add or rewrite record fields from
placeholders, remove or keep keys.

```
<filter web.**>
  @type record_transformer
  <record>
    host_tag ${hostname}-${tag_parts[0]}
    summary  ${record["method"]} ${record["path"]}
  </record>
  remove_keys password,$.user.token
</filter>
```

Placeholders: `${record["key"]}` (nested: `${record["a"]["b"]}`), the older `${key}`,
`${tag}`, `${tag_parts[N]}` (negative N counts from the end), `${tag_prefix[N]}`,
`${tag_suffix[N]}`, `${hostname}`, `${time}` (UTC, `2024-01-23 10:00:00 +0000`). Every value
is computed from the record as it was before this filter changed it. A placeholder with nothing
behind it is left as written; with `auto_typecast true` a value that is exactly one placeholder
keeps its type. `remove_keys` runs after the new fields are set and accepts record-accessor
paths (`$.a.b`, `$['a']['b']`); `keep_keys` needs `renew_record true`; `renew_time_key` takes
the event time from a field (epoch seconds or ISO-8601). `enable_ruby true` is refused: logpipe
does not evaluate code from configs.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from logpipe.fields import MISSING, compile_deleter, compile_getter
from logpipe.jsonvalues import json_default
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
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    if value.__class__ is bool:
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=json_default).decode()
    return str(value)


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
    raise ConfigError(f"placeholder ${{{expr}}} is not supported: logpipe's record_transformer has no Ruby "
                      "(enable_ruby); use ${record[\"key\"]}, ${tag}, ${tag_parts[N]}, ${tag_prefix[N]}, "
                      "${tag_suffix[N]}, ${hostname} or ${time}", setting="record")


def compile_template(template: Any, hostname: str, auto_typecast: bool) -> Callable[[Event], Any]:
    """A record value (or key) as a function of the event."""
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
    if len(parts) == 1 and isinstance(parts[0], tuple):
        resolve, raw = parts[0]

        def single(ev: Event) -> Any:
            value = resolve(ev)
            if value is MISSING:
                return raw
            return value if auto_typecast else _text(value)

        return single

    def expand(ev: Event) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part[0](ev)
                out.append(part[1] if value is MISSING else _text(value))
        return "".join(out)

    return expand


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
    doc = "Fluentd record_transformer without Ruby: placeholders, remove_keys, keep_keys, renew_record."
    settings: ClassVar[list[Setting]] = [
        Setting("record", "hash", default={}, doc="the <record> section: key => value with ${...} placeholders"),
        Setting("remove_keys", "any", doc="keys to remove (comma-separated or array; $.a.b for nested)"),
        Setting("keep_keys", "any", doc="keys kept from the old record when renew_record is true"),
        Setting("renew_record", "bool", default=False, doc="start from an empty record"),
        Setting("renew_time_key", "string", doc="field whose value becomes the event time"),
        Setting("enable_ruby", "bool", default=False, doc="must be false: code in configs is not evaluated"),
        Setting("auto_typecast", "bool", default=False, doc="a value that is one placeholder keeps its type"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        if p["enable_ruby"]:
            raise ConfigError("enable_ruby true is not supported: logpipe does not evaluate Ruby; use the "
                              "${record[\"key\"]}, ${tag}, ${tag_parts[N]}, ${hostname}, ${time} placeholders",
                              setting="enable_ruby")
        hostname = socket.gethostname()
        typecast: bool = p["auto_typecast"]
        self._map = [
            (compile_template(str(k), hostname, False), compile_template(v, hostname, typecast))
            for k, v in p["record"].items()
        ]
        self._renew: bool = p["renew_record"]
        self._keep = _key_list(p["keep_keys"], "keep_keys")
        if self._keep and not self._renew:
            raise ConfigError("keep_keys only applies with renew_record true", setting="keep_keys")
        self._remove = [compile_deleter(accessor_path(k)) for k in _key_list(p["remove_keys"], "remove_keys")]
        self._time_key: str | None = p["renew_time_key"]

    def filter(self, events: list[Event]) -> list[Event]:
        mapping, remove, keep, decorate = self._map, self._remove, self._keep, self._decorate
        for ev in events:
            pairs = [(key_of(ev), value_of(ev)) for key_of, value_of in mapping]
            if self._renew:
                old = ev.record
                ev.record = {k: old[k] for k in keep if k in old}
            record = ev.record
            for key, value in pairs:
                record[key] = value
            for delete in remove:
                delete(ev)
            if self._time_key is not None and self._time_key in record:
                ns = _time_from(record[self._time_key])
                if ns is not None:
                    ev.time = ns
            if decorate is not None:
                decorate(ev)
        return events
