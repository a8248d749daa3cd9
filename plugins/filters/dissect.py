"""Logstash's `dissect` filter: split text on literal delimiters, no regex — the cheap grok.

`mapping => { "message" => "%{ts} %{+ts} %{level} %{?skip} %{&skip} %{msg}" }`. The text
between fields is the delimiter that ends the field before it; the last field takes the rest
of the line. Field forms:

- `%{name}` / `%{[a][b]}`: store the value; `%{}` and `%{?name}` skip it;
- `%{+name}` appends to `name` (joined by the delimiter before it, or `append_separator`);
  `%{+name/2}` orders the appended parts;
- `%{*key}`, `%{?key}` or `%{key}` captures a key name and `%{&key}` stores its value under it;
- `%{name->}` skips repeated delimiters after the field (right padding).

Each mapping is compiled once into a list of (delimiter, field) steps run with `str.find`.
`convert_datatype => { "field" => "int" | "float" }` converts afterwards; a value that does not
convert keeps the dissection and is tagged `_dataconversionuncoercible_<field>_<type>` (an
absent one `_dataconversionnullvalue_<field>_<type>`). A line that does not fit (a delimiter is
missing) tags `_dissectfailure`, counts, and sets nothing from that mapping; a missing source
field is skipped. `%{+name}` parts join with the delimiter that preceded them unless
`append_separator` is set; `%{&key}` takes its name from a `%{key}`, `%{?key}` or `%{*key}`.
Checked against Logstash's spec and compatibility suite (tests/plugins/filters/test_dissect_spec.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter, parse_ref, runtime_ref, set_field
from logpipe.plugin import ConfigError, Event, Filter, Setting

_FIELD = re.compile(r"%\{([^}]*)\}")
_ORDINAL = re.compile(r"^(.*)/(\d+)$")


@dataclass(frozen=True, slots=True)
class Field:
    kind: str  # "normal" | "skip" | "append" | "key" | "ref"
    name: str
    ordinal: int
    padding: bool
    delimiter: str  # the text that ends this field ("" = the rest of the line)
    before: str = ""  # the text before it: what an append joins with when no append_separator is set


def parse_field(spec: str, delimiter: str, before: str = "") -> Field:
    text = spec.strip()
    padding = text.endswith("->")
    if padding:
        text = text[:-2]
    kind = "normal"
    if text[:2] in ("+&", "&+"):
        raise ConfigError(f"dissect field %{{{spec}}}: a field cannot have both the append (+) and the "
                          "indirect (&) prefix", setting="mapping")
    if text[:1] in ("+", "?", "*", "&"):
        kind = {"+": "append", "?": "skip", "*": "key", "&": "ref"}[text[0]]
        text = text[1:]
    ordinal = 0
    m = _ORDINAL.match(text)
    if m:
        text, ordinal = m.group(1), int(m.group(2))
    if not text:
        if kind not in ("normal", "skip"):
            raise ConfigError(f"dissect field %{{{spec}}} needs a name", setting="mapping")
        kind = "skip"
    return Field(kind, text, ordinal, padding, delimiter, before)


class Dissection:
    """One compiled mapping: `apply(text)` returns {field: value} or None when the text does not fit."""

    def __init__(self, template: str, append_separator: str | None = None) -> None:
        self.append_separator = append_separator
        matches = list(_FIELD.finditer(template))
        if not matches:
            raise ConfigError(f"dissect mapping {template!r} has no %{{}} fields", setting="mapping")
        self.prefix = template[:matches[0].start()]
        fields: list[Field] = []
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(template)
            delimiter = template[m.end():end]
            if not delimiter and i + 1 < len(matches):
                raise ConfigError(f"dissect mapping {template!r}: fields %{{{m.group(1)}}} and "
                                  f"%{{{matches[i + 1].group(1)}}} have no delimiter between them",
                                  setting="mapping")
            # What an append joins with: the delimiter before the field, or after it for the first one.
            before = (self.prefix if i == 0 else fields[-1].delimiter) or delimiter
            fields.append(parse_field(m.group(1), delimiter, before))
        self.fields = fields
        self.steps = [(f.delimiter, f.padding) for f in fields]
        names = {f.name for f in fields if f.kind in ("key", "skip", "normal")}
        for f in fields:
            if f.kind == "ref" and f.name not in names:
                raise ConfigError(f"dissect mapping {template!r}: %{{&{f.name}}} has no matching "
                                  f"%{{{f.name}}}, %{{?{f.name}}} or %{{*{f.name}}}", setting="mapping")
            if f.kind in ("normal", "append"):
                parse_ref(f.name)
        self.simple = all(f.kind in ("normal", "skip") and not f.ordinal for f in fields)
        self.setters: dict[str, Callable[[Event, Any], None]] = {
            f.name: compile_setter(f.name) for f in fields if f.kind in ("normal", "append")
        }

    def split(self, text: str) -> list[str] | None:
        prefix = self.prefix
        if prefix:
            if not text.startswith(prefix):
                return None
            pos = len(prefix)
        else:
            pos = 0
        values: list[str] = []
        find, startswith = text.find, text.startswith
        for delimiter, padding in self.steps:
            if not delimiter:
                values.append(text[pos:])
                pos = len(text)
                continue
            idx = find(delimiter, pos)
            if idx < 0:
                return None
            values.append(text[pos:idx])
            pos = idx + len(delimiter)
            if padding:
                while startswith(delimiter, pos):
                    pos += len(delimiter)
        return values

    def apply(self, text: str) -> dict[str, Any] | None:
        values = self.split(text)
        if values is None:
            return None
        if self.simple:
            return {f.name: v for f, v in zip(self.fields, values, strict=True) if f.kind == "normal"}
        out: dict[str, Any] = {}
        keys: dict[str, str] = {}
        appends: dict[str, list[tuple[int, int, str, str]]] = {}
        for position, (f, v) in enumerate(zip(self.fields, values, strict=True)):
            if f.kind == "normal" or f.kind == "append":
                appends.setdefault(f.name, []).append((f.ordinal, position, f.before, v))
            if f.kind in ("key", "skip", "normal") and f.name:
                keys[f.name] = v
        for name, parts in appends.items():
            parts.sort()
            if self.append_separator is not None:
                out[name] = self.append_separator.join(part[3] for part in parts)
            else:  # Logstash: each appended part joins with the delimiter that preceded it
                out[name] = parts[0][3] + "".join(sep + value for _, _, sep, value in parts[1:])
        for f, v in zip(self.fields, values, strict=True):
            if f.kind == "ref":
                out[keys[f.name]] = v
        return out


_CONVERT = {"int": int, "float": float}


class DissectFilter(Filter):
    name = "dissect"
    creates_events = False
    doc = "Splits text fields on literal delimiters (Logstash dissect syntax): a fast alternative to grok."
    settings: ClassVar[list[Setting]] = [
        Setting("mapping", "hash", default={}, doc="source field => dissect pattern"),
        Setting("convert_datatype", "hash", default={}, doc="field => int | float"),
        Setting("append_separator", "string",
                doc="joins the parts of %{+field} appends (default: the delimiter before each part)"),
        Setting("tag_on_failure", "array", default=["_dissectfailure"], doc="tags added when a line does not fit"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.failures = 0
        self._failure_tags = [str(t) for t in self.params["tag_on_failure"]]
        self._mappings: list[tuple[Callable[[Event], Any], Dissection]] = []
        for source, template in self.params["mapping"].items():
            if not isinstance(template, str):
                raise ConfigError(f"dissect mapping for {source!r} must be a string", setting="mapping")
            self._mappings.append(
                (compile_getter(str(source)), Dissection(template, self.params["append_separator"]))
            )
        self._conversions: list[tuple[str, str, Callable[[Event], Any], Callable[[Event, Any], None],
                                      Callable[[Any], Any]]] = []
        for field, kind in self.params["convert_datatype"].items():
            conv = _CONVERT.get(str(kind).strip().lower())
            if conv is None:
                raise ConfigError(f"convert_datatype: unknown type {kind!r} for {field!r}; allowed: int, float",
                                  setting="convert_datatype")
            name = str(kind).strip().lower()
            self._conversions.append((str(field), name, compile_getter(str(field)), compile_setter(str(field)), conv))

    def _failed(self, ev: Event) -> None:
        self.failures += 1
        for tag in self._failure_tags:
            add_tag(ev, tag)

    def filter(self, events: list[Event]) -> list[Event]:
        decorate = self._decorate
        for ev in events:
            ok = True
            for get, dissection in self._mappings:
                text = get(ev)
                if text is MISSING or text is None:
                    continue  # Logstash: a missing source is skipped (logged), not a failure
                found = dissection.apply(text if text.__class__ is str else str(text))
                if found is None:
                    ok = False
                    continue
                setters = dissection.setters
                for name, value in found.items():
                    put = setters.get(name)
                    if put is not None:
                        put(ev, value)
                    else:
                        set_field(ev, runtime_ref(name), value)
            if ok and self._conversions:
                self._convert(ev)
            if not ok:
                self._failed(ev)
            elif decorate is not None:
                decorate(ev)
        return events

    def _convert(self, ev: Event) -> None:
        """Logstash's conversion failures keep the dissection and tag the field and type:
        `_dataconversionnullvalue_<field>_<type>` when the field is absent or null,
        `_dataconversionuncoercible_<field>_<type>` when its value does not convert."""
        for field, kind, get, put, conv in self._conversions:
            value = get(ev)
            if value is MISSING or value is None:
                add_tag(ev, f"_dataconversionnullvalue_{field}_{kind}")
                continue
            try:
                put(ev, conv(value.strip() if isinstance(value, str) else value))
            except (ValueError, TypeError):
                add_tag(ev, f"_dataconversionuncoercible_{field}_{kind}")
