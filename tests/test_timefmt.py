"""Joda pattern formatting and parsing."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from logpipe.errors import ConfigError
from logpipe.timefmt import (
    civil_from_days,
    compile_joda_formatter,
    compile_joda_parser,
    days_from_civil,
    format_iso_ms,
    locale_language,
    parse_iso8601,
)

T0 = 1706004000_123_456_789  # 2024-01-23T10:00:00.123456789Z (a Tuesday, ISO week 4)
S = 10**9


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, frac: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()) * S + frac


def test_civil_roundtrip() -> None:
    for day in (-800_000, -1, 0, 1, 19_745, 60 * 365, 2_932_896):
        assert days_from_civil(*civil_from_days(day)) == day
    assert days_from_civil(2000, 2, 29) == 11016
    assert civil_from_days(0) == (1970, 1, 1)


# ---- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("YYYY.MM.dd", "2024.01.23"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2024-01-23T10:00:00.123+0000"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSSZZ", "2024-01-23T10:00:00.123456789+00:00"),
        ("xxxx.ww", "2024.04"),
        ("yy/M/d H:m:s", "24/1/23 10:0:0"),
        ("EEE, dd MMM yyyy", "Tue, 23 Jan 2024"),
        ("EEEE MMMM DDD e D", "Tuesday January 023 2 23"),
        ("hh:mm a", "10:00 AM"),
        ("'it''s' ''", "it's '"),
        ("G C ZZZ z", "AD 20 UTC UTC"),
        ("kk KK", "10 10"),
    ],
)
def test_format(pattern: str, expected: str) -> None:
    assert compile_joda_formatter(pattern)(T0) == expected


def test_format_week_year_differs_from_year() -> None:
    # 2024-12-30 is in ISO week 1 of 2025
    ns = utc_ns(2024, 12, 30)
    assert compile_joda_formatter("xxxx-ww yyyy")(ns) == "2025-01 2024"


def test_format_time_zone_and_day_cache() -> None:
    fmt = compile_joda_formatter("yyyy.MM.dd HH ZZ", tz="Europe/Paris")
    assert fmt(utc_ns(2024, 1, 23, 23, 30)) == "2024.01.24 00 +01:00"
    assert fmt(utc_ns(2024, 7, 1, 21, 59)) == "2024.07.01 23 +02:00"
    day = compile_joda_formatter("YYYY.MM.dd", tz="Europe/Paris")
    # same UTC day, two local days: the bucket must not straddle local midnight
    assert day(utc_ns(2024, 1, 23, 22, 59)) == "2024.01.23"
    assert day(utc_ns(2024, 1, 23, 23, 0)) == "2024.01.24"
    utc_day = compile_joda_formatter("YYYY.MM.dd")
    assert utc_day(utc_ns(2024, 1, 23, 23, 59, 59)) == "2024.01.23"
    assert utc_day(utc_ns(2024, 1, 24)) == "2024.01.24"


def test_format_locale() -> None:
    assert compile_joda_formatter("dd MMMM", locale="de_DE")(T0) == "23 Januar"
    assert compile_joda_formatter("EEEE", locale="fr")(T0) == "mardi"


def test_format_constant_pattern() -> None:
    assert compile_joda_formatter("'static'")(T0) == "static"


@pytest.mark.parametrize("pattern", ["yyyy-qq", "'open", "YYYY.MM.ddX"])
def test_bad_pattern(pattern: str) -> None:
    with pytest.raises(ConfigError):
        compile_joda_formatter(pattern)
    with pytest.raises(ConfigError):
        compile_joda_parser(pattern)


def test_unknown_zone() -> None:
    with pytest.raises(ConfigError) as info:
        compile_joda_parser("yyyy", tz="Mars/Olympus")
    assert info.value.setting == "timezone"


@pytest.mark.parametrize("tz", ["Europe", "+99", "-05:75"])
def test_zone_folder_or_offset_out_of_range_is_config_error(tz: str) -> None:
    # "Europe" is a folder of the tz database (an OSError inside zoneinfo); +99 is no offset.
    with pytest.raises(ConfigError) as info:
        compile_joda_parser("yyyy", tz=tz)
    assert info.value.setting == "timezone"


def test_parse_zone_id_in_text_that_is_not_a_zone_is_no_match() -> None:
    assert compile_joda_parser("yyyy-MM-dd HH:mm:ss ZZZ")("2024-01-23 11:00:00 Europe") is None


def test_format_iso_ms() -> None:
    assert format_iso_ms(T0) == "2024-01-23T10:00:00.123Z"
    assert format_iso_ms(T0 + S) == "2024-01-23T10:00:01.123Z"
    assert format_iso_ms(T0) == "2024-01-23T10:00:00.123Z"


# ---- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, text, expected",
    [
        ("dd/MMM/yyyy:HH:mm:ss Z", "23/Jan/2024:11:00:00 +0100", utc_ns(2024, 1, 23, 10)),
        ("dd/MMM/yyyy:HH:mm:ss Z", "23/jan/2024:05:00:00 -05:00", utc_ns(2024, 1, 23, 10)),
        ("yyyy-MM-dd HH:mm:ss,SSS", "2024-01-23 10:00:00,123", utc_ns(2024, 1, 23, 10, frac=123_000_000)),
        ("yyyy-MM-dd HH:mm:ss.SSS", "2024-01-23 10:00:00.123456789", T0),
        ("yyyyMMddHHmmss", "20240123100000", utc_ns(2024, 1, 23, 10)),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSZZ", "2024-01-23T10:00:00.5Z", utc_ns(2024, 1, 23, 10, frac=500_000_000)),
        ("MMMM d, yyyy h:mm a", "January 5, 2024 3:07 PM", utc_ns(2024, 1, 5, 15, 7)),
        ("MMMM d, yyyy h:mm a", "January 5, 2024 12:07 AM", utc_ns(2024, 1, 5, 0, 7)),
        ("EEE MMM dd HH:mm:ss yyyy", "Tue Jan 23 10:00:00 2024", utc_ns(2024, 1, 23, 10)),
        ("dd.MM.yy", "23.01.24", utc_ns(2024, 1, 23)),
        ("yyyy-D", "2024-60", utc_ns(2024, 2, 29)),
        ("xxxx-'W'ww-e", "2025-W01-1", utc_ns(2024, 12, 30)),
        ("yyyy-MM-dd HH:mm:ss ZZZ", "2024-01-23 11:00:00 Europe/Paris", utc_ns(2024, 1, 23, 10)),
        ("yyyy-MM-dd HH:mm:ss z", "2024-01-23 05:00:00 EST", utc_ns(2024, 1, 23, 10)),
    ],
)
def test_parse(pattern: str, text: str, expected: int) -> None:
    assert compile_joda_parser(pattern)(text) == expected


@pytest.mark.parametrize(
    "pattern, text",
    [
        ("dd/MMM/yyyy:HH:mm:ss Z", "23/Foo/2024:11:00:00 +0100"),
        ("yyyy-MM-dd", "2024-02-30"),
        ("yyyy-MM-dd", "2023-02-29"),
        ("yyyy-MM-dd HH:mm", "2024-01-01 24:00"),
        ("yyyy-MM-dd", "2024-01-01 trailing"),
        ("yyyy-MM-dd HH:mm:ss ZZZ", "2024-01-23 11:00:00 Nowhere/Land"),
        ("yyyy-MM-dd HH:mm:ss z", "2024-01-23 05:00:00 QQQ"),
        ("yyyy-MM-dd", ""),
    ],
)
def test_parse_no_match(pattern: str, text: str) -> None:
    assert compile_joda_parser(pattern)(text) is None


def test_parse_not_a_string() -> None:
    assert compile_joda_parser("yyyy")(2024) is None  # type: ignore[arg-type]
    assert compile_joda_parser("ISO8601")(None) is None  # type: ignore[arg-type]


def test_parse_zone_for_zoneless_inputs() -> None:
    paris = compile_joda_parser("yyyy-MM-dd HH:mm:ss", tz="Europe/Paris")
    assert paris("2024-01-23 11:00:00") == utc_ns(2024, 1, 23, 10)
    assert paris("2024-07-23 12:00:00") == utc_ns(2024, 7, 23, 10)  # summer time
    # an explicit offset in the text wins over the default zone
    with_offset = compile_joda_parser("yyyy-MM-dd HH:mm:ss Z", tz="Europe/Paris")
    assert with_offset("2024-01-23 10:00:00 +0000") == utc_ns(2024, 1, 23, 10)
    assert compile_joda_parser("yyyy-MM-dd HH:mm", tz="+05:30")("2024-01-23 15:30") == utc_ns(2024, 1, 23, 10)
    # so does a UTC zone id: it must not fall back to the default zone
    with_id = compile_joda_parser("yyyy-MM-dd HH:mm:ss ZZZ", tz="Europe/Paris")
    assert with_id("2024-01-23 10:00:00 UTC") == utc_ns(2024, 1, 23, 10)
    assert with_id("2024-01-23 10:00:00 Etc/UTC") == utc_ns(2024, 1, 23, 10)
    assert with_id("2024-01-23 11:00:00 Europe/Paris") == utc_ns(2024, 1, 23, 10)


def test_parse_missing_year_is_current_year() -> None:
    year = time.gmtime().tm_year
    month = time.gmtime().tm_mon
    parse = compile_joda_parser("MMM dd HH:mm:ss")
    got = parse("Jun 05 10:00:00")
    assert got == utc_ns(year, 6, 5, 10)
    dec = parse("Dec 31 23:59:59")
    assert dec == utc_ns(year - 1 if month == 1 else year, 12, 31, 23, 59, 59)


def test_syslog_single_digit_day_padding() -> None:
    year = time.gmtime().tm_year
    parse = compile_joda_parser("MMM  d HH:mm:ss")
    assert parse("Mar  5 10:00:00") == utc_ns(year, 3, 5, 10)
    assert compile_joda_parser("MMM dd HH:mm:ss")("Mar  5 10:00:00") is None


def test_parse_locale_month_names() -> None:
    de = compile_joda_parser("dd. MMMM yyyy", locale="de")
    assert de("23. März 2024") == utc_ns(2024, 3, 23)
    assert de("23. Mär 2024") == utc_ns(2024, 3, 23)
    fr = compile_joda_parser("dd MMM yyyy", locale="fr-FR")
    assert fr("23 févr. 2024") == utc_ns(2024, 2, 23)
    assert fr("23 févr 2024") == utc_ns(2024, 2, 23)


def test_unknown_locale_falls_back_to_english(caplog: pytest.LogCaptureFixture) -> None:
    assert locale_language("xx_YY") == "en"
    assert "using English" in caplog.text
    assert compile_joda_parser("MMM yyyy", locale="xx")("Feb 2024") == utc_ns(2024, 2, 1)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-23T10:00:00.123456789Z", T0),
        ("2024-01-23T10:00:00.123Z", utc_ns(2024, 1, 23, 10, frac=123_000_000)),
        ("2024-01-23 10:00:00", utc_ns(2024, 1, 23, 10)),
        ("2024-01-23T11:00:00+01:00", utc_ns(2024, 1, 23, 10)),
        ("2024-01-23T11:00:00+0100", utc_ns(2024, 1, 23, 10)),
        ("2024-01-23T05:00:00,5-05", utc_ns(2024, 1, 23, 10, frac=500_000_000)),
        ("2024-01-23", utc_ns(2024, 1, 23)),
        ("2024-01-23T10:00", utc_ns(2024, 1, 23, 10)),
        ("not a date", None),
        ("2024-13-01T00:00:00Z", None),
    ],
)
def test_iso8601(text: str, expected: int | None) -> None:
    assert compile_joda_parser("ISO8601")(text) == expected
    assert parse_iso8601(text) == expected


def test_iso8601_zone_only_for_zoneless() -> None:
    p = compile_joda_parser("ISO8601", tz="America/New_York")
    assert p("2024-01-23 05:00:00") == utc_ns(2024, 1, 23, 10)
    assert p("2024-01-23T10:00:00Z") == utc_ns(2024, 1, 23, 10)


def test_unix() -> None:
    p = compile_joda_parser("UNIX")
    assert p("1706004000") == 1706004000 * S
    assert p("1706004000.123456789") == T0
    assert p(" 1706004000.5 ") == 1706004000 * S + 500_000_000
    assert p(1706004000) == 1706004000 * S  # type: ignore[arg-type]
    assert p(1706004000.5) == 1706004000 * S + 500_000_000  # type: ignore[arg-type]
    assert p("-1.5") == -1_500_000_000
    assert p("12abc") is None
    assert p(True) is None  # type: ignore[arg-type]


def test_unix_ms() -> None:
    p = compile_joda_parser("UNIX_MS")
    assert p("1706004000123") == 1706004000123 * 10**6
    assert p("1706004000123.456") == 1706004000123456000
    assert p("") is None


def test_tai64n() -> None:
    p = compile_joda_parser("TAI64N")
    assert p("@4000000065af8e5012345678") == (0x65AF8E50 - 10) * S + 0x12345678
    assert p("4000000065af8e5012345678") == (0x65AF8E50 - 10) * S + 0x12345678
    assert p("@40000000zz") is None


def test_december_line_read_in_january_is_last_year(monkeypatch: pytest.MonkeyPatch) -> None:
    from logpipe import timefmt

    class FakeClock:
        gmtime = staticmethod(time.gmtime)

        @staticmethod
        def time() -> float:
            return utc_ns(2025, 1, 2) / S

    monkeypatch.setattr(timefmt, "_time", FakeClock)
    monkeypatch.setattr(timefmt, "_clock_cache", (0.0, 0, 0))
    parse = compile_joda_parser("MMM dd HH:mm:ss")
    assert parse("Dec 31 23:59:59") == utc_ns(2024, 12, 31, 23, 59, 59)
    assert parse("Jan 01 00:00:01") == utc_ns(2025, 1, 1, 0, 0, 1)
    assert compile_joda_parser("dd.MM.yy")("01.02.80") == utc_ns(1980, 2, 1)
    assert compile_joda_parser("dd.MM.yy")("01.02.74") == utc_ns(2074, 2, 1)


def test_fractions_within_one_second_stay_distinct() -> None:
    # whole-second results are cached; the fraction must still come from each line
    p = compile_joda_parser("yyyy-MM-dd HH:mm:ss.SSS")
    iso = compile_joda_parser("ISO8601")
    base = utc_ns(2024, 1, 23, 10)
    for frac in ("001", "5", "999", "123456789", "1234567891"):
        expected = base + int(frac[:9].ljust(9, "0"))
        assert p(f"2024-01-23 10:00:00.{frac}") == expected
        assert iso(f"2024-01-23T10:00:00.{frac}Z") == expected
    assert iso("2024-01-23T11:00:00.5+01:00") == base + 500_000_000
