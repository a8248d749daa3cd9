"""fluent-plugin-record-modifier's `record_modifier` filter: set fields from Ruby placeholders,
remove or whitelist keys, rewrite values with regexps.

```
<filter kubernetes.**>
  @type record_modifier
  prepare_value @cluster = ENV['CLUSTER'] || 'dev'
  <record>
    cluster ${@cluster}
    app     ${record.dig("kubernetes", "labels", "app")}
    line    ${tag_parts[1]}-${record["log"].strip}
  </record>
  remove_keys $.kubernetes.pod_id,stream
  <replace>
    key        log
    expression /password=\\S+/
    replace    password=[hidden]
  </replace>
  char_encoding utf-8
</filter>
```

Every `${…}` in a `<record>` value is an expression of logpipe's Ruby subset (as the plugin
evaluates every one as Ruby; logpipe/helpers/ruby_expr.py): a value that is exactly one
placeholder keeps its type, others are text. `prepare_value` runs once at start
(`require 'socket'; @name = Socket.gethostname`) and its `@variables` are seen by every value.
An expression outside the subset is a config error at its value; one that fails for an event
sends that event to `@ERROR` (Fluentd's filter error route). Then `remove_keys` (record-accessor
paths) or `whitelist_keys` (only these, plus the `<record>` keys; the two are exclusive), then
each `<replace>` (the value is replaced with `gsub` when the expression matches it, within the
regex time budget), then `char_encoding` (`from:to` re-encodes strings, with `?` for what the
target cannot hold; a single name only checks the encoding exists, since logpipe's strings are
already decoded).
"""

from __future__ import annotations

import codecs
import re
import socket
from typing import Any, ClassVar

import regex

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_deleter
from logpipe.helpers.error_events import ErrorEvents
from logpipe.helpers.parsers.base import ruby_regex
from logpipe.helpers.record_accessor import accessor_path
from logpipe.helpers.ruby_expr import Code, RubyError, RubyRuntimeError, Scope, compile_ruby, compile_ruby_template
from logpipe.plugin import Filter, Setting
from logpipe.regex_budget import DEFAULT_TIMEOUT


def _keys(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(k).strip() for k in items if str(k).strip()]


class RecordModifierFilter(Filter):
    name = "record_modifier"
    creates_events = False
    reemits = True  # events an expression fails on go to @ERROR, through its filters
    doc = "fluent-plugin-record-modifier: <record> with Ruby placeholders, remove_keys, whitelist_keys, <replace>."
    settings: ClassVar[list[Setting]] = [
        Setting("record", "hash", default={}, doc="<record>: key value, ${ruby} placeholders in the values"),
        Setting("prepare_value", "string", doc="Ruby statements run once; their @variables are seen by <record>"),
        Setting("remove_keys", "any", doc="keys to remove (comma-separated; $.a.b nested); not with whitelist_keys"),
        Setting("whitelist_keys", "any", doc="keep only these keys (and the <record> keys)"),
        Setting("replace", "any", doc="<replace> key, expression (/regexp/), replace </replace> (one or more)"),
        Setting("char_encoding", "string", doc="'from:to' re-encodes string values; 'enc' checks the name"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self._hostname = socket.gethostname()
        self._ivars: dict[str, Any] = {}
        if p["prepare_value"]:
            try:
                compile_ruby(p["prepare_value"])(Scope({}, "", 0, self._hostname, self._ivars))
            except (RubyError, RubyRuntimeError) as exc:
                raise ConfigError(f"prepare_value: {exc}", setting="prepare_value") from None
        self._map: list[tuple[str, Code]] = []
        for key, value in p["record"].items():
            if not isinstance(value, str):
                self._map.append((str(key), _constant(value)))
                continue
            try:
                self._map.append((str(key), compile_ruby_template(value, typed=True)))
            except RubyError as exc:
                raise ConfigError(f"{exc}; logpipe evaluates a Ruby subset (record, tag, time, tag_parts, "
                                  "string/array/hash methods, ||, ? :) and runs no other Ruby",
                                  setting=f"record.{key}") from None
        remove, whitelist = _keys(p["remove_keys"]), _keys(p["whitelist_keys"])
        if remove and whitelist:
            raise ConfigError("remove_keys and whitelist_keys are exclusive with each other.", setting="whitelist_keys")
        self._remove = [compile_deleter(accessor_path(k)) for k in remove]
        self._whitelist = list(dict.fromkeys(whitelist + [k for k, _ in self._map])) if whitelist else None
        self._replaces = self._compile_replaces(p["replace"])
        self._encoding = self._compile_encoding(p["char_encoding"])
        self._errors = ErrorEvents(self.metrics, self.log)

    @staticmethod
    def _compile_replaces(value: Any) -> list[tuple[str, regex.Pattern[str], str]]:
        sections = [] if value is None else value if isinstance(value, list) else [value]
        out = []
        for i, section in enumerate(sections):
            where = f"replace[{i}]" if len(sections) > 1 else "replace"
            if not isinstance(section, dict) or any(section.get(k) is None for k in ("key", "expression", "replace")):
                raise ConfigError("<replace> needs key, expression and replace", setting=where)
            try:
                pattern = ruby_regex(str(section["expression"]), what="<replace> expression")
            except ConfigError as exc:
                raise ConfigError(exc.message.replace("<parse> ", ""), setting=f"{where}.expression") from None
            out.append((str(section["key"]), pattern, str(section["replace"])))
        return out

    @staticmethod
    def _compile_encoding(value: str | None) -> str | None:
        if not value:
            return None
        names = value.split(":", 1)
        for name in names:
            try:
                codecs.lookup(name)
            except LookupError:
                raise ConfigError(f"char_encoding: unknown encoding {name!r}", setting="char_encoding") from None
        return names[1] if len(names) == 2 else None

    def _encode(self, value: Any, target: str) -> Any:
        if isinstance(value, str):
            return value.encode(target, errors="replace").decode(target, errors="replace").replace("\ufffd", "?")
        if isinstance(value, dict):
            return {k: self._encode(v, target) for k, v in value.items()}
        if isinstance(value, list):
            return [self._encode(v, target) for v in value]
        return value

    def filter(self, events: list[Event]) -> list[Event]:
        failed: list[Event] = []
        hostname, ivars = self._hostname, self._ivars
        for ev in events:
            if self._map:
                scope = Scope(ev.record, ev.tag, ev.time, hostname, ivars)
                try:
                    values = [(key, code(scope)) for key, code in self._map]
                except RubyRuntimeError as exc:
                    failed.append(self._errors.send(ev, f"record_modifier: {exc}"))
                    continue
                ev.record.update(values)
            for delete in self._remove:
                delete(ev)
            if self._whitelist is not None:
                old = ev.record
                ev.record = {k: old[k] for k in self._whitelist if k in old}
            record = ev.record
            for key, pattern, replacement in self._replaces:
                value = record.get(key)
                if isinstance(value, str):
                    try:
                        if pattern.search(value, timeout=DEFAULT_TIMEOUT):
                            record[key] = pattern.sub(_ruby_replacement(replacement), value, timeout=DEFAULT_TIMEOUT)
                    except TimeoutError:
                        self.log.warning("%s: <replace> /%s/ exceeded its time budget", self.id, pattern.pattern)
            if self._encoding is not None:
                ev.record = self._encode(ev.record, self._encoding)
            if self._decorate is not None:
                self._decorate(ev)
        if not failed:
            return events
        failed_ids = {id(ev) for ev in failed}
        if self.reemit(failed):
            return [ev for ev in events if id(ev) not in failed_ids]
        return events


def _constant(value: Any) -> Code:
    return lambda scope: value


def _ruby_replacement(text: str) -> Any:
    """gsub's replacement string: `\\1`, `\\k<name>`, `\\0`/`\\&` as Ruby reads them."""

    def expand(m: Any) -> str:
        def one(g: re.Match[str]) -> str:
            token = g.group(1)
            if token == "\\\\":
                return "\\"
            if token in ("&", "0"):
                return str(m.group(0))
            if token.startswith("k<"):
                return m.group(token[2:-1]) or ""
            n = int(token)
            return (m.group(n) or "") if n <= len(m.groups()) else ""

        return re.sub(r"\\(\d|k<\w+>|&|\\\\)", one, text)

    return expand
