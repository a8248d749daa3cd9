"""date filter: patterns, target, timezone, locale, failures, bad settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.date import DateFilter

S = 10**9


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * S  # type: ignore[misc,arg-type]


def run(record: dict[str, Any], **settings: Any) -> tuple[Event, DateFilter]:
    f = DateFilter(**settings)
    ev = Event("t", 0, record)
    assert f.filter([ev]) == [ev]
    return ev, f


def test_apache_timestamp_sets_event_time() -> None:
    ev, f = run({"timestamp": "23/Jan/2024:11:00:00 +0100"}, match=["timestamp", "dd/MMM/yyyy:HH:mm:ss Z"])
    assert ev.time == utc(2024, 1, 23, 10)
    assert "tags" not in ev.record and f.failures == 0


def test_patterns_tried_in_order() -> None:
    match = ["t", "dd/MMM/yyyy:HH:mm:ss Z", "ISO8601", "UNIX", "UNIX_MS", "TAI64N"]
    f = DateFilter(match=match)
    events = [Event("t", 0, {"t": v}) for v in (
        "23/Jan/2024:10:00:00 +0000", "2024-01-23T10:00:00.123456789Z", "1706004000", 1706004000,
        "1706004000.5", "@4000000065af8e2a00000000",
    )]
    f.filter(events)
    assert [e.time for e in events] == [
        utc(2024, 1, 23, 10), utc(2024, 1, 23, 10) + 123456789, utc(2024, 1, 23, 10), utc(2024, 1, 23, 10),
        utc(2024, 1, 23, 10) + S // 2, utc(2024, 1, 23, 10),
    ]


def test_unix_ms_number() -> None:
    ev, _ = run({"t": 1706004000123}, match=["t", "UNIX_MS"])
    assert ev.time == utc(2024, 1, 23, 10) + 123_000_000


def test_number_reaches_joda_pattern_as_text() -> None:
    ev, _ = run({"t": 20240123}, match=["t", "yyyyMMdd"])
    assert ev.time == utc(2024, 1, 23)


def test_failure_tags_counts_and_skips_decoration() -> None:
    f = DateFilter(match=["t", "ISO8601"], add_tag=["dated"])
    good, bad, missing = Event("t", 5, {"t": "2024-01-23"}), Event("t", 5, {"t": "nope"}), Event("t", 5, {})
    f.filter([good, bad, missing])
    assert good.time == utc(2024, 1, 23) and good.record["tags"] == ["dated"]
    assert bad.time == 5 and bad.record["tags"] == ["_dateparsefailure"]
    assert missing.record == {} and missing.time == 5
    assert f.failures == 1


def test_custom_tag_on_failure() -> None:
    ev, _ = run({"t": "x"}, match=["t", "UNIX"], tag_on_failure=["bad_date", "x"])
    assert ev.record["tags"] == ["bad_date", "x"]


def test_other_target_gets_iso_text() -> None:
    ev, _ = run({"t": "2024-01-23T10:00:00.123456789Z"}, match=["t", "ISO8601"], target="[parsed][at]")
    assert ev.record["parsed"] == {"at": "2024-01-23T10:00:00.123456789Z"}
    assert ev.time == 0


def test_nested_source_field() -> None:
    ev, _ = run({"log": {"ts": "2024-01-23 10:00:00,5"}}, match=["[log][ts]", "yyyy-MM-dd HH:mm:ss,SSS"])
    assert ev.time == utc(2024, 1, 23, 10) + S // 2


def test_timezone_for_zoneless_text() -> None:
    ev, _ = run({"t": "2024-07-01 12:00:00"}, match=["t", "yyyy-MM-dd HH:mm:ss"], timezone="Europe/Paris")
    assert ev.time == utc(2024, 7, 1, 10)


def test_timezone_from_field() -> None:
    f = DateFilter(match=["t", "yyyy-MM-dd HH:mm"], timezone="%{tz}")
    a = Event("t", 0, {"t": "2024-01-23 11:00", "tz": "Europe/Paris"})
    b = Event("t", 0, {"t": "2024-01-23 05:00", "tz": "America/New_York"})
    c = Event("t", 0, {"t": "2024-01-23 05:00", "tz": "Not/AZone"})
    f.filter([a, b, c])
    assert a.time == b.time == utc(2024, 1, 23, 10)
    assert c.record["tags"] == ["_dateparsefailure"]


def test_locale_month_names() -> None:
    ev, _ = run({"t": "23 März 2024"}, match=["t", "dd MMMM yyyy"], locale="de")
    assert ev.time == utc(2024, 3, 23)


def test_array_value_last_wins() -> None:
    ev, _ = run({"t": ["2024-01-01", "2024-01-23"]}, match=["t", "yyyy-MM-dd"])
    assert ev.time == utc(2024, 1, 23)
    bad, _ = run({"t": ["2024-01-01", "junk"]}, match=["t", "yyyy-MM-dd"])
    assert bad.record["tags"] == ["_dateparsefailure"]


@pytest.mark.parametrize(
    "settings, setting",
    [
        ({"match": ["t"]}, "match"),
        ({"match": ["t", "yyyy-qq"]}, "match"),
        ({"match": ["t", "'unterminated"]}, "match"),
        ({"match": ["t", "ISO8601"], "timezone": "Mars/Base"}, "timezone"),
        ({"match": ["t", "yyyy-qq"], "timezone": "%{tz}"}, "match"),
        ({}, None),
    ],
)
def test_bad_settings(settings: dict[str, Any], setting: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        DateFilter(**settings)
    assert info.value.setting == setting


async def test_date_in_a_configured_pipeline(state_dir: str) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.pipeline import CollectOutput

    cfg = """
    input { generator { message => "23/Jan/2024:11:00:00.5 +0100" count => 1 } }
    filter { date { match => ["message", "dd/MMM/yyyy:HH:mm:ss.S Z"] add_tag => ["dated"] } }
    """
    sink = CollectOutput()
    assert await Pipeline.from_string(cfg, outputs=[sink], state_dir=state_dir).run() == 0
    assert sink.events[0].time == utc(2024, 1, 23, 10) + S // 2
    assert sink.events[0].record["tags"] == ["dated"]


def test_bad_date_pattern_points_at_the_config(state_dir: str) -> None:
    from logpipe.pipeline import Pipeline

    cfg = 'input { generator { count => 1 } }\nfilter { date { match => ["t", "yyyy-qq"] } }'
    with pytest.raises(ConfigError) as info:
        Pipeline.from_string(cfg, state_dir=state_dir)
    assert info.value.pos is not None and info.value.pos.line == 2
