"""json filter."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.json import JsonFilter


def run(record: dict[str, Any], **settings: Any) -> tuple[Event, JsonFilter]:
    f = JsonFilter(**settings)
    ev = Event("t", 0, record)
    assert f.filter([ev]) == [ev]
    return ev, f


def test_merge_into_top_level() -> None:
    ev, _ = run({"message": '{"a": 1, "b": {"c": [1, 2]}}'}, source="message", add_tag=["parsed"])
    assert ev.record == {"message": '{"a": 1, "b": {"c": [1, 2]}}', "a": 1, "b": {"c": [1, 2]}, "tags": ["parsed"]}


def test_target_takes_any_json() -> None:
    ev, _ = run({"m": "[1, 2]"}, source="m", target="[doc][list]")
    assert ev.record["doc"] == {"list": [1, 2]}
    ev2, _ = run({"m": '"text"'}, source="m", target="v")
    assert ev2.record["v"] == "text"


def test_timestamp_key_sets_event_time() -> None:
    ev, _ = run({"m": '{"@timestamp": "2024-01-23T10:00:00Z", "x": 1}'}, source="m")
    assert ev.time == 1706004000 * 10**9 and ev.record["x"] == 1
    bad, _ = run({"m": '{"@timestamp": "not a time"}'}, source="m")
    assert bad.record["_@timestamp"] == "not a time" and bad.record["tags"] == ["_timestampparsefailure"]


def test_invalid_json_tags_and_counts() -> None:
    ev, f = run({"m": "{not json"}, source="m", add_tag=["parsed"])
    assert ev.record == {"m": "{not json", "tags": ["_jsonparsefailure"]}
    assert f.failures == 1


def test_non_object_without_target_fails() -> None:
    ev, f = run({"m": "[1, 2]"}, source="m")
    assert ev.record["tags"] == ["_jsonparsefailure"] and f.failures == 1


def test_skip_on_invalid_json() -> None:
    ev, f = run({"m": "{oops"}, source="m", skip_on_invalid_json=True)
    assert ev.record == {"m": "{oops"} and f.failures == 0


def test_custom_failure_tag_and_non_string_source() -> None:
    ev, _ = run({"m": 5}, source="m", tag_on_failure=["bad"])
    assert ev.record["tags"] == ["bad"]


def test_missing_and_empty_source_untouched() -> None:
    ev, f = run({"other": 1}, source="m")
    assert ev.record == {"other": 1}
    ev2, _ = run({"m": "  "}, source="m")
    assert ev2.record == {"m": "  "} and f.failures == 0


def test_source_required() -> None:
    with pytest.raises(ConfigError):
        JsonFilter()
