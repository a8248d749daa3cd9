"""Fluentd's built-in parsers (regexp, apache2, apache, apache_error, nginx, syslog, csv, tsv,
ltsv, json, msgpack, none, multiline) and the two plugin parsers real configs use
(multi_format, grok), as `build_parser(conf)`.

Each reproduces the documented output of its Fluentd counterpart (docs.fluentd.org/parser/…):
field names, which values become integers or nil (apache2), which stay strings (nginx), the
default time format and time key.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from typing import Any

import msgpack
import orjson
import regex

from logpipe.errors import ConfigError
from logpipe.helpers.parsers.base import (
    DEFAULT_TIMEOUT,
    CompositeParser,
    FluentParser,
    ParseError,
    check_keys,
    flag,
    ruby_regex,
)
from logpipe.settings import Setting, coerce_value

_DURATION = Setting("parse", "duration")

APACHE2 = (r'^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>(?:[^\"]|\\.)*?)'
           r'(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>(?:[^\"]|\\.)*)" "(?<agent>(?:[^\"]|\\.)*)")?$')
APACHE = (r'^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" '
          r'(?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")?$')
APACHE_ERROR = (r"^\[[^ ]* (?<time>[^\]]*)\] \[(?<level>[^\]]*)\](?: \[pid (?<pid>[^\]]*)\])?"
                r"( \[client (?<client>[^\]]*)\])? (?<message>.*)$")
NGINX = (r'^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)'
         r'(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)"'
         r'(?:\s+(?<http_x_forwarded_for>[^ ]+))?)?$')
RFC3164 = (r"^(?:\<(?<pri>[0-9]+)\>)?(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[^ :\[]*)"
           r"(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$")
RFC5424 = (r"\A(?:\<(?<pri>[0-9]{1,3})\>[1-9]\d{0,2} )?(?<time>[^ ]+) (?<host>[!-~]{1,255}) (?<ident>[!-~]{1,48}) "
           r"(?<pid>[!-~]{1,128}) (?<msgid>[!-~]{1,32}) (?<extradata>(?:\-|(?:\[.*?(?<!\\)\])+))(?: (?<message>.+))?\z")
_RFC5424_START = re.compile(r"<[0-9]{1,3}>[1-9]\d{0,2} ")
APACHE_TIME = "%d/%b/%Y:%H:%M:%S %z"


def _timeout(conf: dict[str, Any]) -> float:
    value = conf.get("timeout")
    return DEFAULT_TIMEOUT if value is None else float(coerce_value(_DURATION, value))


def regex_extract(pattern: regex.Pattern[str], timeout: float) -> Callable[[Any], dict[str, Any] | None]:
    """Named groups of a match (groups that did not take part are left out, as Fluentd does)."""
    match = pattern.match

    def extract(text: Any) -> dict[str, Any] | None:
        try:
            m = match(text, timeout=timeout)
        except TimeoutError:
            raise ParseError(f"regexp match timed out after {timeout}s") from None
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if v is not None}

    return extract


def _regexp(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "regexp", {"expression", "ignorecase", "multiline", "format"})
    expression = conf.get("expression", conf.get("format"))
    if expression is None:
        raise ConfigError("<parse> @type regexp needs 'expression'", setting="parse")
    pattern = ruby_regex(str(expression), ignorecase=flag(conf, "ignorecase", False),
                         multiline=flag(conf, "multiline", False))
    if not pattern.groupindex:
        raise ConfigError("<parse> expression needs at least one named capture (?<name>...)", setting="parse")
    return FluentParser(conf, regex_extract(pattern, _timeout(conf)))


def _fixed_regexp(expression: str, time_format: str | None, kind: str) -> Callable[[dict[str, Any]], FluentParser]:
    def build(conf: dict[str, Any]) -> FluentParser:
        check_keys(conf, kind, set())
        return FluentParser(conf, regex_extract(ruby_regex(expression), _timeout(conf)), time_format=time_format)

    return build


def _apache2(conf: dict[str, Any]) -> FluentParser:
    """code and size are integers; a `-` host, user, size, referer or agent is nil."""
    check_keys(conf, "apache2", set())
    base = regex_extract(ruby_regex(APACHE2), _timeout(conf))

    def extract(text: Any) -> dict[str, Any] | None:
        r = base(text)
        if r is None:
            return None
        for key in ("host", "user", "referer", "agent"):
            if r.get(key) == "-":
                r[key] = None
        r["code"] = int(r["code"]) if r.get("code", "").isdigit() else None
        size = r.get("size")
        r["size"] = None if size == "-" or size is None else (int(size) if size.isdigit() else None)
        return r

    return FluentParser(conf, extract, time_format=APACHE_TIME)


def _syslog(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "syslog", {"message_format", "with_priority", "rfc5424_time_format", "parser_type",
                                "support_colonless_ident", "parser_engine"})
    fmt = str(conf.get("message_format", "rfc3164"))
    if fmt not in ("rfc3164", "rfc5424", "auto"):
        raise ConfigError(f"<parse> message_format must be rfc3164, rfc5424 or auto, got {fmt!r}", setting="parse")
    timeout = _timeout(conf)
    old = regex_extract(ruby_regex(RFC3164), timeout)
    new = regex_extract(ruby_regex(RFC5424, multiline=True), timeout)
    new_format = conf.get("rfc5424_time_format")
    parse_3164 = FluentParser(conf, _with_int_pri(old), time_format="%b %d %H:%M:%S")
    conf_5424 = dict(conf)
    conf_5424.pop("time_format", None)
    if new_format is not None:
        conf_5424["time_format"] = new_format
    parse_5424 = FluentParser(conf_5424, _with_int_pri(new), time_format="%iso8601")

    def parse(text: Any) -> tuple[int | None, dict[str, Any]]:
        if fmt == "rfc5424" or (fmt == "auto" and isinstance(text, str) and _RFC5424_START.match(text)):
            return parse_5424.parse(text)
        return parse_3164.parse(text)

    return CompositeParser(parse)


def _with_int_pri(extract: Callable[[Any], dict[str, Any] | None]) -> Callable[[Any], dict[str, Any] | None]:
    def with_pri(text: Any) -> dict[str, Any] | None:
        r = extract(text)
        if r is not None and "pri" in r:
            r["pri"] = int(r["pri"])
        return r

    return with_pri


def _values_parser(conf: dict[str, Any], kind: str, split: Callable[[str], list[str]]) -> FluentParser:
    keys_value = conf.get("keys")
    if keys_value is None:
        raise ConfigError(f"<parse> @type {kind} needs 'keys'", setting="parse")
    keys = keys_value if isinstance(keys_value, list) else [k.strip() for k in str(keys_value).split(",")]

    def extract(text: Any) -> dict[str, Any] | None:
        values = split(text)
        return {k: (values[i] if i < len(values) else None) for i, k in enumerate(keys)}

    return FluentParser(conf, extract)


def _csv(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "csv", {"keys", "delimiter", "parser_type", "parser_engine"})
    delimiter = str(conf.get("delimiter", ","))
    if len(delimiter) != 1:
        raise ConfigError("<parse> csv delimiter must be one character", setting="parse")

    def split(text: str) -> list[str]:
        try:
            return next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error as exc:
            raise ParseError(f"invalid CSV: {exc}") from None

    return _values_parser(conf, "csv", split)


def _tsv(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "tsv", {"keys", "delimiter"})
    delimiter = str(conf.get("delimiter", "\t")).replace("\\t", "\t")
    return _values_parser(conf, "tsv", lambda text: text.split(delimiter))


def _ltsv(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "ltsv", {"delimiter", "delimiter_pattern", "label_delimiter"})
    delimiter = str(conf.get("delimiter", "\t")).replace("\\t", "\t")
    label = str(conf.get("label_delimiter", ":"))
    pattern = conf.get("delimiter_pattern")
    split: Callable[[str], list[str]] = (ruby_regex(str(pattern)).split if pattern  # type: ignore[assignment]
                                         else lambda text: text.split(delimiter))

    def extract(text: Any) -> dict[str, Any] | None:
        record: dict[str, Any] = {}
        for pair in split(text):
            if not pair:
                continue
            key, sep, value = pair.partition(label)
            record[key] = value if sep else None
        return record

    return FluentParser(conf, extract)


def _json(conf: dict[str, Any]) -> FluentParser:
    """time_type is float unless a time_format is given (Fluentd's json parser)."""
    check_keys(conf, "json", {"json_parser", "stream_buffer_size"})
    loads = orjson.loads

    def extract(text: Any) -> dict[str, Any] | None:
        try:
            value = loads(text)
        except orjson.JSONDecodeError:
            return None
        return value if type(value) is dict else None

    return FluentParser(conf, extract, time_type="float")


def _msgpack(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "msgpack", set())

    def extract(data: Any) -> dict[str, Any] | None:
        raw = data.encode("latin-1", "replace") if isinstance(data, str) else data
        try:
            value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            return None
        return value if isinstance(value, dict) else None

    return FluentParser(conf, extract, time_type="float")


def _none(conf: dict[str, Any]) -> FluentParser:
    check_keys(conf, "none", {"message_key"})
    key = str(conf.get("message_key", "message"))
    return FluentParser(conf, lambda text: {key: text}, time_key=None)


def _multiline(conf: dict[str, Any]) -> FluentParser:
    """`format_firstline` starts an event (the tail input joins lines on it); `format1..N`
    concatenated parse the joined text, with `.` matching newlines as in Ruby's /m."""
    check_keys(conf, "multiline", {"format_firstline", "multiline_flush_interval", "unmatched_lines"})
    keys = sorted((k for k in conf if re.fullmatch(r"format\d+", k)), key=lambda k: int(k[6:]))
    if not keys:
        raise ConfigError("<parse> @type multiline needs format1 (format1 … format20)", setting="parse")
    bodies = []
    for key in keys:
        text = str(conf[key]).strip()
        m = re.fullmatch(r"/(.*)/[imx]*", text, re.DOTALL)
        bodies.append(m.group(1) if m else text)
    pattern = ruby_regex("".join(bodies), multiline=True, what="format1..N")
    if conf.get("format_firstline") is not None:
        ruby_regex(str(conf["format_firstline"]), what="format_firstline")
    return FluentParser(conf, regex_extract(pattern, _timeout(conf)))


def _multi_format(conf: dict[str, Any]) -> FluentParser:
    """fluent-plugin-multi-format-parser: `<pattern> format … </pattern>` tried in order."""
    check_keys(conf, "multi_format", {"pattern"})
    patterns = conf.get("pattern")
    if isinstance(patterns, dict):
        patterns = [patterns]
    if not patterns:
        raise ConfigError("<parse> @type multi_format needs <pattern> sections", setting="parse")
    parsers: list[FluentParser] = []
    for section in patterns:
        sub = {k: v for k, v in section.items() if k != "format"}
        fmt = str(section.get("format", "none")).strip()
        if fmt.startswith("/"):
            sub["@type"], sub["expression"] = "regexp", fmt
        else:
            sub["@type"] = fmt
        parsers.append(build_parser(sub))

    def parse(value: Any) -> tuple[int | None, dict[str, Any]]:
        for p in parsers:
            try:
                return p.parse(value)
            except ParseError:
                continue
        raise ParseError("no pattern of multi_format matched")

    return CompositeParser(parse)


_GROK_TYPE = re.compile(r"%\{(\w+):([\w.@\[\]-]+):(\w+)\}")


def _grok(conf: dict[str, Any]) -> FluentParser:
    """fluent-plugin-grok-parser: `grok_pattern`, `<grok> pattern name … </grok>`, `custom_pattern_path`,
    `grok_failure_key`, `grok_name_key`; `%{NUMBER:n:integer}` types as in the plugin."""
    check_keys(conf, "grok", {"grok_pattern", "grok", "custom_pattern_path", "grok_failure_key", "grok_name_key",
                              "multiline_start_regexp", "keep_empty_value", "grok_pattern_series",
                              "multi_line_start_regexp"})
    from logpipe.grok.engine import Grok
    from logpipe.grok.errors import GrokError

    sections = conf.get("grok")
    if isinstance(sections, dict):
        sections = [sections]
    entries: list[dict[str, Any]] = list(sections or [])
    if conf.get("grok_pattern"):
        entries.insert(0, {"pattern": conf["grok_pattern"]})
    if not entries:
        raise ConfigError("<parse> @type grok needs 'grok_pattern' or <grok> sections", setting="parse")
    custom = conf.get("custom_pattern_path")
    failure_key = conf.get("grok_failure_key")
    name_key = conf.get("grok_name_key")
    compiled: list[tuple[Any, FluentParser, str | None]] = []
    for entry in entries:
        if "pattern" not in entry:
            raise ConfigError("<grok> needs 'pattern'", setting="parse")
        types: dict[str, str] = {}

        def strip_type(m: re.Match[str], types: dict[str, str] = types) -> str:
            kind = {"integer": "int", "int": "int", "float": "float"}.get(m.group(3))
            if kind is not None:
                return f"%{{{m.group(1)}:{m.group(2)}:{kind}}}"
            types[m.group(2)] = m.group(3)
            return f"%{{{m.group(1)}:{m.group(2)}}}"

        expression = _GROK_TYPE.sub(strip_type, str(entry["pattern"]))
        try:
            grok = Grok(expression, patterns_dir=[str(custom)] if custom else None,
                        keep_empty_captures=flag(conf, "keep_empty_value", False))
        except GrokError as exc:
            raise ConfigError(f"<parse> grok pattern: {exc}", setting="parse") from None
        sub = {k: v for k, v in conf.items() if k in ("time_key", "time_format", "time_type", "keep_time_key",
                                                     "timezone", "utc", "localtime", "estimate_current_event",
                                                     "null_value_pattern", "null_empty_string")}
        sub.update({k: v for k, v in entry.items() if k not in ("pattern", "name")})
        sub["types"] = ",".join([f"{k}:{v}" for k, v in types.items()] + ([str(conf["types"])] if conf.get("types")
                                                                          else []))
        compiled.append((grok.match, FluentParser(sub, lambda v: None), entry.get("name")))

    def parse(value: Any) -> tuple[int | None, dict[str, Any]]:
        for match, finisher, name in compiled:
            caps = match(value)
            if caps is not None:
                record = dict(caps)
                if name_key and name is not None:
                    record[str(name_key)] = name
                return finisher.finish(record)
        if failure_key:
            import time

            return time.time_ns(), {"message": value, str(failure_key): "No grok pattern matched"}
        raise ParseError("no grok pattern matched")

    return CompositeParser(parse)


BUILDERS: dict[str, Callable[[dict[str, Any]], FluentParser]] = {
    "regexp": _regexp,
    "apache2": _apache2,
    "apache": _fixed_regexp(APACHE, APACHE_TIME, "apache"),
    "apache_error": _fixed_regexp(APACHE_ERROR, None, "apache_error"),
    "nginx": _fixed_regexp(NGINX, APACHE_TIME, "nginx"),
    "syslog": _syslog,
    "csv": _csv,
    "tsv": _tsv,
    "ltsv": _ltsv,
    "json": _json,
    "msgpack": _msgpack,
    "none": _none,
    "multiline": _multiline,
    "multi_format": _multi_format,
    "grok": _grok,
}

def build_parser(conf: dict[str, Any]) -> FluentParser:
    """A Fluentd `<parse>` section (a dict with `@type`) as a FluentParser; ConfigError(setting="parse")."""
    import difflib

    kind = str(conf.get("@type", conf.get("type", ""))).strip()
    if not kind:
        raise ConfigError("<parse> needs '@type' (regexp, json, none, apache2, nginx, syslog, csv, tsv, ltsv, "
                          "multiline, multi_format, grok …)", setting="parse")
    builder = BUILDERS.get(kind)
    if builder is None:
        close = difflib.get_close_matches(kind, list(BUILDERS), n=1, cutoff=0.75)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"unknown parser type '{kind}'; {hint}known: {', '.join(sorted(BUILDERS))}",
                          setting="parse")
    return builder(conf)
