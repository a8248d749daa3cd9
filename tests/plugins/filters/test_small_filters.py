"""urldecode, syslog_pri, uuid, clone, prune, truncate, throttle and the refused ruby filter,
with vectors from the Logstash plugins' specs and docs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.clone import CloneFilter
from logpipe_plugins.filters.prune import PruneFilter
from logpipe_plugins.filters.ruby import RubyFilter
from logpipe_plugins.filters.syslog_pri import SyslogPriFilter
from logpipe_plugins.filters.throttle import ThrottleFilter
from logpipe_plugins.filters.truncate import TruncateFilter, truncate_utf8
from logpipe_plugins.filters.urldecode import UrldecodeFilter
from logpipe_plugins.filters.uuid import UuidFilter

NS = 1_000_000_000


def ev(record: dict[str, Any], t: int = 0) -> Event:
    return Event("t", t, record)


# ---- urldecode ----
def test_urldecode_field_all_fields_and_arrays() -> None:
    (e,) = UrldecodeFilter().filter([ev({"message": "http://logstash.net/docs/1.3.2/filters/urldecode%20x+y"})])
    assert e.record["message"] == "http://logstash.net/docs/1.3.2/filters/urldecode x+y"
    (a,) = UrldecodeFilter(all_fields=True).filter([ev({"a": "%C3%A9t%C3%A9", "b": ["%2F", 3], "c": 1})])
    assert a.record == {"a": "été", "b": ["/", 3], "c": 1}


def test_urldecode_invalid_bytes_tag_and_charset() -> None:
    (bad,) = UrldecodeFilter(add_tag=["ok"]).filter([ev({"message": "%FF%FE"})])
    assert bad.record == {"message": "%FF%FE", "tags": ["_urldecodefailure"]}
    (latin,) = UrldecodeFilter(charset="ISO-8859-1").filter([ev({"message": "caf%E9"})])
    assert latin.record["message"] == "café"
    with pytest.raises(ConfigError, match="unknown charset"):
        UrldecodeFilter(charset="no-such")


# ---- syslog_pri ----
@pytest.mark.parametrize(("pri", "codes", "names"), [
    (13, (1, 5), ("user-level", "notice")), ("0", (0, 0), ("kernel", "emergency")),
    (191, (23, 7), ("local7", "debug")), (["34"], (4, 2), ("security/authorization", "critical")),
])
def test_syslog_pri_legacy(pri: Any, codes: tuple[int, int], names: tuple[str, str]) -> None:
    (e,) = SyslogPriFilter(ecs_compatibility="disabled").filter([ev({"syslog_pri": pri})])
    r = e.record
    assert (r["syslog_facility_code"], r["syslog_severity_code"]) == codes
    assert (r["syslog_facility"], r["syslog_severity"]) == names


def test_syslog_pri_ecs_default_and_failure() -> None:
    (e,) = SyslogPriFilter(ecs_compatibility="v8").filter([ev({})])
    assert e.record["log"]["syslog"] == {"facility": {"code": 1, "name": "user-level"},
                                         "severity": {"code": 5, "name": "notice"}}
    (bad,) = SyslogPriFilter(use_labels=False).filter([ev({"syslog_pri": "x"})])
    assert bad.record["tags"] == ["_syslogpriparsefailure"]
    (nolabels,) = SyslogPriFilter(use_labels=False).filter([ev({"syslog_pri": 13})])
    assert "syslog_facility" not in nolabels.record


# ---- uuid ----
def test_uuid_target_and_overwrite() -> None:
    a, b = UuidFilter(target="uuid").filter([ev({}), ev({"uuid": "keep"})])
    assert uuid.UUID(a.record["uuid"]).version == 4 and b.record["uuid"] == "keep"
    (c,) = UuidFilter(target="[@metadata][id]", overwrite=True).filter([Event("t", 0, {}, {"id": "old"})])
    assert c.meta["id"] != "old" and uuid.UUID(c.meta["id"])


# ---- clone ----
def test_clone_legacy_sets_type_and_decorates_only_copies() -> None:
    out = CloneFilter(clones=["a", "b"], add_tag=["cloned"], ecs_compatibility="disabled").filter([ev({"m": 1})])
    assert [e.record.get("type") for e in out] == [None, "a", "b"]
    assert "tags" not in out[0].record and out[1].record["tags"] == ["cloned"]
    out[1].record["m"] = 2
    assert out[0].record["m"] == 1


def test_clone_ecs_tags_the_copy() -> None:
    out = CloneFilter(clones=["sun"], ecs_compatibility="v1").filter([ev({"m": 1})])
    assert out[1].record == {"m": 1, "tags": ["sun"]}
    assert CloneFilter().filter([ev({})]) == [ev({})]


# ---- prune ----
def test_prune_names_and_values() -> None:
    rec = {"firstname": "Borat", "lastname": "Sagdiyev", "fullname": "Borat Sagdiyev", "country": "Kazakhstan",
           "location": "Somethere", "hobby": "Cloud", "%{hmm}": "x", "status": ["200", "404"]}
    (w,) = PruneFilter(whitelist_names=["^firstname$", "^(last|full)name$"]).filter([ev(dict(rec))])
    assert sorted(w.record) == ["firstname", "fullname", "lastname"]
    (b,) = PruneFilter(blacklist_names=["^country$", "name$"]).filter([ev(dict(rec))])
    assert sorted(b.record) == ["%{hmm}", "hobby", "location", "status"]
    (d,) = PruneFilter().filter([ev(dict(rec))])
    assert "%{hmm}" not in d.record
    (v,) = PruneFilter(whitelist_values={"status": "^2", "hobby": "^Clo"}, blacklist_values={"country": "stan$"}) \
        .filter([ev(dict(rec))])
    assert v.record["status"] == ["200"] and v.record["hobby"] == "Cloud" and "country" not in v.record


def test_prune_interpolate_and_bad_regex() -> None:
    (e,) = PruneFilter(whitelist_names=["^%{keep}$", "^keep$"], interpolate=True).filter(
        [ev({"keep": "a", "a": 1, "b": 2})])
    assert e.record == {"keep": "a", "a": 1}
    with pytest.raises(ConfigError, match="invalid regex"):
        PruneFilter(blacklist_names=["("])


# ---- truncate ----
def test_truncate_bytes_not_characters() -> None:
    assert truncate_utf8("hello world", 5) == "hello"
    assert truncate_utf8("ééé", 3) == "é"  # the second é would straddle the limit
    (e,) = TruncateFilter(length_bytes=3, fields=["a", "[n][b]"]).filter(
        [ev({"a": "abcdef", "n": {"b": ["xyzw", 5]}, "c": "untouched"})])
    assert e.record == {"a": "abc", "n": {"b": ["xyz", 5]}, "c": "untouched"}
    (all_,) = TruncateFilter(length_bytes=2).filter([ev({"a": "abc", "n": {"b": "xyz"}, "i": 12345})])
    assert all_.record == {"a": "ab", "n": {"b": "xy"}, "i": 12345}


# ---- throttle ----
def test_throttle_after_count_per_key_and_period() -> None:
    f = ThrottleFilter(key="%{host}", after_count=2, period="60", add_tag=["throttled"])
    events = [ev({"host": "a"}, 10 * NS) for _ in range(4)] + [ev({"host": "b"}, 10 * NS)] + \
        [ev({"host": "a"}, 70 * NS)]
    f.filter(events)
    assert [("throttled" in e.record.get("tags", [])) for e in events] == [False, False, True, True, False, False]


def test_throttle_before_count_and_bounds() -> None:
    f = ThrottleFilter(key="k", before_count=3, add_tag=["early"], max_counters=2)
    events = [ev({}, i * NS) for i in range(4)]
    f.filter(events)
    assert [("early" in e.record.get("tags", [])) for e in events] == [True, True, False, False]
    g = ThrottleFilter(key="%{n}", after_count=1, max_counters=3)
    g.filter([ev({"n": i}) for i in range(50)])
    assert len(g._slots) <= 4
    with pytest.raises(ConfigError, match="before_count"):
        ThrottleFilter(key="k")


def test_ruby_is_refused_with_a_way_forward() -> None:
    with pytest.raises(ConfigError, match="Python filter plugin"):
        RubyFilter(code="event.cancel")
