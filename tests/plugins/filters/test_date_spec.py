"""Vectors derived from logstash-filter-date's spec (spec/filters/date_spec.rb): the same
match/timezone/locale settings, inputs, and the event time Logstash gives them."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.event import Event
from logpipe.timefmt import format_iso_ms, parse_iso8601
from logpipe_plugins.filters.date import DateFilter

FAIL = None

ISO = {
    "2001-01-01T00:00:00-0800": "2001-01-01T08:00:00.000Z",
    "1974-03-02T04:09:09-0800": "1974-03-02T12:09:09.000Z",
    "2010-05-03T08:18:18+00:00": "2010-05-03T08:18:18.000Z",
    "2004-07-04T12:27:27-00:00": "2004-07-04T12:27:27.000Z",
    "2001-09-05T16:36:36+0000": "2001-09-05T16:36:36.000Z",
    "2001-11-06T20:45:45-0000": "2001-11-06T20:45:45.000Z",
    "2001-12-07T23:54:54Z": "2001-12-07T23:54:54.000Z",
    "2010-05-03T08:18:18.123+00:00": "2010-05-03T08:18:18.123Z",
    "2004-07-04T12:27:27.123-04:00": "2004-07-04T16:27:27.123Z",
    "2001-09-05T16:36:36.123+0700": "2001-09-05T09:36:36.123Z",
    "2001-11-06T20:45:45.123-0000": "2001-11-06T20:45:45.123Z",
    "2001-12-07T23:54:54.123Z": "2001-12-07T23:54:54.123Z",
    "2001-12-07T23:54:54,123Z": "2001-12-07T23:54:54.123Z",
    "2001-11-06 20:45:45.123-0000": "2001-11-06T20:45:45.123Z",
    "2001-12-07 23:54:54.123Z": "2001-12-07T23:54:54.123Z",
    "2001-12-07 23:54:54,123Z": "2001-12-07T23:54:54.123Z",
    "2001-11-06 20:45:45.123": "2001-11-06T20:45:45.123Z",
    "2001-11-06 20:45:45,123": "2001-11-06T20:45:45.123Z",
}
UNIX: dict[Any, Any] = {"0": "1970-01-01T00:00:00.000Z", "1000000000": "2001-09-09T01:46:40.000Z",
                        "1478207457": "2016-11-03T21:10:57.000Z", 0: "1970-01-01T00:00:00.000Z",
                        1000000000: "2001-09-09T01:46:40.000Z", 1478207457: "2016-11-03T21:10:57.000Z",
                        "%{bad_value}": FAIL, "1350414944.123456": "2012-10-16T19:15:44.123Z",
                        1350414944.123456: "2012-10-16T19:15:44.123Z"}
UNIX_MS: dict[Any, Any] = {"0": "1970-01-01T00:00:00.000Z", "456": "1970-01-01T00:00:00.456Z",
                           "1000000000123": "2001-09-09T01:46:40.123Z", 0: "1970-01-01T00:00:00.000Z",
                           456: "1970-01-01T00:00:00.456Z", 1000000000123: "2001-09-09T01:46:40.123Z"}
BOTH: dict[Any, Any] = {"0": "1970-01-01T00:00:00.000Z", "1000000000": "2001-09-09T01:46:40.000Z",
                        "1000000000123": "2001-09-09T01:46:40.123Z", "1478207457": "2016-11-03T21:10:57.000Z",
                        "1478207457.456": "2016-11-03T21:10:57.456Z", 0: "1970-01-01T00:00:00.000Z",
                        1000000000: "2001-09-09T01:46:40.000Z", 1000000000123: "2001-09-09T01:46:40.123Z",
                        1478207457: "2016-11-03T21:10:57.000Z", 1478207457.456: "2016-11-03T21:10:57.456Z"}

#: (name, settings, record, expected ISO time or FAIL, the clock's (year, month) for year-less dates)
VECTORS: list[tuple[str, dict[str, Any], dict[str, Any], str | None, tuple[int, int] | None]] = [
    *((f"ISO8601 {k}", {"match": ["mydate", "ISO8601"], "locale": "en", "timezone": "UTC"}, {"mydate": k}, v, None)
      for k, v in ISO.items()),
    *((f"UNIX {k!r}", {"match": ["mydate", "UNIX"], "locale": "en"}, {"mydate": k}, v, None) for k, v in UNIX.items()),
    *((f"UNIX_MS {k!r}", {"match": ["mydate", "UNIX_MS"], "locale": "en"}, {"mydate": k}, v, None)
      for k, v in UNIX_MS.items()),
    *((f"UNIX,UNIX_MS {k!r}", {"match": ["mydate", "UNIX", "UNIX_MS"], "locale": "en"}, {"mydate": k}, v, None)
      for k, v in BOTH.items()),
    ("SimpleDateFormat, this year", {"match": ["mydate", "MMM dd HH:mm:ss Z"], "locale": "en"},
     {"mydate": "Nov 24 01:29:01 -0800"}, "2013-11-24T09:29:01.000Z", (2013, 11)),
    ("TAI64N", {"match": ["t", "TAI64N"], "locale": "en"}, {"t": "4000000050d506482dbdf024"},
     "2012-12-22T01:00:46.767Z", None),
    ("TAI64N with @", {"match": ["t", "TAI64N"], "locale": "en"}, {"t": "@4000000050d506482dbdf024"},
     "2012-12-22T01:00:46.767Z", None),
    ("deep field", {"match": ["[data][deep]", "ISO8601"], "locale": "en"},
     {"data": {"deep": "2013-01-01T00:00:00.000Z"}}, "2013-01-01T00:00:00.000Z", None),
    ("failing parse", {"match": ["thedate", "yyyy/MM/dd"], "locale": "en"}, {"thedate": "2013/Apr/21"}, FAIL, None),
    ("yyyy/MM/dd UTC", {"match": ["thedate", "yyyy/MM/dd"], "timezone": "UTC"}, {"thedate": "2013/04/21"},
     "2013-04-21T00:00:00.000Z", None),
    ("timezone Nov", {"match": ["mydate", "yyyy MMM dd HH:mm:ss"], "locale": "en",
                      "timezone": "America/Los_Angeles"}, {"mydate": "2013 Nov 24 01:29:01"},
     "2013-11-24T09:29:01.000Z", None),
    ("timezone Jun", {"match": ["mydate", "yyyy MMM dd HH:mm:ss"], "locale": "en",
                      "timezone": "America/Los_Angeles"}, {"mydate": "2013 Jun 24 01:29:01"},
     "2013-06-24T08:29:01.000Z", None),
    ("timezone from event", {"match": ["mydate", "yyyy MMM dd HH:mm:ss"], "locale": "en", "timezone": "%{mytz}"},
     {"mydate": "2013 Jun 24 01:29:01", "mytz": "America/Los_Angeles"}, "2013-06-24T08:29:01.000Z", None),
    ("ISO8601 tz from event, Caracas -4", {"match": ["mydate", "ISO8601"], "locale": "en", "timezone": "%{mytz}"},
     {"mydate": "2007-12-09T01:00:00", "mytz": "America/Caracas"}, "2007-12-09T05:00:00.000Z", None),
    ("ISO8601 tz from event, Caracas -4:30", {"match": ["mydate", "ISO8601"], "locale": "en", "timezone": "%{mytz}"},
     {"mydate": "2007-12-09T10:00:00", "mytz": "America/Caracas"}, "2007-12-09T14:30:00.000Z", None),
    ("ISO8601 tz from event, Caracas 2016", {"match": ["mydate", "ISO8601"], "locale": "en", "timezone": "%{mytz}"},
     {"mydate": "2016-05-01T08:18:18.123", "mytz": "America/Caracas"}, "2016-05-01T12:18:18.123Z", None),
    ("next year's DST in CET", {"match": ["message", "yyyy MMM dd HH:mm:ss"], "locale": "en", "timezone": "CET"},
     {"message": "2016 Mar 26 02:00:37"}, "2016-03-26T01:00:37.000Z", (2016, 3)),
    ("December in January", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en", "timezone": "UTC"},
     {"message": "Dec 31 23:59:00"}, "2013-12-31T23:59:00.000Z", (2014, 1)),
    ("January in December", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en", "timezone": "UTC"},
     {"message": "Jan 01 01:00:00"}, "2014-01-01T01:00:00.000Z", (2013, 12)),
    ("December in January, tz from event", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en",
                                            "timezone": "%{mytz}"},
     {"message": "Dec 31 23:59:00", "mytz": "UTC"}, "2013-12-31T23:59:00.000Z", (2014, 1)),
    ("January in December, tz from event", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en",
                                            "timezone": "%{mytz}"},
     {"message": "Jan 01 01:00:00", "mytz": "UTC"}, "2014-01-01T01:00:00.000Z", (2013, 12)),
    ("CET before the 2016 gap", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en", "timezone": "CET"},
     {"message": "Mar 27 01:59:59"}, "2016-03-27T00:59:59.000Z", (2016, 3)),
    ("CET inside the 2016 gap", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en", "timezone": "CET"},
     {"message": "Mar 27 02:00:01"}, FAIL, (2016, 3)),
    ("CET after the 2016 gap", {"match": ["message", "MMM dd HH:mm:ss"], "locale": "en", "timezone": "CET"},
     {"message": "Mar 27 03:00:01"}, "2016-03-27T01:00:01.000Z", (2016, 3)),
    ("locale fr", {"match": ["message", "dd MMMM yyyy"], "locale": "fr", "timezone": "UTC"},
     {"message": "14 juillet 1789"}, "1789-07-14T00:00:00.000Z", None),
    ("locale fr-FR", {"match": ["message", "dd MMMM yyyy"], "locale": "fr-FR", "timezone": "UTC"},
     {"message": "14 juillet 1789"}, "1789-07-14T00:00:00.000Z", None),
    ("locale fr_FR", {"match": ["message", "dd MMMM yyyy"], "locale": "fr_FR", "timezone": "UTC"},
     {"message": "14 juillet 1789"}, "1789-07-14T00:00:00.000Z", None),
    ("http date", {"match": ["timestamp", "dd/MMM/yyyy:HH:mm:ss Z"], "locale": "en"},
     {"timestamp": "25/Mar/2013:20:33:56 +0000"}, "2013-03-25T20:33:56.000Z", None),
    ("english by default", {"match": ["message", "dd MMMM yyyy"], "timezone": "UTC"},
     {"message": "01 September 2014"}, "2014-09-01T00:00:00.000Z", None),
]

BEFORE = parse_iso8601("2000-01-01T00:00:00Z")


@pytest.mark.parametrize(("name", "settings", "record", "expected", "clock"), VECTORS, ids=[v[0] for v in VECTORS])
def test_spec_vector(name: str, settings: dict[str, Any], record: dict[str, Any], expected: str | None,
                     clock: tuple[int, int] | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if clock is not None:
        monkeypatch.setattr("logpipe.timefmt._now_year_month", lambda: clock)
    ev = Event("t", BEFORE, dict(record))
    DateFilter(**settings).filter([ev])
    if expected is FAIL:
        assert ev.time == BEFORE and ev.record.get("tags") == ["_dateparsefailure"]
    else:
        assert "tags" not in ev.record, ev.record
        assert format_iso_ms(ev.time) == expected
    for key, value in record.items():
        assert ev.record[key] == value  # the source field is left as it was


def test_success_and_failure_decorations() -> None:
    ok = Event("t", BEFORE, {"thedate": "2013/04/21"})
    bad = Event("t", BEFORE, {"thedate": "2013/Apr/21"})
    DateFilter(match=["thedate", "yyyy/MM/dd"], add_tag=["tagged"], timezone="UTC",
               tag_on_failure=["date_failed"]).filter([ok, bad])
    assert ok.record["tags"] == ["tagged"]
    assert bad.record["tags"] == ["date_failed"]


def test_match_needs_a_pattern() -> None:
    from logpipe.errors import ConfigError

    with pytest.raises(ConfigError):
        DateFilter(match=["mydate"])
