"""Fluentd's `<format>` section: how an output turns (tag, time, record) into bytes.

    formatter = build_formatter({"@type": "ltsv", "delimiter": ","}, default_type="json")
    line = formatter.format("web.access", time_ns, {"k": "v"})      # b"k:v\\n"

Types and their parameters (Fluentd 1.14's formatter plugins, byte for byte; vectors in
tests/helpers/test_formatter.py come from Fluentd's test/plugin/test_formatter_*.rb):

- `json` (`add_newline`, `json_parser`), `hash` (Ruby's `{"k"=>"v"}`, `add_newline`),
  `msgpack` (the record, binary), `single_value` (`message_key`, `add_newline`),
  `ltsv` (`delimiter` TAB, `label_delimiter` `:`, `replacement`, `add_newline`),
  `tsv` (`keys`, `delimiter`, `add_newline`), `csv` (`fields` with `$.a.b` paths,
  `delimiter` (`\\t`/`TAB` is a tab), `force_quotes` true, `add_newline`),
- `out_file`: `time<TAB>tag<TAB>json` (`output_time`, `output_tag`, `delimiter`
  SPACE/COMMA — anything else is a tab, as in Fluentd —, `time_type`, `time_format`,
  `localtime`/`utc`/`timezone`; no time_format is ISO 8601, `Z` in UTC),
- `stdout`: `2015-05-17 10:05:03.000000000 +0000 tag: ` then the `output_type`
  formatter's line (json by default), local time as Fluentd prints it.

Every type takes `newline` (lf, crlf) where Fluentd's does and the time parameters of
Fluentd's TimeMixin. The parameters are declared once here (`Setting`s, so types and
choices are checked); an unknown one is a ConfigError at its line (`format.<name>`).

The record a formatter sees is the one `<inject>` already filled in: outputs inject first,
then format, as Fluentd's `format(tag, time, record)` does.
"""

from __future__ import annotations

import difflib
import re
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import msgpack
import orjson

from logpipe.base import Helper, Plugin
from logpipe.errors import ConfigError
from logpipe.helpers.inject import compile_strftime
from logpipe.helpers.ruby_text import ruby_inspect, ruby_to_s
from logpipe.jsonvalues import json_default, msgpack_default
from logpipe.settings import Setting, coerce_value
from logpipe.timefmt import resolve_zone

NS = 1_000_000_000
TimeRender = Callable[[int], str]

#: Fluentd's TimeMixin::Formatter parameters, which every formatter accepts.
TIME_SETTINGS = (
    Setting("time_type", "string", default="string", choices=("string", "unixtime", "float", "mixed"),
            doc="how the time is written: string (time_format), unixtime, float"),
    Setting("time_format", "string", doc="Ruby strftime (%N, %L, %3N, %:z allowed); none: ISO 8601"),
    Setting("localtime", "bool", default=True, doc="time in the local zone (default)"),
    Setting("utc", "bool", default=False, doc="time in UTC"),
    Setting("timezone", "string", doc="time in this zone (+09:00, Asia/Tokyo)"),
    Setting("time_format_fallbacks", "array", default=[], doc="accepted as Fluentd does (parsers use it)"),
)
NEWLINE = Setting("newline", "string", default="lf", choices=("lf", "crlf"), doc="line end")
ADD_NEWLINE = Setting("add_newline", "bool", default=True, doc="end each line with `newline`")
_IGNORED = frozenset({"@type", "type", "@id", "@log_level", "@args"})


class Formatter:
    """One `<format>` type: its declared settings and `format(tag, time_ns, record) -> bytes`."""

    type_name: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: Takes Fluentd's Newline mixin (`newline lf|crlf`).
    has_newline: ClassVar[bool] = True
    #: Items are binary (msgpack); text formatters end in a newline.
    binary: ClassVar[bool] = False

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.newline = "\r\n" if conf.get("newline") == "crlf" else "\n"

    @classmethod
    def declared(cls) -> tuple[Setting, ...]:
        own = cls.settings + TIME_SETTINGS
        return own + (NEWLINE,) if cls.has_newline else own

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def format_all(self, tag_times_records: list[tuple[str, int, dict[str, Any]]]) -> list[bytes]:
        fmt = self.format
        return [fmt(tag, t, record) for tag, t, record in tag_times_records]

    def end(self) -> str:
        return self.newline if self.conf.get("add_newline", True) else ""


class JsonFormatter(Formatter):
    type_name = "json"
    settings = (ADD_NEWLINE, Setting("json_parser", "string", default="oj", doc="accepted (oj, yajl, json)"))

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        return orjson.dumps(record, default=json_default) + self.end().encode()


class HashFormatter(Formatter):
    type_name = "hash"
    settings = (ADD_NEWLINE,)

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        return (ruby_inspect(record) + self.end()).encode()


class MsgpackFormatter(Formatter):
    type_name = "msgpack"
    has_newline = False
    binary = True

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        return msgpack.packb(record, default=msgpack_default, use_bin_type=True)


class SingleValueFormatter(Formatter):
    type_name = "single_value"
    settings = (Setting("message_key", "string", default="message", doc="the field written"), ADD_NEWLINE)

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        return (ruby_to_s(record.get(self.conf["message_key"])) + self.end()).encode()


class LtsvFormatter(Formatter):
    type_name = "ltsv"
    settings = (
        Setting("delimiter", "string", default="\t", doc="between label:value pairs"),
        Setting("label_delimiter", "string", default=":", doc="between a label and its value"),
        Setting("replacement", "string", default=" ", doc="what a delimiter inside a value becomes"),
        ADD_NEWLINE,
    )

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        c = self.conf
        delimiter, label_delimiter, replacement = c["delimiter"], c["label_delimiter"], c["replacement"]
        pairs = [f"{label}{label_delimiter}{ruby_to_s(value).replace(delimiter, replacement)}"
                 for label, value in record.items()]
        return (delimiter.join(pairs) + self.end()).encode()


class TsvFormatter(Formatter):
    type_name = "tsv"
    settings = (
        Setting("keys", "array", required=True, doc="fields written, in order"),
        Setting("delimiter", "string", default="\t", doc="between values"),
        ADD_NEWLINE,
    )

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        text = self.conf["delimiter"].join(ruby_to_s(record.get(k)) for k in self.conf["keys"])
        return (text + self.end()).encode()


def _accessor(field: str) -> Callable[[dict[str, Any]], Any]:
    """Fluentd's record_accessor: `$.a.b` or `$['a']['b']` reach into nested hashes."""
    if not field.startswith("$"):
        return lambda record: record.get(field)
    if field.startswith("$["):
        path = [m.group(1) or m.group(2) for m in re.finditer(r"\['([^']*)'\]|\[\"([^\"]*)\"\]", field)]
    else:
        path = field[2:].split(".")

    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


class CsvFormatter(Formatter):
    type_name = "csv"
    has_newline = False
    settings = (
        Setting("fields", "array", required=True, doc="fields written, in order ($.a.b reaches into hashes)"),
        Setting("delimiter", "string", default=",", doc="between values (\\t or TAB: a tab)"),
        Setting("force_quotes", "bool", default=True, doc="quote every value"),
        ADD_NEWLINE,
    )

    def __init__(self, conf: dict[str, Any]) -> None:
        super().__init__(conf)
        fields = [f for f in conf["fields"] if f != ""]
        if not fields:
            raise ConfigError("empty value is specified in fields parameter", setting="format.fields")
        self.fields = fields
        self._get = [_accessor(f) for f in fields]
        delimiter = conf["delimiter"]
        self.delimiter = "\t" if delimiter in ("\\t", "TAB") else delimiter
        self._quotable = re.compile("[\r\n" + re.escape(self.delimiter) + '"]')

    def _field(self, value: Any) -> str:
        """Ruby CSV: nil is an empty unquoted field; an empty string or one holding the
        delimiter, a quote or a line break is quoted (all of them with force_quotes)."""
        if value is None and not self.conf["force_quotes"]:
            return ""
        text = ruby_to_s(value)
        if self.conf["force_quotes"] or text == "" or self._quotable.search(text):
            return '"' + text.replace('"', '""') + '"'
        return text

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        line = self.delimiter.join(self._field(get(record)) for get in self._get)
        return (line + ("\n" if self.conf["add_newline"] else "")).encode()


def time_renderer(conf: dict[str, Any], written: set[str]) -> TimeRender:
    """Fluentd's time_formatter_create: numeric types, or strftime / ISO 8601 in UTC, the
    local zone or `timezone`."""
    time_type = conf.get("time_type", "string")
    if time_type == "unixtime":
        return lambda ns: str(ns // NS)
    if time_type == "float":
        return _fluentd_float
    localtime = conf["localtime"]
    if "utc" in written and "localtime" not in written:
        localtime = not conf["utc"]
    fmt = conf.get("time_format")
    if conf.get("timezone"):
        try:
            zone: Any = resolve_zone(str(conf["timezone"])) or timezone(timedelta(0))
        except ConfigError as exc:
            raise ConfigError(exc.message, setting="format.timezone") from None
        return _iso(zone) if fmt is None else compile_strftime(fmt, zone)
    if localtime:
        return _iso(None) if fmt is None else compile_strftime(fmt, None)
    return _iso_utc if fmt is None else compile_strftime(fmt, UTC)


def _fluentd_float(ns: int) -> str:
    """Fluentd 1.14's NumericTimeFormatter#format_float, including its slip: a nanosecond
    part of fewer than 9 digits is written as that many zeros (5 ms → `.00`), not padded."""
    secs, frac = divmod(ns, NS)
    digits = str(frac)
    if len(digits) < 9:
        digits = "0" * (9 - len(digits))
    return f"{secs}.{digits}"


def _iso_utc(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(zone: Any) -> TimeRender:
    """Ruby Time#iso8601 of a local (zone None) or zoned time: `+09:00` style offset."""
    def render(ns: int) -> str:
        secs = ns // NS
        moment = datetime.fromtimestamp(secs, zone) if zone is not None else datetime.fromtimestamp(secs).astimezone()
        text = moment.strftime("%Y-%m-%dT%H:%M:%S%z")
        return text[:-2] + ":" + text[-2:]

    return render


class OutFileFormatter(Formatter):
    type_name = "out_file"
    settings = (
        Setting("output_time", "bool", default=True, doc="write the time first"),
        Setting("output_tag", "bool", default=True, doc="write the tag"),
        Setting("delimiter", "string", default="\t", doc="SPACE, COMMA, or TAB (anything else is a tab)"),
    )

    def __init__(self, conf: dict[str, Any], written: set[str] | None = None) -> None:
        super().__init__(conf)
        text = str(conf["delimiter"])
        self.delimiter = " " if re.search("SPACE", text, re.I) else "," if re.search("COMMA", text, re.I) else "\t"
        self.time = time_renderer(conf, written or set())

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        d = self.delimiter
        head = ""
        if self.conf["output_time"]:
            head += self.time(time_ns) + d
        if self.conf["output_tag"]:
            head += tag + d
        return head.encode() + orjson.dumps(record, default=json_default) + self.newline.encode()


class StdoutFormatter(Formatter):
    """`time tag: <output_type line>`; the time is always local (Fluentd's `Time.at(t).localtime`)."""

    type_name = "stdout"
    has_newline = False
    settings = (Setting("output_type", "string", default="json", doc="formatter of the record part"),)

    def __init__(self, conf: dict[str, Any], sub: Formatter) -> None:
        super().__init__(conf)
        self.sub = sub
        self.time = compile_strftime(conf.get("time_format") or "%Y-%m-%d %H:%M:%S.%N %z", None)

    def format(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        body = self.sub.format(tag, time_ns, record)
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n") or body.endswith(b"\r"):
            body = body[:-1]
        return f"{self.time(time_ns)} {tag}: ".encode() + body + b"\n"


FORMATTERS: dict[str, type[Formatter]] = {
    cls.type_name: cls for cls in (JsonFormatter, HashFormatter, MsgpackFormatter, SingleValueFormatter,
                                   LtsvFormatter, TsvFormatter, CsvFormatter, OutFileFormatter, StdoutFormatter)
}


def _coerce(cls: type[Formatter], conf: dict[str, Any], extra: tuple[Setting, ...] = ()) -> dict[str, Any]:
    declared = {s.name: s for s in cls.declared() + extra}
    for key in conf:
        if key in declared or key in _IGNORED:
            continue
        close = difflib.get_close_matches(key, sorted(declared), n=1, cutoff=0.8)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        known = ", ".join(sorted(declared))
        raise ConfigError(f"unknown <format> parameter '{key}' for @type {cls.type_name}{hint}; known: {known}",
                          setting=f"format.{key}", at_name=True)
    values: dict[str, Any] = {}
    for name, setting in declared.items():
        if name in conf:
            try:
                values[name] = coerce_value(setting, _fluentd_value(setting, conf[name]))
            except ConfigError as exc:
                raise ConfigError(f"<format> {exc.message}", setting=f"format.{name}") from None
            if setting.choices is not None and values[name] not in setting.choices:
                raise ConfigError(f"<format> {name} must be one of {', '.join(map(str, setting.choices))}, "
                                  f"got {values[name]!r}", setting=f"format.{name}")
        elif setting.required:
            raise ConfigError(f"<format> @type {cls.type_name} needs '{name}'", setting="format")
        else:
            values[name] = setting.default
    if "localtime" in conf and "utc" in conf and values["localtime"] == values["utc"]:
        raise ConfigError("both of utc and localtime are specified, use only one of them", setting="format.utc")
    return values


def _fluentd_value(setting: Setting, value: Any) -> Any:
    """Fluentd's spelling of arrays (`a, b,c`) and of a bare boolean (`utc` alone is true)."""
    if setting.type == "array" and isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if setting.type == "bool" and isinstance(value, str) and value.strip() == "":
        return True
    return value


def build_formatter(section: Any, default_type: str = "json",
                    defaults: dict[str, Any] | None = None) -> Formatter:
    """The formatter a `<format>` section (a dict; None: not written) asks for. `defaults`
    are the owning plugin's `config_set_default`s (stdout: output_type json)."""
    if isinstance(section, list):
        raise ConfigError("only one <format> section is allowed", setting="format")
    if section is not None and not isinstance(section, dict):
        section = {"@type": section}  # `format json` written as a plain value
    written_type = (section or {}).get("@type") or (section or {}).get("type")
    type_name = str(written_type or default_type).strip()
    # The owner's defaults are for its default type's parameters (stdout's output_type).
    conf: dict[str, Any] = dict(defaults or {}) if type_name == default_type else {}
    conf.update(section or {})
    cls = FORMATTERS.get(type_name)
    if cls is None:
        close = difflib.get_close_matches(type_name, sorted(FORMATTERS), n=1, cutoff=0.7)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown <format> @type '{type_name}'{hint}; known: {', '.join(sorted(FORMATTERS))}",
                          setting="format.@type" if section and "@type" in section else "format")
    written = set(section or {})
    if cls is StdoutFormatter:
        sub_type = str(conf.get("output_type") or "json")
        sub_cls = FORMATTERS.get(sub_type)
        if sub_cls is None or sub_cls is StdoutFormatter:
            raise ConfigError(f"<format> output_type '{sub_type}' is not a formatter; known: "
                              f"{', '.join(sorted(set(FORMATTERS) - {'stdout'}))}", setting="format.output_type")
        values = _coerce(cls, conf, sub_cls.declared())
        sub_conf = {k: v for k, v in conf.items() if k != "output_type"}
        return StdoutFormatter(values, _make(sub_cls, _coerce(sub_cls, sub_conf, cls.settings), written))
    return _make(cls, _coerce(cls, conf), written)


def _make(cls: type[Formatter], values: dict[str, Any], written: set[str]) -> Formatter:
    if cls is OutFileFormatter:
        return OutFileFormatter(values, written)
    return cls(values)


def local_offset_seconds(ns: int) -> int:
    """The local zone's UTC offset at `ns` (for paths and timekeys cut in local time)."""
    return int(_time.localtime(ns // NS).tm_gmtoff)


class FormatSection(Helper):
    """The `<format>` section of an output; `FormatSection.create(plugin, default_type)` builds it."""

    settings = [Setting("format", "any", doc="Fluentd <format>: @type json | ltsv | csv | tsv | single_value | "
                        "hash | msgpack | out_file | stdout, and that type's parameters")]

    @staticmethod
    def create(plugin: Plugin, default_type: str, defaults: dict[str, Any] | None = None) -> Formatter:
        return build_formatter(plugin.params.get("format"), default_type, defaults)
