"""Logstash's `csv` filter: one CSV line into named fields.

Lines are split as Ruby's CSV does (logpipe.helpers.csv_line): a line it refuses (stray or
unclosed quote) is tagged `_csvparsefailure` and left as it was. Semantics of the plugin:

- names come from `columns`, then `columnN` for the rest (unless `autogenerate_column_names
  => false`, which drops them); names may be field references (`[@metadata][one]`) and go
  under `target` when set;
- `autodetect_column_names`: the first line seen is the header (that event is dropped);
  `skip_header`: a line equal to `columns` is dropped;
- `skip_empty_columns` leaves empty values out, `skip_empty_rows` tags an empty line
  `_csvskippedemptyfield`; an empty line otherwise is a parse failure, as in Logstash;
- `convert` per column: integer, float, boolean, date, date_time; a value that does not
  convert stays text. Dates become ISO-8601 UTC text (Logstash makes a Timestamp; date-only
  values are midnight UTC here rather than midnight in the JVM's zone).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter
from logpipe.helpers.csv_line import CsvLineError, parse_csv_line
from logpipe.helpers.ecs import ecs_setting
from logpipe.plugin import Filter, Setting
from logpipe.timefmt import format_iso_ms

FAILURE_TAG = "_csvparsefailure"
EMPTY_ROW_TAG = "_csvskippedemptyfield"

_RUBY_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+(_[0-9a-fA-F]+)*|0[bB][01]+(_[01]+)*|0[oO]?[0-7]+(_[0-7]+)*|"
                       r"[1-9]\d*(_\d+)*|0)")
_RUBY_FLOAT = re.compile(r"[+-]?(\d+(_\d+)*)(\.\d+(_\d+)*)?([eE][+-]?\d+)?")


def ruby_integer(value: str) -> Any:
    """Ruby's Integer(): 0x/0b/0o prefixes, a leading 0 is octal, underscores between digits."""
    text = value.strip()
    if not _RUBY_INT.fullmatch(text):
        return value
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").replace("_", "").lower()
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    if body.startswith("0b"):
        return sign * int(body[2:], 2)
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body[1:], 8)
    return sign * int(body)


def ruby_float(value: str) -> Any:
    text = value.strip()
    if not _RUBY_FLOAT.fullmatch(text):
        as_int = ruby_integer(value)
        return float(as_int) if isinstance(as_int, int) else value
    return float(text.replace("_", ""))


def _boolean(value: str) -> Any:
    text = value.strip().lower()
    if text == "false":
        return False
    if text == "true":
        return True
    return value


def _date(value: str) -> Any:
    try:
        day = datetime.strptime(value.strip()[:10], "%Y-%m-%d")
    except ValueError:
        return value
    return format_iso_ms(int(day.replace(tzinfo=UTC).timestamp()) * 1_000_000_000)


def _date_time(value: str) -> Any:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_iso_ms(int(moment.timestamp() * 1000) * 1_000_000)


CONVERTERS = {"integer": ruby_integer, "float": ruby_float, "boolean": _boolean, "date": _date,
              "date_time": _date_time}


class CsvFilter(Filter):
    name = "csv"
    creates_events = False
    doc = "Splits a CSV line into named fields (Ruby CSV rules; failures tagged _csvparsefailure)."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "string", default="message", doc="the field holding the line"),
        Setting("columns", "array", default=[], doc="column names, in order"),
        Setting("separator", "string", default=",", doc="column separator (may be several characters)"),
        Setting("quote_char", "string", default='"', doc="quote character; \\x00 disables quoting"),
        Setting("target", "string", doc="put the columns under this field"),
        Setting("autogenerate_column_names", "bool", default=True, doc="name extra columns column1, column2 …"),
        Setting("autodetect_column_names", "bool", default=False, doc="take the names from the first line"),
        Setting("skip_header", "bool", default=False, doc="drop a line equal to the column names"),
        Setting("skip_empty_columns", "bool", default=False, doc="leave empty values out"),
        Setting("skip_empty_rows", "bool", default=False, doc="tag empty lines instead of failing them"),
        Setting("convert", "hash", default={}, doc="column => integer|float|boolean|date|date_time"),
        ecs_setting("accepted for Logstash compatibility (the layout does not depend on it)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        bad = sorted({str(v) for v in p["convert"].values() if str(v) not in CONVERTERS})
        if bad:
            raise ConfigError(f"csv: invalid conversion types: {', '.join(bad)} (valid: {', '.join(CONVERTERS)})",
                              setting="convert")
        if not p["separator"]:
            raise ConfigError("csv: 'separator' must not be empty", setting="separator")
        quote = p["quote_char"]
        self._quote = "\x00" if quote in ("\\x00", "\x00") else quote
        if len(self._quote) > 1:
            raise ConfigError("csv: 'quote_char' must be one character", setting="quote_char")
        self._convert = {str(k): CONVERTERS[str(v)] for k, v in p["convert"].items()}
        self._get = compile_getter(p["source"])
        target = p["target"]
        self._prefix = "" if not target else (target if target.startswith("[") else f"[{target}]")
        self.columns: list[str] = [str(c) for c in p["columns"]]
        self._setters: dict[str, Any] = {}
        self.failures = 0

    def _setter(self, name: str) -> Any:
        setter = self._setters.get(name)
        if setter is None:
            prefix = self._prefix
            ref = prefix + name if name.startswith("[") else (f"{prefix}[{name}]" if prefix else name)
            setter = self._setters[name] = compile_setter(ref)
        return setter

    def filter(self, events: list[Event]) -> list[Event]:
        p = self.params
        out: list[Event] = []
        for ev in events:
            source = self._get(ev)
            if source is MISSING or source is None or source is False:
                out.append(ev)
                continue
            try:
                values = parse_csv_line(str(source), p["separator"], self._quote)
            except CsvLineError as exc:
                self._fail(ev, source, exc)
                out.append(ev)
                continue
            if p["autodetect_column_names"] and not self.columns:
                self.columns = [v or "" for v in values or []]
                continue
            if p["skip_header"] and self.columns and values == self.columns:
                continue
            if values is None:
                if p["skip_empty_rows"]:
                    add_tag(ev, EMPTY_ROW_TAG)
                else:
                    self._fail(ev, source, CsvLineError("empty line"))
                out.append(ev)
                continue
            self._apply(ev, values)
            self.matched(ev)
            out.append(ev)
        return out

    def _apply(self, ev: Event, values: list[str | None]) -> None:
        columns, autogenerate, skip_empty = self.columns, self.params["autogenerate_column_names"], \
            self.params["skip_empty_columns"]
        for i, value in enumerate(values):
            if skip_empty and not value:
                continue
            if i < len(columns):
                name = columns[i]
            elif autogenerate:
                name = f"column{i + 1}"
            else:
                continue
            convert = self._convert.get(name)
            self._setter(name)(ev, convert(value) if convert is not None and value is not None else value)

    def _fail(self, ev: Event, source: Any, exc: Exception) -> None:
        self.failures += 1
        add_tag(ev, FAILURE_TAG)
        self.log.warning("csv: cannot parse %s %r: %s", self.params["source"], source, exc)
