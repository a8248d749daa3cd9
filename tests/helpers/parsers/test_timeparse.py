"""Ruby strptime semantics of Fluentd's time_format."""

from __future__ import annotations

import pytest

from logpipe.helpers.parsers.timeparse import compile_time_parser

S = 10**9
DOC_TIME = 1362020400 * S  # 2013-02-28T03:00:00Z


@pytest.mark.parametrize("fmt, text, expected", [
    ("%d/%b/%Y:%H:%M:%S %z", "28/Feb/2013:12:00:00 +0900", DOC_TIME),
    ("%Y-%m-%dT%H:%M:%S.%N%z", "2013-02-28T12:00:00.123456789+09:00", DOC_TIME + 123456789),
    ("%Y-%m-%dT%H:%M:%S.%L%z", "2013-02-28T03:00:00.5Z", DOC_TIME + S // 2),
    ("%Y-%m-%d %H:%M:%S.%3N", "2013-02-28 03:00:00.007", DOC_TIME + 7_000_000),
    ("%s", "1362020400", DOC_TIME),
    ("%iso8601", "2013-02-28T03:00:00Z", DOC_TIME),
    ("%iso8601", "2013-02-28T03:00:00.25+00:00", DOC_TIME + S // 4),
    ("%b %d %H:%M:%S %Y", "Feb  28 03:00:00 2013", DOC_TIME),
    ("%m/%d/%Y %I:%M:%S %p", "02/28/2013 03:00:00 AM", DOC_TIME),
    ("%m/%d/%Y %I:%M:%S %p", "02/27/2013 03:00:00 PM", DOC_TIME - 12 * 3600 * S),
    ("%F %T", "2013-02-28 03:00:00", DOC_TIME),
    ("%Y%m%d%H%M%S", "20130228030000", DOC_TIME),
])
def test_formats_in_utc(fmt: str, text: str, expected: int) -> None:
    assert compile_time_parser("string", fmt, utc=True)(text) == expected


def test_zones_follow_fluentd() -> None:
    text = "2013-02-28 12:00:00"
    assert compile_time_parser("string", "%Y-%m-%d %H:%M:%S", timezone_name="Asia/Tokyo")(text) == DOC_TIME
    assert compile_time_parser("string", "%Y-%m-%d %H:%M:%S", timezone_name="+09:00")(text) == DOC_TIME
    assert compile_time_parser("string", "%Y-%m-%d %H:%M:%S", localtime=False)(text) == DOC_TIME + 9 * 3600 * S
    # An offset written in the text wins over the configured zone.
    assert compile_time_parser("string", "%Y-%m-%d %H:%M:%S %z", timezone_name="Europe/Paris")(
        text + " +0900") == DOC_TIME


def test_numeric_types_keep_nanoseconds() -> None:
    assert compile_time_parser("float")("1362020400.000000001") == DOC_TIME + 1
    assert compile_time_parser("float")(1362020400) == DOC_TIME
    assert compile_time_parser("unixtime")("1362020400") == DOC_TIME
    assert compile_time_parser("unixtime")("abc") is None


def test_text_that_does_not_fit_is_none() -> None:
    parse = compile_time_parser("string", "%Y-%m-%d", utc=True)
    assert parse("2013-13-01") is None and parse("yesterday") is None and parse(5) is None
