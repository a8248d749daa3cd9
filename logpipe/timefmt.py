"""Joda-Time date patterns, compiled once: printing (sprintf, index names) and parsing (date filter).

Logstash configs carry Joda patterns (`YYYY.MM.dd`, `dd/MMM/yyyy:HH:mm:ss Z`); users port them
unchanged, so the pattern language is Joda's, not strftime's. Every pattern is compiled once into a
closure: a formatter renders from integer arithmetic with a per-day (or per-hour/minute/second)
cache, because index names are computed for every event; a parser is one anchored regex plus an
assembler that does integer arithmetic, so nanosecond fractions survive (floats would not).

Time values are int nanoseconds since the epoch, UTC, like `Event.time`.
"""

from __future__ import annotations

import logging
import re
import time as _time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from logpipe.errors import ConfigError

NS = 1_000_000_000
DAY_NS = 86_400 * NS
_UTC_NAMES = frozenset({"utc", "z", "gmt", "etc/utc", "etc/gmt", "ut", "zulu", "universal"})

log = logging.getLogger("logpipe.timefmt")

# ---- calendar arithmetic (proleptic Gregorian, no datetime objects on the hot path) --------------


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (Howard Hinnant's algorithm): cheaper than building a datetime."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """Inverse of days_from_civil: (year, month, day)."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


# ---- time zones --------------------------------------------------------------------------------

_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$", re.IGNORECASE)


def resolve_zone(tz: str | None) -> timezone | ZoneInfo | None:
    """None for UTC (the fast path), else a tzinfo. Accepts IANA names and fixed offsets
    (`+01:00`, `-0500`). An unknown name raises ConfigError."""
    if tz is None or tz.strip().lower() in _UTC_NAMES:
        return None
    text = tz.strip()
    m = _OFFSET_RE.match(text)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise ConfigError(f"time zone offset {tz!r} is out of range (at most ±23:59)", setting="timezone")
        secs = hours * 3600 + minutes * 60
        if secs == 0:
            return None
        return timezone(timedelta(seconds=-secs if m.group(1) == "-" else secs))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a tzdata folder such as "Europe"
        raise ConfigError(f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Paris' or an offset "
                          f"such as '+01:00')", setting="timezone") from exc


def _fixed_offset(zone: timezone | ZoneInfo | None) -> int | None:
    """The zone's offset in seconds if it never changes, else None."""
    if zone is None:
        return 0
    if isinstance(zone, timezone):
        off = zone.utcoffset(None)
        return int(off.total_seconds()) if off is not None else 0
    return None


# ---- locale names ------------------------------------------------------------------------------

_MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"),
    "pt": ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro",
           "outubro", "novembro", "dezembro"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
           "oktober", "november", "december"),
}
_MONTHS_SHORT: dict[str, tuple[str, ...]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "de": ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    "it": ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"),
    "pt": ("jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez"),
    "nl": ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
}
_DAYS: dict[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "pt": ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}
_DAYS_SHORT: dict[str, tuple[str, ...]] = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"),
    "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
    "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
    "it": ("lun", "mar", "mer", "gio", "ven", "sab", "dom"),
    "pt": ("seg", "ter", "qua", "qui", "sex", "sáb", "dom"),
    "nl": ("ma", "di", "wo", "do", "vr", "za", "zo"),
}


def locale_language(locale: str | None) -> str:
    """Language code of a locale name (`en_US`, `de-DE`, `fr`). Unknown languages fall back to
    English with a warning, as the names tables only cover a few languages."""
    if not locale:
        return "en"
    lang = re.split(r"[-_.@]", locale.strip())[0].lower()
    if lang not in _MONTHS:
        log.warning("locale %r: month and day names are not available for %r, using English (known: %s)",
                    locale, lang, ", ".join(sorted(_MONTHS)))
        return "en"
    return lang


# ---- pattern tokenizer -------------------------------------------------------------------------

_PATTERN_LETTERS = frozenset("GCYxwe" "EyDMdaKhHkmsSzZu")
_NUMERIC = frozenset("CYxwyDdKhHkmsSeu")


def _tokenize(pattern: str, what: str) -> list[tuple[str, int | str]]:
    """Split a Joda pattern into ("lit", text) and (letter, count) tokens; ConfigError on bad letters."""
    tokens: list[tuple[str, int | str]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            j = i + 1
            buf = []
            while True:
                if j >= n:
                    raise ConfigError(f"{what} {pattern!r}: unterminated quote at position {i}")
                if pattern[j] == "'":
                    if j + 1 < n and pattern[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(pattern[j])
                j += 1
            tokens.append(("lit", "".join(buf) if buf or j > i + 1 else "'"))
            i = j + 1
        elif c.isascii() and c.isalpha():
            if c not in _PATTERN_LETTERS:
                raise ConfigError(f"{what} {pattern!r}: illegal pattern letter {c!r} at position {i}")
            j = i
            while j < n and pattern[j] == c:
                j += 1
            tokens.append((c, j - i))
            i = j
        else:
            j = i
            while j < n and pattern[j] != "'" and not (pattern[j].isascii() and pattern[j].isalpha()):
                j += 1
            tokens.append(("lit", pattern[i:j]))
            i = j
    merged: list[tuple[str, int | str]] = []
    for tok in tokens:
        if tok[0] == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", str(merged[-1][1]) + str(tok[1]))
        else:
            merged.append(tok)
    return merged


# ---- formatting --------------------------------------------------------------------------------

# Broken-down time: (year, month, day, hour, minute, second, frac_ns, weekday0, yday, offset_s, zone)
_Broken = tuple[int, int, int, int, int, int, int, int, int, int, Any]

_GRAN_ORDER = {"day": 4, "hour": 3, "minute": 2, "second": 1, "frac": 0}
_LETTER_GRAN = {"G": "day", "C": "day", "Y": "day", "x": "day", "w": "day", "e": "day", "E": "day",
                "y": "day", "D": "day", "M": "day", "d": "day", "u": "day",
                "a": "hour", "K": "hour", "h": "hour", "H": "hour", "k": "hour",
                "m": "minute", "s": "second", "S": "frac", "z": "day", "Z": "day"}


def _broken(ns: int, zone: timezone | ZoneInfo | None) -> _Broken:
    secs, frac = divmod(ns, NS)
    if zone is None:
        offset = 0
    else:
        off = datetime.fromtimestamp(secs, zone).utcoffset()
        offset = int(off.total_seconds()) if off is not None else 0
    days, rem = divmod(secs + offset, 86400)
    y, m, d = civil_from_days(days)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    weekday0 = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    yday = days - days_from_civil(y, 1, 1) + 1
    return (y, m, d, hour, minute, second, frac, weekday0, yday, offset, zone)


def _iso_week(b: _Broken) -> tuple[int, int]:
    y, wk, _ = date(b[0], b[1], b[2]).isocalendar()
    return y, wk


def _pad(value: int, width: int) -> str:
    if value < 0:
        return "-" + str(-value).zfill(width)
    return str(value).zfill(width)


def _offset_text(offset: int, colon: bool) -> str:
    sign = "-" if offset < 0 else "+"
    hh, mm = divmod(abs(offset) // 60, 60)
    return f"{sign}{hh:02d}:{mm:02d}" if colon else f"{sign}{hh:02d}{mm:02d}"


def _zone_id(b: _Broken) -> str:
    zone = b[10]
    if zone is None:
        return "UTC"
    key = getattr(zone, "key", None)
    return key if key else _offset_text(b[9], True)


def _zone_name(b: _Broken) -> str:
    zone = b[10]
    if zone is None:
        return "UTC"
    name = datetime.fromtimestamp(0, UTC).replace(
        year=b[0], month=b[1], day=b[2], hour=b[3], minute=b[4], second=b[5]
    ).astimezone(zone).tzname()
    return name or _offset_text(b[9], True)


def _format_part(letter: str, count: int, lang: str, java: bool) -> Callable[[_Broken], str]:
    """One pattern letter as a function of the broken-down time."""
    if java:  # java.time (used by sprintf's %{{...}}): Y is the week-based year, u the year
        if letter == "Y":
            letter = "x"
        elif letter == "u":
            letter = "y"
    if letter in ("y", "Y", "u", "x"):
        pick: Callable[[_Broken], int] = (lambda b: _iso_week(b)[0]) if letter == "x" else (lambda b: b[0])
        if count == 2:
            return lambda b: _pad(pick(b) % 100, 2)
        return lambda b: _pad(pick(b), count)
    if letter == "G":
        return lambda b: "AD" if b[0] > 0 else "BC"
    if letter == "C":
        return lambda b: _pad(b[0] // 100, count)
    if letter == "M":
        if count >= 4:
            names = _MONTHS[lang]
            return lambda b: names[b[1] - 1]
        if count == 3:
            short = _MONTHS_SHORT[lang]
            return lambda b: short[b[1] - 1]
        return lambda b: _pad(b[1], count)
    if letter == "E":
        names = _DAYS[lang] if count >= 4 else _DAYS_SHORT[lang]
        return lambda b: names[b[7]]
    if letter == "w":
        return lambda b: _pad(_iso_week(b)[1], count)
    index = {"d": 2, "H": 3, "m": 4, "s": 5, "D": 8}.get(letter)
    if index is not None:
        return lambda b: _pad(b[index], count)
    if letter == "e":
        return lambda b: _pad(b[7] + 1, count)
    if letter == "k":
        return lambda b: _pad(b[3] or 24, count)
    if letter == "K":
        return lambda b: _pad(b[3] % 12, count)
    if letter == "h":
        return lambda b: _pad(b[3] % 12 or 12, count)
    if letter == "a":
        return lambda b: "AM" if b[3] < 12 else "PM"
    if letter == "S":
        return lambda b: str(b[6]).zfill(9)[:count] if count <= 9 else str(b[6]).zfill(9) + "0" * (count - 9)
    if letter == "Z":
        if count == 1:
            return lambda b: _offset_text(b[9], False)
        if count == 2:
            return lambda b: _offset_text(b[9], True)
        return _zone_id
    if letter == "z":
        return _zone_name
    raise ConfigError(f"pattern letter {letter!r} cannot be formatted")


def compile_joda_formatter(pattern: str, tz: str = "UTC", locale: str | None = None,
                           *, java_time: bool = False) -> Callable[[int], str]:
    """Compile a Joda pattern to `f(ns) -> text`.

    Output is cached per time bucket as coarse as the pattern allows (a `YYYY.MM.dd` index name is
    computed once a day, not once an event). In a zone other than UTC a "day" bucket is 15 minutes:
    every real offset is a multiple of 15 minutes, so a bucket never straddles local midnight.
    `java_time=True` reads the pattern as java.time does (Logstash's `%{{...}}`): `Y` is the
    week-based year and `u` the year.
    """
    tokens = _tokenize(pattern, "date format")
    zone = resolve_zone(tz)
    lang = locale_language(locale)
    parts: list[str | Callable[[_Broken], str]] = []
    finest = "day"
    for kind, arg in tokens:
        if kind == "lit":
            parts.append(str(arg))
            continue
        parts.append(_format_part(kind, int(arg), lang, java_time))
        gran = _LETTER_GRAN[kind]
        if _GRAN_ORDER[gran] < _GRAN_ORDER[finest]:
            finest = gran
    if not any(callable(p) for p in parts):
        constant = "".join(str(p) for p in parts)
        return lambda ns: constant
    bucket = {"day": DAY_NS, "hour": 3600 * NS, "minute": 60 * NS, "second": NS, "frac": 0}[finest]
    if zone is not None and bucket > 900 * NS:
        bucket = 900 * NS
    funcs = tuple(parts)

    def render(ns: int) -> str:
        b = _broken(ns, zone)
        return "".join([p if isinstance(p, str) else p(b) for p in funcs])

    if bucket == 0:
        return render
    cache: dict[int, str] = {}

    def cached(ns: int) -> str:
        key = ns // bucket
        text = cache.get(key)
        if text is None:
            if len(cache) >= 4096:
                cache.clear()
            text = cache[key] = render(ns)
        return text

    return cached


_iso_cache: tuple[int, str] = (-1, "")
_iso_last: tuple[int, str] = (-1, "")


def format_iso_ms(ns: int) -> str:
    """Event time as Logstash renders `@timestamp`: `2024-01-23T10:00:00.000Z` (UTC, milliseconds).

    The whole text of the last time is kept (tail stamps a whole batch with one time: py-spy
    showed this function at 4% of a pipeline worker), and the text up to the second (one slot
    each, replaced atomically), since a batch's events mostly share their second."""
    global _iso_cache, _iso_last
    last_ns, text = _iso_last
    if last_ns == ns:
        return text
    secs, frac = divmod(ns, NS)
    cached_secs, prefix = _iso_cache
    if cached_secs != secs:
        days, rem = divmod(secs, 86400)
        y, m, d = civil_from_days(days)
        hh, rem = divmod(rem, 3600)
        mm, ss = divmod(rem, 60)
        prefix = f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
        _iso_cache = (secs, prefix)
    text = f"{prefix}.{frac // 1_000_000:03d}Z"
    _iso_last = (ns, text)
    return text


# ---- parsing -----------------------------------------------------------------------------------

_ISO_RE = re.compile(
    r"([+-]?\d{4,9})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9})\d*)?)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)

_ZONE_ABBREV = {"UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600,
                "CDT": -5 * 3600, "MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
                "CET": 3600, "CEST": 7200, "BST": 3600, "JST": 9 * 3600}


def _parse_offset(text: str) -> int | None:
    """Seconds east of UTC for `Z`, `+0100`, `+01:00`, `-05`; None when not an offset."""
    if text in ("Z", "z"):
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (2, 4):
        return None
    return sign * (int(digits[:2]) * 3600 + int(digits[2:] or 0) * 60)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class _Assembler:
    """Turns local civil fields into epoch ns, honouring an explicit offset or the default zone."""

    def __init__(self, zone: timezone | ZoneInfo | None) -> None:
        self.zone = zone
        self.fixed = _fixed_offset(zone)
        self._offsets: dict[tuple[int, int, int, int], int | None] = {}

    def to_ns(self, y: int, mo: int, d: int, h: int, mi: int, s: int, frac: int, offset: int | None) -> int | None:
        if h > 23 or mi > 59 or s > 59:
            return None
        try:  # date() validates the day of month and is cheaper than the arithmetic in Python
            local = (date(y, mo, d).toordinal() - _EPOCH_ORDINAL) * 86400 + h * 3600 + mi * 60 + s
        except ValueError:
            return None
        if offset is None:
            offset = self.fixed if self.fixed is not None else self._zone_offset(y, mo, d, h, mi)
            if offset is None:
                return None  # a local time the zone skips (DST gap): Joda refuses it, so does Logstash
        return (local - offset) * NS + frac

    def _zone_offset(self, y: int, mo: int, d: int, h: int, mi: int) -> int | None:
        key = (y, mo, d, h * 4 + mi // 15)
        if key in self._offsets:
            return self._offsets[key]
        if len(self._offsets) > 4096:
            self._offsets.clear()
        wall = datetime(y, mo, d, h, mi, tzinfo=self.zone)
        delta = wall.utcoffset()
        off: int | None = int(delta.total_seconds()) if delta is not None else 0
        if wall.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
            off = None  # the round trip lands elsewhere: this wall time does not exist in the zone
        self._offsets[key] = off
        return off


_FRAC_SCALE = tuple(10 ** (9 - n) for n in range(10))


def _frac_ns(digits: str | None) -> int:
    if not digits:
        return 0
    return int(digits[:9].ljust(9, "0"))


class _SecondCache:
    """Whole-second results keyed by the matched fields minus the fraction: the date arithmetic
    and int conversions are done once per distinct second instead of once per line."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: dict[Any, int] = {}

    def put(self, key: Any, ns: int) -> None:
        if len(self.data) >= 4096:
            self.data.clear()
        self.data[key] = ns


def _iso8601_parser(zone: timezone | ZoneInfo | None) -> Callable[[str], int | None]:
    asm = _Assembler(zone)
    match = _ISO_RE.fullmatch
    seconds = _SecondCache()
    cached = seconds.data.get

    def parse(text: str) -> int | None:
        if text.__class__ is not str:
            return None
        m = match(text) or match(text.strip())
        if m is None:
            return None
        g = m.groups()
        frac = g[6]
        frac_ns = int(frac) * _FRAC_SCALE[len(frac)] if frac else 0
        key = g[:6] + g[7:]
        base = cached(key)
        if base is not None:
            return base + frac_ns
        y, mo, d, h, mi, s, _, off = g
        offset = _parse_offset(off) if off else None
        if off and offset is None:
            return None
        base = asm.to_ns(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), 0, offset)
        if base is None:
            return None
        seconds.put(key, base)
        return base + frac_ns

    return parse


_UNIX_RE = re.compile(r"\s*(-?)(\d+)(?:\.(\d*))?\s*")
#: Logstash's UNIX parser refuses seconds beyond a Java int (year 2038).
MAX_UNIX_SECONDS = 2**31 - 1


def _unix_parser(scale_digits: int) -> Callable[[Any], int | None]:
    """UNIX (seconds, scale 9) and UNIX_MS (milliseconds, scale 6): exact decimal arithmetic, so
    `1706004000.123456789` keeps every digit. Numbers are accepted as well as text."""
    unit = 10**scale_digits

    def parse(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            if scale_digits == 9 and value > MAX_UNIX_SECONDS:
                return None
            return value * unit
        if isinstance(value, float):
            value = repr(value)
            if "e" in value or "E" in value:
                value = f"{float(value):.9f}"
        if not isinstance(value, str):
            return None
        m = _UNIX_RE.fullmatch(value)
        if m is None:
            return None
        sign, whole, frac = m.groups()
        if scale_digits == 9 and int(whole) > MAX_UNIX_SECONDS:
            return None  # as Logstash: leaves `UNIX, UNIX_MS` to read 1000000000123 as milliseconds
        ns = int(whole) * unit + (int((frac or "")[:scale_digits].ljust(scale_digits, "0")) if frac else 0)
        return -ns if sign else ns

    return parse


_TAI64N_RE = re.compile(r"@?([0-9a-fA-F]{16})([0-9a-fA-F]{8})")
_TAI64_EPOCH = 0x400000000000000A  # 2**62 + 10 s of TAI-UTC difference, as Logstash subtracts


def _parse_tai64n(text: Any) -> int | None:
    m = _TAI64N_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        return None
    return (int(m.group(1), 16) - _TAI64_EPOCH) * NS + int(m.group(2), 16)


_clock_cache: tuple[float, int, int] = (0.0, 0, 0)


def _now_year_month() -> tuple[int, int]:
    """Current UTC (year, month), refreshed at most once a minute."""
    global _clock_cache
    now = _time.time()
    until, year, month = _clock_cache
    if now >= until:
        t = _time.gmtime(now)
        year, month = t.tm_year, t.tm_mon
        _clock_cache = (now + 60.0, year, month)
    return year, month


def _name_alternation(names: list[str]) -> str:
    uniq = sorted({n for n in names if n}, key=len, reverse=True)
    return "|".join(re.escape(n) for n in uniq)


def _month_lookup(lang: str) -> dict[str, int]:
    """Lower-case month name (long or short, with or without a trailing dot) → month number.
    English names are accepted in every locale: many non-English hosts still log them."""
    lookup: dict[str, int] = {}
    for language in (lang, "en"):
        for names in (_MONTHS[language], _MONTHS_SHORT[language]):
            for i, name in enumerate(names):
                lookup.setdefault(name.lower(), i + 1)
                lookup.setdefault(name.lower().rstrip("."), i + 1)
    return lookup


def _default_year(month: int) -> int:
    """Year for a year-less date: the current one, except that a December date read in January
    belongs to last year and a January date read in December to next year (Logstash's rule)."""
    year, cur_month = _now_year_month()
    if cur_month == 1 and month == 12:
        return year - 1
    if cur_month == 12 and month == 1:
        return year + 1
    return year


def _pivot_year(yy: int) -> int:
    """Two-digit year into the 100-year window centred on now (Joda's pivot)."""
    low = _now_year_month()[0] - 50
    year = low - low % 100 + yy
    return year + 100 if year < low else year


_SIMPLE_LETTERS = frozenset("yYuMdHmsSZ")


def _token_regex(kind: str, count: int, adjacent: bool, day_names: list[str]) -> str:
    if kind in ("y", "Y", "u", "x"):
        return r"\d{2}" if count == 2 else (rf"\d{{{count}}}" if adjacent else r"[+-]?\d{1,9}")
    if kind == "M" and count >= 3:
        return r"[^\W\d_]+\.?"
    if kind == "E":
        return _name_alternation(day_names)
    if kind == "a":
        return "AM|PM"
    if kind == "G":
        return "AD|BC|CE|BCE"
    if kind == "S":
        return rf"\d{{{count}}}" if adjacent else r"\d{1,18}"
    if kind == "Z":
        return r"Z|[+-]\d{2}(?::?\d{2})?" if count < 3 else r"[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*"
    if kind == "z":
        return r"[A-Za-z]{1,5}"
    if kind == "D":
        return rf"\d{{{count}}}" if adjacent else r"\d{1,3}"
    return rf"\d{{{count}}}" if adjacent else r"\d{1,2}"


def _parse_pattern(pattern: str, zone: timezone | ZoneInfo | None, lang: str) -> Callable[[str], int | None]:
    tokens = _tokenize(pattern, "date pattern")
    day_names = list(_DAYS[lang]) + list(_DAYS_SHORT[lang]) + list(_DAYS["en"]) + list(_DAYS_SHORT["en"])
    regex: list[str] = []
    fields: list[tuple[str, int]] = []  # (letter, count), one per regex group
    for idx, (kind, arg) in enumerate(tokens):
        if kind == "lit":
            regex.append(re.escape(str(arg)))
            continue
        nxt = tokens[idx + 1] if idx + 1 < len(tokens) else ("lit", "")
        adjacent = nxt[0] in _NUMERIC or (nxt[0] == "M" and int(nxt[1]) < 3)
        regex.append(f"({_token_regex(kind, int(arg), adjacent, day_names)})")
        fields.append((kind, int(arg)))
    fullmatch = re.compile("".join(regex), re.IGNORECASE).fullmatch
    letters = [k for k, _ in fields]
    simple = (set(letters) <= _SIMPLE_LETTERS and len(letters) == len(set(letters))
              and all(c < 3 for k, c in fields if k == "Z"))
    months = _month_lookup(lang)
    asm = _Assembler(zone)
    if simple:
        return _simple_parser(fullmatch, fields, months, asm)
    assemble = _general_assembler(fields, months, asm)
    cache: dict[str, int] = {}

    def parse(text: str) -> int | None:
        if text.__class__ is not str:
            return None
        hit = cache.get(text)
        if hit is not None:
            return hit
        m = fullmatch(text)
        if m is None:
            return None
        ns = assemble(m.groups())
        if ns is not None:
            if len(cache) >= 4096:
                cache.clear()
            cache[text] = ns
        return ns

    return parse


def _simple_parser(fullmatch: Callable[[str], re.Match[str] | None], fields: list[tuple[str, int]],
                   months: dict[str, int], asm: _Assembler) -> Callable[[str], int | None]:
    """Straight-line parsing for patterns made of y/M/d/H/m/s/S/Z only (nearly all real ones).

    Results are cached per whole second: keyed by the text itself when the pattern has no
    fraction, else by the matched fields minus the fraction (busy logs repeat their seconds)."""
    pos = {k: i for i, (k, _) in enumerate(fields)}
    counts = dict(fields)
    year_letter = next((k for k in ("y", "Y", "u") if k in pos), "")
    iy = pos.get(year_letter, -1)
    two_digit = counts.get(year_letter) == 2
    imo = pos.get("M", -1)
    month_text = counts.get("M", 0) >= 3
    i_d, i_h, i_mi, i_s = pos.get("d", -1), pos.get("H", -1), pos.get("m", -1), pos.get("s", -1)
    i_fr, i_z = pos.get("S", -1), pos.get("Z", -1)
    to_ns = asm.to_ns
    cache = _SecondCache()
    cached = cache.data.get

    def assemble(g: tuple[str, ...]) -> int | None:
        if imo >= 0:
            mo = months.get(g[imo].lower(), -1) if month_text else int(g[imo])
        else:
            mo = 1
        if iy >= 0:
            y = int(g[iy])
            if two_digit:
                y = _pivot_year(y)
        else:
            y = _default_year(mo)
        offset = None
        if i_z >= 0:
            offset = _parse_offset(g[i_z])
            if offset is None:
                return None
        return to_ns(
            y, mo,
            int(g[i_d]) if i_d >= 0 else 1,
            int(g[i_h]) if i_h >= 0 else 0,
            int(g[i_mi]) if i_mi >= 0 else 0,
            int(g[i_s]) if i_s >= 0 else 0,
            0,
            offset,
        )

    if i_fr < 0:
        def parse_whole(text: str) -> int | None:
            if text.__class__ is not str:
                return None
            ns = cached(text)
            if ns is not None:
                return ns
            m = fullmatch(text)
            if m is None:
                return None
            ns = assemble(m.groups())
            if ns is not None:
                cache.put(text, ns)
            return ns

        return parse_whole

    def parse_fraction(text: str) -> int | None:
        if text.__class__ is not str:
            return None
        m = fullmatch(text)
        if m is None:
            return None
        g = m.groups()
        frac = g[i_fr][:9]
        frac_ns = int(frac) * _FRAC_SCALE[len(frac)]
        key = g[:i_fr] + g[i_fr + 1:]
        base = cached(key)
        if base is None:
            base = assemble(g)
            if base is None:
                return None
            cache.put(key, base)
        return base + frac_ns

    return parse_fraction


#: A zone id seen in the text: its assembler, None for UTC, False when unknown.
_ZoneLookup = _Assembler | Literal[False] | None


def _general_assembler(fields: list[tuple[str, int]], months: dict[str, int],
                       asm: _Assembler) -> Callable[[tuple[str, ...]], int | None]:
    """Every other letter: 12-hour clocks, day of year, week dates, zone ids and names."""
    has_year = any(k in ("y", "Y", "u") for k, _ in fields)
    zones: dict[str, _ZoneLookup] = {}

    def assemble(g: tuple[str, ...]) -> int | None:
        y = mo = d = doy = weekyear = week = dow = -1
        h = mi = s = frac = 0
        pm = False
        offset: int | None = None
        zone_asm: _Assembler | None = None
        for (kind, count), v in zip(fields, g, strict=True):
            if kind in ("y", "Y", "u"):
                y = _pivot_year(int(v)) if count == 2 else int(v)
            elif kind == "M":
                mo = int(v) if count < 3 else months.get(v.lower(), 0)
            elif kind == "d":
                d = int(v)
            elif kind in ("H", "k"):
                h = int(v) % 24 if kind == "k" else int(v)
            elif kind in ("h", "K"):
                h = int(v) % 12
            elif kind == "a":
                pm = v.upper() == "PM"
            elif kind == "m":
                mi = int(v)
            elif kind == "s":
                s = int(v)
            elif kind == "S":
                frac = _frac_ns(v)
            elif kind == "D":
                doy = int(v)
            elif kind == "x":
                weekyear = _pivot_year(int(v)) if count == 2 else int(v)
            elif kind == "w":
                week = int(v)
            elif kind == "e":
                dow = int(v)
            elif kind == "Z" and count < 3:
                offset = _parse_offset(v)
                if offset is None:
                    return None
            elif kind == "Z":
                found = _lookup_zone(v, zones)
                if found is False:
                    return None
                if found is None:  # a UTC id in the text beats the configured default zone
                    offset = 0
                else:
                    zone_asm = found
            elif kind == "z":
                offset = _ZONE_ABBREV.get(v.upper())
                if offset is None:
                    return None
        if pm:
            h += 12
        if week > 0:
            try:
                day = date.fromisocalendar(weekyear, week, dow if dow > 0 else 1)
            except ValueError:
                return None
            y, mo, d = day.year, day.month, day.day
        if y < 0 and not has_year:
            y = _default_year(mo)
        if doy > 0 and mo < 0:
            if not 1 <= doy <= 366:
                return None
            y, mo, d = civil_from_days(days_from_civil(y, 1, 1) + doy - 1)
        mo = 1 if mo < 0 else mo
        d = 1 if d < 0 else d
        if zone_asm is not None:
            return zone_asm.to_ns(y, mo, d, h, mi, s, frac, None)
        return asm.to_ns(y, mo, d, h, mi, s, frac, offset)

    return assemble


def _lookup_zone(name: str, cache: dict[str, _ZoneLookup]) -> _ZoneLookup:
    """A zone id written in the text (`ZZZ`): an assembler for that zone (kept, so its offset
    cache serves later lines), None for UTC, False when unknown."""
    if name in cache:
        return cache[name]
    try:
        zone = resolve_zone(name)
    except ConfigError:
        found: _ZoneLookup = False
    else:
        found = None if zone is None else _Assembler(zone)
    if len(cache) < 1024:
        cache[name] = found
    return found


def compile_joda_parser(pattern: str, tz: str | None = None,
                        locale: str | None = None) -> Callable[[str], int | None]:
    """Compile a date pattern to `f(text) -> ns | None` (None: no match).

    `pattern` is a Joda pattern or one of Logstash's names: ISO8601, UNIX (epoch seconds, fraction
    allowed), UNIX_MS, TAI64N. `tz` applies to inputs that carry no zone; `locale` picks month and
    day names. A year-less pattern takes the current year, except that a December date parsed in
    January takes the previous one. Bad patterns and zones raise ConfigError.
    """
    zone = resolve_zone(tz)
    special = pattern.strip().upper()
    if special == "ISO8601":
        return _iso8601_parser(zone)
    if special == "UNIX":
        return _unix_parser(9)
    if special == "UNIX_MS":
        return _unix_parser(6)
    if special == "TAI64N":
        return _parse_tai64n
    if not pattern:
        raise ConfigError("empty date pattern")
    return _parse_pattern(pattern, zone, locale_language(locale))


def parse_iso8601(text: str) -> int | None:
    """ISO-8601 text to ns (zone-less text is UTC); None when it is not ISO-8601."""
    return _ISO_PARSE_UTC(text)


_ISO_PARSE_UTC = _iso8601_parser(None)


def format_iso_precise(ns: int) -> str:
    """ISO-8601 UTC with as many fraction digits as the value needs (3, 6 or 9), so a time stored
    in a field keeps its nanoseconds when it has them."""
    text = format_iso_ms(ns)
    sub_ms = ns % 1_000_000
    if not sub_ms:
        return text
    if not sub_ms % 1000:
        return f"{text[:-1]}{sub_ms // 1000:03d}Z"
    return f"{text[:-1]}{sub_ms:06d}Z"
