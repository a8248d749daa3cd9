"""Fluentd's time parameters (`time_type`, `time_format`, `localtime`/`utc`/`timezone`,
`time_format_fallbacks`) compiled into one function from a value to int nanoseconds.

Fluentd configs carry Ruby `strptime` formats (`%d/%b/%Y:%H:%M:%S %z`, `%Y-%m-%dT%H:%M:%S.%N%z`),
so the format language here is Ruby's, not Python's: `%N`/`%L`/`%3N` take any number of fraction
digits (nanoseconds survive), a space matches any run of blanks (syslog's `Oct  1`), `%z` takes
`+09:00`, `+0900`, `Z` and `UTC`, `%s` is epoch seconds, and `%iso8601` is ISO-8601. A format is
compiled once into an anchored regex plus integer arithmetic.

Zones follow Fluentd: an offset in the text wins; otherwise `timezone`, else UTC when `utc true`
or `localtime false`, else the machine's local time (Fluentd's default). A missing year is this
year (Ruby's strptime does the same), a missing day the first.

`time_type string` without `time_format` is Ruby's `Time.parse`: here a fixed list of the layouts
it is used for in practice (ISO-8601, Apache, ctime, RFC 2822, syslog, `Y-m-d H:M:S`).
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from logpipe.errors import ConfigError
from logpipe.timefmt import days_from_civil, resolve_zone

NS = 1_000_000_000
TIME_TYPES = ("string", "unixtime", "float", "mixed")

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_MONTH_NAMES = ("january|february|march|april|may|june|july|august|september|october|november|december|"
                "jan|feb|mar|apr|may|jun|jul|aug|sept|sep|oct|nov|dec")
_DAY_NAMES = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun"
_ZONE = r"(?:Z|[+-]\d{1,2}(?::?\d{2}(?::?\d{2})?)?|(?:UTC|GMT)(?:[+-]\d{1,2}(?::?\d{2})?)?|[A-Za-z]{3,5})"

#: Ruby strptime directive → (regex, group name); compound ones expand to other directives.
_COMPOUND = {"T": "%H:%M:%S", "D": "%m/%d/%y", "F": "%Y-%m-%d", "R": "%H:%M", "r": "%I:%M:%S %p",
             "c": "%a %b %e %H:%M:%S %Y", "x": "%m/%d/%y", "X": "%H:%M:%S", "v": "%e-%b-%Y",
             "+": "%a %b %e %H:%M:%S %Z %Y"}
_SIMPLE = {
    "Y": (r"[+-]?\d{4}", "Y"), "C": (r"\d{2}", None), "y": (r"\d{2}", "y"), "m": (r"\d{1,2}", "m"),
    "d": (r"\d{1,2}", "d"), "e": (r"\s?\d{1,2}", "d"), "j": (r"\d{1,3}", "j"), "H": (r"\d{1,2}", "H"),
    "k": (r"\s?\d{1,2}", "H"), "I": (r"\d{1,2}", "I"), "l": (r"\s?\d{1,2}", "I"), "M": (r"\d{1,2}", "M"),
    "S": (r"\d{1,2}", "S"), "p": (r"[AaPp]\.?[Mm]\.?", "p"), "P": (r"[AaPp]\.?[Mm]\.?", "p"),
    "b": (_MONTH_NAMES, "b"), "h": (_MONTH_NAMES, "b"), "B": (_MONTH_NAMES, "b"),
    "a": (_DAY_NAMES, None), "A": (_DAY_NAMES, None), "u": (r"\d", None), "w": (r"\d", None),
    "s": (r"-?\d+", "s"), "Q": (r"-?\d+", "Q"), "n": (r"\s+", None), "t": (r"\s+", None), "%": ("%", None),
    "U": (r"\d{1,2}", None), "W": (r"\d{1,2}", None), "V": (r"\d{1,2}", None), "G": (r"\d{4}", None),
    "g": (r"\d{2}", None),
}


class _Zone:
    """How a time without an offset in its text is placed: fixed offset seconds, an IANA zone,
    or the local zone."""

    def __init__(self, timezone_name: str | None, utc: bool, localtime: bool) -> None:
        self.fixed: int | None = None
        self.zone: ZoneInfo | timezone | None = None
        if timezone_name:
            try:
                zone = resolve_zone(timezone_name)
            except ConfigError as exc:
                raise ConfigError(exc.message, setting="timezone") from None
            if zone is None:
                self.fixed = 0
            elif isinstance(zone, timezone):
                off = zone.utcoffset(None)
                self.fixed = int(off.total_seconds()) if off is not None else 0
            else:
                self.zone = zone
        elif utc or not localtime:
            self.fixed = 0

    def epoch(self, y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
        """Seconds since the epoch of a wall-clock time in this zone."""
        if self.fixed is not None:
            return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s - self.fixed
        if s >= 60:  # a leap second: datetime refuses it, Ruby rolls over
            return self.epoch(y, mo, d, h, mi, 59) + s - 59
        return int(datetime(y, mo, d, h, mi, s, tzinfo=self.zone).timestamp())


def _zone_offset(text: str) -> int | None:
    """Seconds east of UTC of a `%z` text, None for a zone abbreviation we cannot place."""
    t = text.strip()
    upper = t.upper()
    if upper in ("Z", "UTC", "GMT", "UT"):
        return 0
    if upper.startswith(("UTC", "GMT")):
        t = t[3:]
    m = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?", t)
    if m is None:
        return _ABBREVIATIONS.get(upper)
    secs = int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60 + int(m.group(4) or 0)
    return -secs if m.group(1) == "-" else secs


_ABBREVIATIONS = {"EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600, "MST": -7 * 3600,
                  "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600, "JST": 9 * 3600, "CET": 3600,
                  "CEST": 7200, "BST": 3600, "IST": 19800, "KST": 9 * 3600}


def compile_strptime(fmt: str, zone: _Zone) -> Callable[[str], int | None]:
    """A Ruby strptime format as a function text → ns (None when the text does not fit)."""
    for _ in range(3):  # compound directives nest at most once (%c → %e …)
        fmt = re.sub(r"%([-_0^#]?)([TDFRrcxXv+])", lambda m: _COMPOUND[m.group(2)], fmt)
    parts: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            m = re.compile(r"%[-_0^#]*(\d*)([A-Za-z%+])").match(fmt, i)
            if m is None:
                parts.append(re.escape(c))
                i += 1
                continue
            width, letter = m.group(1), m.group(2)
            i = m.end()
            if letter in ("N", "L"):
                group: str | None = "f"
                regex = r"\d+" if letter == "L" or not width else rf"\d{{1,{width}}}"
            elif letter in ("z", "Z"):
                group, regex = "z", _ZONE
            elif letter in _SIMPLE:
                regex, group = _SIMPLE[letter]
            else:
                raise ConfigError(f"time_format {fmt!r}: unknown directive %{letter}", setting="time_format")
            if group is not None and group not in seen:
                seen.add(group)
                parts.append(f"(?P<{group}>{regex})")
            else:
                parts.append(f"(?:{regex})")
        elif c.isspace():
            while i < len(fmt) and fmt[i].isspace():
                i += 1
            parts.append(r"\s*")
        else:
            parts.append(re.escape(c))
            i += 1
    pattern = re.compile("".join(parts) + r"\s*\Z", re.IGNORECASE)
    match = pattern.match

    def parse(text: str) -> int | None:
        m = match(text.strip())
        if m is None:
            return None
        g = m.groupdict()
        frac = g.get("f")
        ns_frac = int(frac[:9].ljust(9, "0")) if frac else 0
        if g.get("s") is not None:
            return int(g["s"]) * NS + ns_frac
        if g.get("Q") is not None:
            return int(g["Q"]) * 1_000_000
        year = int(g["Y"]) if g.get("Y") else (2000 + int(g["y"]) if int(g["y"]) < 69 else 1900 + int(g["y"])) \
            if g.get("y") else _time.localtime().tm_year
        month = _MONTHS[g["b"][:3].lower()] if g.get("b") else int(g.get("m") or 1)
        day = int(g.get("d") or 1)
        hour = int(g.get("H") or 0)
        if g.get("I") is not None:
            hour = int(g["I"]) % 12 + (12 if (g.get("p") or "a")[0] in "pP" else 0)
        minute, second = int(g.get("M") or 0), int(g.get("S") or 0)
        if g.get("j") and not g.get("b") and not g.get("m"):
            ordinal = datetime(year, 1, 1) + timedelta(days=int(g["j"]) - 1)
            month, day = ordinal.month, ordinal.day
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
            return None
        offset = _zone_offset(g["z"]) if g.get("z") else None
        try:
            if offset is not None:
                secs = ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second - offset
            else:
                secs = zone.epoch(year, month, day, hour, minute, second)
        except (ValueError, OverflowError):
            return None
        return secs * NS + ns_frac

    return parse


#: What Ruby's Time.parse is asked to read in real configs (time_format left out).
_GENERIC_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%N%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%N",
    "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%N %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%N",
    "%Y-%m-%d %H:%M:%S,%N", "%Y/%m/%d %H:%M:%S %z", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M:%S.%N",
    "%d/%b/%Y:%H:%M:%S %z", "%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S.%N %Y", "%a %b %d %H:%M:%S %z %Y",
    "%a %b %d %H:%M:%S %Z %Y", "%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S",
    "%b %d %H:%M:%S", "%b %d %H:%M:%S %Y", "%b %d %H:%M:%S.%N %Y", "%b %d %Y %H:%M:%S", "%Y-%m-%d",
    "%Y-%m-%dT%H:%M%z",
)
_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%N%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%N",
                "%Y-%m-%dT%H:%M%z", "%Y-%m-%d")


def _first_of(parsers: list[Callable[[str], int | None]]) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        for p in parsers:
            ns = p(text)
            if ns is not None:
                return ns
        return None

    return parse


def _string_parser(fmt: str | None, zone: _Zone) -> Callable[[str], int | None]:
    if fmt is None:
        return _first_of([compile_strptime(f, zone) for f in _GENERIC_FORMATS])
    if fmt.strip() == "%iso8601":
        return _first_of([compile_strptime(f, zone) for f in _ISO_FORMATS])
    return compile_strptime(fmt, zone)


def _number_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", value):
        return value.strip()
    return None


def parse_unixtime(value: Any) -> int | None:
    text = _number_text(value)
    if text is None:
        return None
    return int(text.split(".")[0]) * NS


def parse_float_time(value: Any) -> int | None:
    """Seconds with a fraction; parsed from the digits so nanoseconds survive."""
    text = _number_text(value)
    if text is None:
        return None
    whole, _, frac = text.partition(".")
    ns = abs(int(whole)) * NS + int(frac[:9].ljust(9, "0") or 0)
    return -ns if whole.startswith("-") else ns


def _only_text(parse: Callable[[str], int | None]) -> Callable[[Any], int | None]:
    def parse_text(value: Any) -> int | None:
        return parse(value) if isinstance(value, str) else None

    return parse_text


def compile_time_parser(time_type: str = "string", time_format: str | None = None, *, localtime: bool = True,
                        utc: bool = False, timezone_name: str | None = None,
                        fallbacks: list[str] | None = None) -> Callable[[Any], int | None]:
    """Fluentd's time parameters → value → ns, None when the value does not parse."""
    if time_type not in TIME_TYPES:
        raise ConfigError(f"time_type must be one of {', '.join(TIME_TYPES)}, got {time_type!r}",
                          setting="time_type")
    zone = _Zone(timezone_name, utc, localtime)
    if time_type == "unixtime":
        return parse_unixtime
    if time_type == "float":
        return parse_float_time
    if time_type == "string":
        return _only_text(_string_parser(time_format, zone))
    chain: list[Callable[[Any], int | None]] = []
    for fmt in ([time_format] if time_format else []) + list(fallbacks or []):
        name = fmt.strip()
        if name == "unixtime":
            chain.append(parse_unixtime)
        elif name == "float":
            chain.append(parse_float_time)
        else:
            chain.append(_only_text(_string_parser(name, zone)))
    if not chain:
        raise ConfigError("time_type mixed needs time_format or time_format_fallbacks", setting="time_type")

    def parse_mixed(value: Any) -> int | None:
        for p in chain:
            ns = p(value)
            if ns is not None:
                return ns
        return None

    return parse_mixed
