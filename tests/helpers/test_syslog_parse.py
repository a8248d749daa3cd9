"""RFC 3164 / 5424 parsing: the examples of the RFCs, the year rule, structured data escapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logpipe.helpers.syslog_parse import SyslogParser, bsd_time, parse_structured_data


def _ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000_000


def test_rfc3164_example() -> None:
    p = SyslogParser(tz="UTC", now=lambda: _ns(2026, 10, 20) / 1e9)
    m = p.parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert m is not None and m.rfc == 3164
    assert (m.priority, m.facility, m.severity) == (34, 4, 2)
    assert (m.host, m.app, m.procid) == ("mymachine", "su", None)
    assert m.message == "'su root' failed for lonvick on /dev/pts/8"
    assert m.time == _ns(2026, 10, 11, 22, 14, 15)


@pytest.mark.parametrize(("now", "stamp", "year"), [
    ((2027, 1, 1, 0, 5), "Dec 31 23:59:00", 2026),  # read just after new year: last year
    ((2026, 12, 31, 23, 59), "Jan  1 00:01:00", 2027),  # sender's clock a little ahead
    ((2026, 6, 1), "Jun  1 00:00:00", 2026),
])
def test_rfc3164_year_is_the_nearest(now: tuple[int, ...], stamp: str, year: int) -> None:
    ns = bsd_time(stamp, UTC, _ns(*now) / 1e9)
    assert ns is not None and datetime.fromtimestamp(ns / 1e9, UTC).year == year


def test_rfc3164_zone_applies() -> None:
    p = SyslogParser(tz="+02:00", now=lambda: _ns(2026, 6, 2) / 1e9)
    m = p.parse("<13>Jun  1 12:00:00 h app[1]: x")
    assert m is not None and m.time == _ns(2026, 6, 1, 10)


def test_rfc3164_without_header_keeps_priority() -> None:
    m = SyslogParser().parse("<14>just a message")
    assert m is not None and m.priority == 14 and m.message == "just a message" and m.time is None


@pytest.mark.parametrize("line", ["no pri at all", "<999>Oct 11 22:14:15 h x", "<abc>x", ""])
def test_invalid_lines(line: str) -> None:
    assert SyslogParser().parse(line) is None


def test_rfc5424_examples() -> None:
    p = SyslogParser()
    m = p.parse('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                '[exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"] '
                '\ufeffAn application event log entry')
    assert m is not None and m.rfc == 5424 and m.version == 1
    assert m.time == _ns(2003, 10, 11, 22, 14, 15) + 3_000_000
    assert (m.host, m.app, m.procid, m.msgid) == ("mymachine.example.com", "evntslog", None, "ID47")
    assert m.structured_data == {"exampleSDID@32473": {"iut": "3", "eventSource": "Application"},
                                 "examplePriority@32473": {"class": "high"}}
    assert m.message == "An application event log entry"
    m = p.parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time")
    assert m is not None and m.time == _ns(2003, 8, 24, 12, 14, 15) + 3000 and m.procid == "8710"
    m = p.parse("<34>1 - - - - - -")
    assert m is not None and m.time is None and m.message == "" and m.host is None


def test_rfc5424_forced_rejects_rfc3164() -> None:
    assert SyslogParser("rfc5424").parse("<13>Oct 11 22:14:15 h app: x") is None
    assert SyslogParser("rfc3164").parse("<13>1 - - - - - - x") is not None  # read as a headerless 3164 line


def test_structured_data_escapes() -> None:
    assert parse_structured_data(r'[a k="q\"uote\]back\\slash" e=""][b]') == {
        "a": {"k": 'q"uote]back\\slash', "e": ""}, "b": {}}
