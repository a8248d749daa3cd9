"""Logstash's `date` filter: parse a field with Joda patterns and set the event time.

`match => ["field", "dd/MMM/yyyy:HH:mm:ss Z", "ISO8601", "UNIX", "UNIX_MS", "TAI64N"]`: the
patterns are tried in order and the first that parses wins. Each pattern is compiled once
(logpipe.timefmt) to an anchored regex and integer arithmetic, so fractions keep nanoseconds.
`target` defaults to `@timestamp` (the event time); any other target receives ISO-8601 text.
`timezone` applies to text that carries no zone and may be a sprintf template (`%{tz}`);
`locale` picks month and day names. A value no pattern parses tags the event
(`_dateparsefailure`) and is counted; a missing field is left alone.

Logstash's rules, checked against its spec (tests/plugins/filters/test_date_spec.py): UNIX refuses
seconds above 2^31-1 so that `UNIX, UNIX_MS` reads 1000000000123 as milliseconds; a year-less
date takes the current year, last year for a December date read in January, next year for a
January date read in December; a local time inside a DST gap is a `_dateparsefailure`.
Precision: logpipe keeps the digits the source has (up to nanoseconds) where Logstash keeps
milliseconds; outputs write `@timestamp` with milliseconds, so what reaches them is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from logpipe.fields import (
    METADATA,
    MISSING,
    TIMESTAMP,
    add_tag,
    compile_getter,
    compile_setter,
    compile_sprintf,
    has_sprintf,
    parse_ref,
)
from logpipe.plugin import ConfigError, Event, Filter, Setting
from logpipe.timefmt import compile_joda_parser, format_iso_precise

Parser = Callable[[Any], int | None]
_NUMERIC_NAMES = frozenset({"UNIX", "UNIX_MS"})


def compile_parsers(patterns: list[str], tz: str | None, locale: str | None) -> Parser:
    """One function trying each pattern in turn. Numbers reach UNIX/UNIX_MS as numbers and the
    other patterns as text, as Logstash calls `to_s` on them. A single text pattern is returned
    as it is (it returns None for non-text; the filter converts numbers first)."""
    compiled: list[tuple[Parser, bool]] = []
    for pattern in patterns:
        try:
            parser = compile_joda_parser(pattern, tz, locale)
        except ConfigError as exc:
            raise ConfigError(f"date pattern {pattern!r}: {exc.message}",
                              setting=exc.setting or "match") from exc
        compiled.append((parser, pattern.strip().upper() in _NUMERIC_NAMES))
    if len(compiled) == 1:
        return compiled[0][0]

    def parse_any(value: Any) -> int | None:
        text = value if value.__class__ is str else None
        for parser, numeric in compiled:
            if numeric:
                ns = parser(value)
            else:
                if text is None:
                    text = str(value)
                ns = parser(text)
            if ns is not None:
                return ns
        return None

    return parse_any


class DateFilter(Filter):
    name = "date"
    creates_events = False
    doc = "Parses a date field (Joda patterns, ISO8601, UNIX, UNIX_MS, TAI64N) into the event time."
    settings: ClassVar[list[Setting]] = [
        Setting("match", "array", required=True, doc="[field, pattern, pattern …]"),
        Setting("target", "string", default=TIMESTAMP, doc="where the parsed time goes (default the event time)"),
        Setting("timezone", "string", doc="zone of texts that carry none: IANA name or offset; sprintf allowed"),
        Setting("locale", "string", doc="language of month and day names (en, de, fr, es, it, pt, nl)"),
        Setting("tag_on_failure", "array", default=["_dateparsefailure"], doc="tags added when no pattern parses"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        match = [str(m) for m in self.params["match"]]
        if len(match) < 2:
            raise ConfigError("match needs a field and at least one pattern, e.g. "
                              "match => [\"timestamp\", \"dd/MMM/yyyy:HH:mm:ss Z\"]", setting="match")
        self.failures = 0
        self._failure_tags = [str(t) for t in self.params["tag_on_failure"]]
        self._patterns = match[1:]
        self._locale: str | None = self.params["locale"]
        tz: str | None = self.params["timezone"]
        self._tz_of: Callable[[Event], str] | None = None
        self._by_zone: dict[str, Parser | None] = {}
        if tz and has_sprintf(tz):
            self._tz_of = compile_sprintf(tz)
            compile_parsers(self._patterns, None, self._locale)  # reject bad patterns now
            self._parse: Parser = _never
        else:
            self._parse = compile_parsers(self._patterns, tz, self._locale)
        path = parse_ref(match[0])
        self._get = compile_getter(path)
        self._top_key = path[0] if len(path) == 1 and path[0] not in (TIMESTAMP, METADATA) else None
        target = parse_ref(self.params["target"])
        self._to_time = target == (TIMESTAMP,)
        self._put = compile_setter(target)

    def _failed(self, ev: Event) -> None:
        self.failures += 1
        for tag in self._failure_tags:
            add_tag(ev, tag)

    def _parser_for(self, ev: Event) -> Parser | None:
        assert self._tz_of is not None
        zone = self._tz_of(ev)
        parser = self._by_zone.get(zone, MISSING)
        if parser is MISSING:
            try:
                parser = compile_parsers(self._patterns, zone, self._locale)
            except ConfigError:
                parser = None
            if len(self._by_zone) < 1024:
                self._by_zone[zone] = parser
        return parser

    def filter(self, events: list[Event]) -> list[Event]:
        parse = self._parse
        dynamic = self._tz_of is not None
        key = self._top_key
        get = self._get
        to_time = self._to_time
        decorate = self._decorate
        for ev in events:
            value = ev.record.get(key) if key is not None else get(ev)
            if value is None or value is MISSING:
                continue
            if dynamic:
                zone_parser = self._parser_for(ev)
                if zone_parser is None:
                    self._failed(ev)
                    continue
                parse = zone_parser
            if value.__class__ is str:
                ns = parse(value)
            elif value.__class__ is list:
                ns = self._parse_list(value, parse)
            else:
                ns = parse(value)
                if ns is None and not isinstance(value, dict):
                    ns = parse(str(value))
            if ns is None:
                self._failed(ev)
                continue
            if to_time:
                ev.time = ns
            else:
                self._put(ev, format_iso_precise(ns))
            if decorate is not None:
                decorate(ev)
        return events

    @staticmethod
    def _parse_list(values: list[Any], parse: Parser) -> int | None:
        """Logstash parses every element; the last one wins, and any failure fails the event."""
        ns: int | None = None
        for value in values:
            if value is None:
                continue
            ns = parse(value)
            if ns is None and value.__class__ is not str:
                ns = parse(str(value))
            if ns is None:
                return None
        return ns


def _never(value: Any) -> int | None:
    return None
