"""Fluentd's `parser` filter: parse one field of the record with a `<parse>` section.

```
<filter docker.**>
  @type parser
  key_name log
  reserve_data true
  remove_key_name_field true
  <parse>
    @type json
  </parse>
</filter>
```

As in Fluentd: the parsed values replace the record (`reserve_data true` merges them into it,
`remove_key_name_field` then drops the parsed field); `inject_key_prefix` prefixes the parsed
keys, `hash_value_field` nests them under one key; a parsed time becomes the event time unless
`reserve_time`. A record without the key, or whose value does not parse, is an error event
(`emit_invalid_record_to_error`, default true: it goes to `<label @ERROR>`); with `reserve_data`
the original record also passes on unchanged, without it the event leaves this stream.
"""

from __future__ import annotations

from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter
from logpipe.helpers.error_events import ErrorEvents
from logpipe.helpers.parsers import ParseError, build_parser
from logpipe.plugin import Filter, Setting


def _accessor(key: str) -> tuple[str, ...]:
    """Fluentd record_accessor syntax (`$.a.b`, `$['a']['b']`) or a plain key."""
    import re

    if key.startswith("$."):
        return tuple(key[2:].split("."))
    if key.startswith("$["):
        return tuple(a or b for a, b in re.findall(r"""\[\s*(?:"([^"]*)"|'([^']*)')\s*\]""", key[1:]))
    return (key,)


class ParserFilter(Filter):
    name = "parser"
    doc = "Fluentd filter_parser: parse one field with a <parse> section (json, regexp, apache2, …)."
    settings: ClassVar[list[Setting]] = [
        Setting("key_name", "string", required=True, doc="field to parse ($.a.b for nested)"),
        Setting("parse", "hash", required=True, doc="the <parse> section"),
        Setting("reserve_data", "bool", False, doc="keep the original fields next to the parsed ones"),
        Setting("reserve_time", "bool", False, doc="keep the event time even when the parsed record has one"),
        Setting("remove_key_name_field", "bool", False, doc="with reserve_data: drop the parsed field"),
        Setting("inject_key_prefix", "string", doc="prefix of every parsed key"),
        Setting("hash_value_field", "string", doc="put the parsed values under this key"),
        Setting("emit_invalid_record_to_error", "bool", True,
                doc="records that do not parse (or lack key_name) go to <label @ERROR>"),
        Setting("replace_invalid_sequence", "bool", False, doc="accepted: text is always valid Unicode here"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        section = p["parse"]
        if isinstance(section, list):
            raise ConfigError("only one <parse> section is allowed", setting="parse")
        section = dict(section)
        section.setdefault("estimate_current_event", "false")  # no time in the value: the event keeps its own
        self._parser = build_parser(section)
        self._get = compile_getter(_accessor(p["key_name"]))
        self._errors = ErrorEvents(self.metrics, self.log)

    def filter(self, events: list[Event]) -> list[Event]:
        p = self.params
        reserve, to_error = p["reserve_data"], p["emit_invalid_record_to_error"]
        key_path = _accessor(p["key_name"])
        out: list[Event] = []
        for ev in events:
            value = self._get(ev)
            if value is MISSING or value is None:
                reason = f"{p['key_name']} does not exist"
            else:
                try:
                    new_time, values = self._parser.parse(value if isinstance(value, (str, bytes)) else str(value))
                except ParseError as exc:
                    reason = f"pattern not matched with data '{str(value)[:200]}': {exc}"
                else:
                    out.append(self._apply(ev, new_time, values, key_path))
                    continue
            if to_error:
                out.append(self._errors.send(ev.copy() if reserve else ev, reason))
            if reserve:
                out.append(ev)
        return out

    def _apply(self, ev: Event, new_time: int | None, values: dict[str, Any], key_path: tuple[str, ...]) -> Event:
        p = self.params
        if p["inject_key_prefix"]:
            values = {f"{p['inject_key_prefix']}{k}": v for k, v in values.items()}
        if p["hash_value_field"]:
            values = {p["hash_value_field"]: values}
        if p["reserve_data"]:
            record = dict(ev.record)
            if p["remove_key_name_field"] and len(key_path) == 1:
                record.pop(key_path[0], None)
            record.update(values)
        else:
            record = values
        ev.record = record
        if new_time is not None and not p["reserve_time"]:
            ev.time = new_time
        self.matched(ev)
        return ev
