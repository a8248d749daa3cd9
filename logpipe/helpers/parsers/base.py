"""What every Fluentd parser shares: the `<parse>` parameters that turn a raw record into
(event time, record) — `time_key`, `keep_time_key`, `estimate_current_event`, the time
parameters, `types`, `null_value_pattern`, `null_empty_string` — applied in Fluentd's order:
the time field is taken out (kept with `keep_time_key`) and parsed, then null patterns, then
`types`. A format only has to turn text into a dict of raw values (`extract`).

User expressions run on the `regex` module with a per-match timeout (`timeout`, default 1s):
a pathological pattern costs only its line, which is treated as unmatched.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Callable
from typing import Any

import regex

from logpipe.errors import ConfigError
from logpipe.helpers.parsers.timeparse import compile_time_parser
from logpipe.settings import Setting, coerce_value

NS = 1_000_000_000
DEFAULT_TIMEOUT = 1.0
Extract = Callable[[Any], "dict[str, Any] | None"]
Converter = Callable[[Any], Any]

#: Parameters every parser accepts (Fluentd's Parser base class and TimeMixin).
COMMON_KEYS = frozenset({
    "@type", "type", "@id", "@log_level", "time_key", "time_format", "time_type", "time_format_fallbacks",
    "keep_time_key", "types", "null_value_pattern", "null_empty_string", "estimate_current_event",
    "timezone", "utc", "localtime", "timeout", "@args",
})

_BOOL = Setting("parse", "bool")
_DURATION = Setting("parse", "duration")


class ParseError(Exception):
    """A value this parser cannot turn into an event (unmatched, bad time)."""


def flag(conf: dict[str, Any], key: str, default: bool) -> bool:
    value = conf.get(key)
    if value is None:
        return default
    try:
        return bool(coerce_value(_BOOL, value))
    except ConfigError:
        raise ConfigError(f"<parse> {key} expects true or false, got {value!r}", setting="parse") from None


def ruby_regex(text: str, *, ignorecase: bool = False, multiline: bool = False, what: str = "expression"
               ) -> regex.Pattern[str]:
    """A Ruby regexp as written in Fluentd configs (`/body/imx` or a bare body) on the `regex`
    module: named groups `(?<name>…)` as they are, `^`/`$` are line anchors as in Ruby, Ruby's
    `m` flag is dot-matches-newline, `\\h` is a hex digit."""
    body = text.strip()
    flags = regex.MULTILINE | regex.VERSION0
    m = re.fullmatch(r"/(.*)/([imxo]*)", body, re.DOTALL)
    if m:
        body = m.group(1)
        for letter in m.group(2):
            flags |= {"i": regex.IGNORECASE, "m": regex.DOTALL, "x": regex.VERBOSE, "o": 0}[letter]
    if ignorecase:
        flags |= regex.IGNORECASE
    if multiline:
        flags |= regex.DOTALL
    body = body.replace(r"\h", "[0-9a-fA-F]").replace(r"\H", "[^0-9a-fA-F]")
    body = re.sub(r"\(\?([imx]+)\)", lambda g: "(?" + g.group(1).replace("m", "s") + ")", body)
    try:
        return regex.compile(body, flags)
    except (regex.error, ValueError, OverflowError) as exc:
        raise ConfigError(f"<parse> {what}: invalid regular expression {text!r}: {exc}", setting="parse") from None


def _ruby_to_i(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    m = re.match(r"\s*([+-]?\d+)", str(value).replace("_", ""))
    return int(m.group(1)) if m else 0


def _ruby_to_f(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"\s*([+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+))", str(value))
    return float(m.group(1)) if m else 0.0


def _converter(name: str, option: str | None, conf: dict[str, Any]) -> Converter:
    if name == "string":
        return lambda v: v if isinstance(v, str) else str(v)
    if name == "integer":
        return _ruby_to_i
    if name == "float":
        return _ruby_to_f
    if name == "bool":
        return lambda v: str(v).lower() in ("true", "yes", "1")
    if name == "array":
        sep = option or ","
        return lambda v: v if isinstance(v, list) else str(v).split(sep)
    if name == "time":
        parse = compile_time_parser("string" if option else "float", option or None,
                                    localtime=flag(conf, "localtime", True), utc=flag(conf, "utc", False),
                                    timezone_name=conf.get("timezone"))

        def to_time(v: Any) -> Any:
            ns = parse(v)
            return v if ns is None else ns // NS

        return to_time
    hint = " (Fluentd's name is 'integer')" if name == "int" else ""
    raise ConfigError(f"<parse> types: unknown type {name!r}{hint}; known: string, integer, float, bool, time, "
                      "array", setting="parse")


def parse_types(value: Any, conf: dict[str, Any]) -> dict[str, Converter]:
    """`types a:integer,b:bool,t:time:%d/%b/%Y,l:array:|` (or the JSON hash form)."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for entry in str(value).split(","):
            entry = entry.strip()
            if not entry:
                continue
            key, sep, rest = entry.partition(":")
            if not sep:
                raise ConfigError(f"<parse> types: {entry!r} needs FIELD:TYPE", setting="parse")
            items.append((key.strip(), rest))
    out: dict[str, Converter] = {}
    for key, spec in items:
        name, _, option = spec.partition(":")
        out[key] = _converter(name.strip(), option or None, conf)
    return out


class FluentParser:
    """One configured parser. `parse(value)` → (time ns or None, record); raises ParseError
    for a value it cannot turn into an event."""

    def __init__(self, conf: dict[str, Any], extract: Extract, *, time_key: str | None = "time",
                 time_format: str | None = None, time_type: str = "string",
                 types: dict[str, Converter] | None = None, execute_convert: bool = True) -> None:
        self.conf = conf
        self.extract = extract
        self.time_key: str | None = conf.get("time_key", time_key) or None
        self.keep_time_key = flag(conf, "keep_time_key", False)
        self.estimate_current_event = flag(conf, "estimate_current_event", True)
        fmt = conf.get("time_format", time_format)
        kind = str(conf.get("time_type", "string" if "time_format" in conf else time_type))
        fallbacks = conf.get("time_format_fallbacks") or []
        if isinstance(fallbacks, str):
            fallbacks = [f.strip() for f in fallbacks.split(",") if f.strip()]
        self.parse_time = compile_time_parser(
            kind, str(fmt) if fmt is not None else None, localtime=flag(conf, "localtime", True),
            utc=flag(conf, "utc", False), timezone_name=conf.get("timezone"), fallbacks=list(fallbacks))
        self.types = dict(types or {})
        self.types.update(parse_types(conf.get("types"), conf))
        null_pattern = conf.get("null_value_pattern")
        self.null_match = ruby_regex(f"(?:{null_pattern})\\Z", what="null_value_pattern").match \
            if null_pattern not in (None, "") else None
        self.null_empty = flag(conf, "null_empty_string", False)
        self.convert = execute_convert and bool(self.types or self.null_match or self.null_empty)
        timeout = conf.get("timeout")
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(coerce_value(_DURATION, timeout))

    def parse(self, value: Any) -> tuple[int | None, dict[str, Any]]:
        record = self.extract(value)
        if record is None:
            raise ParseError("pattern not matched")
        return self.finish(record)

    def finish(self, record: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        """Time and conversions on a raw record (shared with parsers built of other parsers)."""
        time_ns: int | None = None
        key = self.time_key
        if key is not None and key in record:
            src = record[key] if self.keep_time_key else record.pop(key)
            time_ns = self.parse_time(src)
            if time_ns is None:
                raise ParseError(f"invalid time format: value = {src!r}")
        elif self.estimate_current_event:
            time_ns = _time.time_ns()
        if self.convert:
            self.convert_values(record)
        return time_ns, record

    def convert_values(self, record: dict[str, Any]) -> None:
        null_match, null_empty, types = self.null_match, self.null_empty, self.types
        for key, value in record.items():
            if value is None:
                continue
            if isinstance(value, str) and ((null_empty and value == "") or (null_match and null_match(value))):
                record[key] = None
                continue
            conv = types.get(key)
            if conv is not None:
                record[key] = conv(value)


def check_keys(conf: dict[str, Any], kind: str, own: set[str] | frozenset[str]) -> None:
    """Unknown `<parse>` parameters are config errors, with a suggestion only when close."""
    import difflib

    allowed = COMMON_KEYS | own
    for key in conf:
        if key in allowed or (kind == "multiline" and re.fullmatch(r"format\d+", key)):
            continue
        close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.8)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown <parse> parameter '{key}' for @type {kind}{hint}", setting="parse")


class CompositeParser(FluentParser):
    """A parser made of other parsers (syslog's two formats, multi_format, grok's patterns):
    `parse` is theirs; this one adds nothing."""

    def __init__(self, parse: Callable[[Any], tuple[int | None, dict[str, Any]]]) -> None:
        super().__init__({}, lambda value: None, time_key=None)
        self._parse = parse

    def parse(self, value: Any) -> tuple[int | None, dict[str, Any]]:
        return self._parse(value)
