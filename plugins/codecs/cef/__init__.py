"""Logstash's `cef` codec: ArcSight Common Event Format, decode and encode.

Decoding: `CEF:Version|Vendor|Product|Version|Signature|Name|Severity|extensions`, an optional
syslog header before `CEF:` kept in `syslog` (ECS `[log][syslog][header]`), `\\|` and `\\\\`
unescaped in the header, extension values running until the next `key=` (so values may hold
spaces), `\\=`, `\\\\`, `\\n`, `\\r` unescaped. Short keys become full names (`src` →
`sourceAddress`) in the legacy layout, or ECS fields (`[source][ip]`) with v1/v8, where the
CEF timestamps (`rt`, `start`, `end` …) become ISO-8601 times (`rt` is @timestamp). Anything that
is not CEF keeps its text in `message` with the tag `_cefparsefailure`.

Encoding: `CEF:0|vendor|product|version|signature|name|severity|` (each sprintf; header fields
escaped, severity 0-10 or the default 6) and the `fields` as `key=value` (full names, or the short
keys with `reverse_mapping`), values escaped, arrays and hashes as JSON.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, compile_sprintf, render_value, set_field
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.plugin import Codec, Setting
from logpipe.timefmt import format_iso_ms
from logpipe_plugins.codecs.cef.fields import all_fields

FAILURE_TAG = "_cefparsefailure"
_HEADER_FIELD = re.compile(r"((?:\\\||\\\\|[^|])*?)\|")
_HEADER_UNESCAPE = re.compile(r"\\([\\|])")
_KEY = r"(?:\w+(?:\.[^.=\s|\\\[\]]+)*(?:\[[0-9]+\])?(?==))"
_NEXT_PAIR = re.compile(rf"({_KEY})=((?:\S|\s+(?!{_KEY}=))*)\s*")
_KEY_ARRAY = re.compile(r"^([^\[\]]+)((?:\[[0-9]+\])+)$")
_VALUE_UNESCAPE = re.compile(r"\\(\\|=|n|r)")
_UNESCAPED = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
#: The settings that fill the header on encode, in header order (severity last).
_HEADER_SETTINGS = ("vendor", "product", "version", "signature", "event_name", "severity")
_LEGACY_HEADER = ("cefVersion", "deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId", "name",
                  "severity")
_ECS_HEADER = ("[cef][version]", "[observer][vendor]", "[observer][product]", "[observer][version]",
               "[event][code]", "[cef][name]", "[event][severity]")
_TIME_FORMATS = ("%b %d %Y %H:%M:%S.%f", "%b %d %Y %H:%M:%S", "%b %d %H:%M:%S.%f", "%b %d %H:%M:%S")


class CefError(ValueError):
    """The text is not CEF."""


def parse_cef_time(text: str) -> int:
    """CEF's time forms: epoch milliseconds, `MMM dd yyyy HH:mm:ss[.SSS]`, ISO-8601 (UTC unless given)."""
    value = text.strip()
    if value.isdigit():
        return int(value) * 1_000_000
    for fmt in _TIME_FORMATS:
        try:
            moment = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if "%Y" not in fmt:
            moment = moment.replace(year=datetime.now(UTC).year)
        return int(moment.replace(tzinfo=UTC).timestamp() * 1000) * 1_000_000
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CefError(f"not a valid CEF timestamp: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000) * 1_000_000


class CefCodec(Codec):
    name = "cef"
    doc = "ArcSight CEF: decodes header and extensions (legacy or ECS names), encodes events as CEF lines."
    settings = [
        Setting("vendor", "string", default="Elasticsearch", doc="encode: device vendor (sprintf)"),
        Setting("product", "string", default="Logstash", doc="encode: device product (sprintf)"),
        Setting("version", "string", default="1.0", doc="encode: device version (sprintf)"),
        Setting("signature", "string", default="Logstash", doc="encode: signature id (sprintf)"),
        # Logstash spells it `name`, which would shadow the plugin's own name: accepted as that spelling.
        Setting("event_name", "string", default="Logstash", spellings=("name",),
                doc="encode: event name (sprintf)"),
        Setting("severity", "string", default="6", doc="encode: severity 0-10 (sprintf)"),
        Setting("fields", "array", default=[], doc="encode: the fields written as extensions"),
        Setting("reverse_mapping", "bool", default=False, doc="encode: write short keys (src) not full names"),
        Setting("delimiter", "string", doc="accepted for Logstash compatibility: inputs here frame lines"),
        Setting("raw_data_field", "string", doc="decode: keep the raw line in this field"),
        Setting("device", "string", default="observer", choices=("observer", "host"),
                doc="ECS: whether dvc* fields describe the observer or the host"),
        Setting("default_timezone", "string", doc="accepted for Logstash compatibility (times are UTC)"),
        Setting("locale", "string", doc="accepted for Logstash compatibility"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self._ecs = ecs_enabled(p)
        self._header = _ECS_HEADER if self._ecs else _LEGACY_HEADER
        self._syslog_field = "[log][syslog][header]" if self._ecs else "syslog"
        self._decode_map: dict[str, str] = {}
        self._encode_map: dict[str, str] = {}
        self._time_fields: set[str] = set()
        host = p["device"] == "host"
        for name, key, ecs, legacy, _priority, is_time in sorted(all_fields(), key=lambda row: row[4]):
            if "|" in ecs:
                ecs = ecs.split("|")[0 if host else 1]
            ecs = ecs.replace("{device}", p["device"])
            target = ecs if self._ecs else name
            out_key = key if (p["reverse_mapping"] and key) else name
            if key:
                self._decode_map[key] = target
            self._decode_map[name] = target
            self._encode_map[target] = out_key
            self._encode_map[name] = out_key
            if legacy:
                self._decode_map[legacy] = ecs if self._ecs else legacy
                self._encode_map[legacy] = key if (p["reverse_mapping"] and key) else legacy
            if self._ecs and is_time:
                self._time_fields.add(target)
        self._sprintf = {k: compile_sprintf(str(p[k])) for k in _HEADER_SETTINGS}
        try:
            self._getters = [(str(f), compile_getter(str(f))) for f in p["fields"]]
        except ValueError as exc:
            raise ConfigError(f"cef: invalid field reference: {exc}", setting="fields") from None

    # -- decode ---------------------------------------------------------------------
    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in lines:
            try:
                out.append(self.decode_one(line))
            except CefError as exc:
                self.log.debug("not CEF (%s): %r", exc, line)
                out.append({"message": line, "tags": [FAILURE_TAG]})
        return out

    def decode_one(self, line: str) -> dict[str, Any]:
        """One CEF record; its `@timestamp` (ECS `rt`) as an ISO string for the input to use."""
        ev = Event("cef", 0, {})
        if self.params["raw_data_field"]:
            set_field(ev, self.params["raw_data_field"], line)
        data = line[1:-1] if line.startswith('"') and line.endswith('"') and len(line) > 1 else line
        rest = data.rstrip("\r\n")
        if "\n" in rest:
            raise CefError("unescaped newline inside the message")
        values = []
        for index in range(7):
            match = _HEADER_FIELD.match(rest)
            if match is None:
                raise CefError(f"found {index} of 7 required pipe-terminated header fields")
            values.append(_HEADER_UNESCAPE.sub(r"\1", match.group(1)))
            rest = rest[match.end():]
        version = values[0]
        if " " in version:
            syslog, _, version = version.rpartition(" ")
            set_field(ev, self._syslog_field, syslog)
        values[0] = version[4:] if version.startswith("CEF:") else version
        for field, value in zip(self._header, values):
            set_field(ev, field, value)
        extensions = self._extensions(rest.strip())
        for field, value in extensions.items():
            if field == "@timestamp":
                ev.record["@timestamp"] = value
            else:
                set_field(ev, field, value)
        return ev.record if not ev.meta else {**ev.record, "@metadata": ev.meta}

    def _extensions(self, text: str) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        while text:
            match = _NEXT_PAIR.match(text)
            if match is None or not match.group(0):
                raise CefError(f"invalid extensions; keyless value present `{text}`")
            key, raw = match.group(1), match.group(2)
            text = text[match.end():]
            key = self._decode_map.get(key, key)
            if key.endswith("]") and not key.startswith("["):
                key = _KEY_ARRAY.sub(r"[\1]\2", key)
            fields[key] = _VALUE_UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], raw)
        for name in self._time_fields & set(fields):
            raw_time = fields.pop(name)
            if raw_time.strip():  # an empty CEF time is no time (Logstash leaves the field out)
                fields[name] = format_iso_ms(parse_cef_time(raw_time))
        return fields

    # -- encode ---------------------------------------------------------------------
    def encode(self, events: list[Event]) -> bytes:
        return b"".join(self.encode_one(ev).encode("utf-8") + b"\n" for ev in events)

    def encode_one(self, ev: Event) -> str:
        defaults = {s.name: s.default for s in self.settings}
        header = []
        for key in _HEADER_SETTINGS[:-1]:
            value = _escape_header(self._sprintf[key](ev))
            header.append(value or str(defaults[key]))
        severity = _escape_header(self._sprintf["severity"](ev)).strip()
        header.append(severity if _valid_severity(severity) else "6")
        header[-1] = str(int(float(header[-1])))
        extensions = []
        for name, get in self._getters:
            value = get(ev)
            if value is MISSING or value is None:
                continue
            key = re.sub(r"[^a-zA-Z0-9]", "", self._encode_map.get(name, name))
            text = orjson.dumps(value).decode() if isinstance(value, (list, dict)) else render_value(value)
            extensions.append(f"{key}={_escape_value(text)}")
        return "CEF:0|" + "|".join(header) + "|" + " ".join(extensions)


def _escape_header(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _escape_value(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n") \
        .replace("\r", "\\n")


def _valid_severity(text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    return number.is_integer() and 0 <= number <= 10
