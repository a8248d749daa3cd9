"""record_transformer filter (Fluentd)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.record_transformer import RecordTransformerFilter


def run(rec: dict[str, Any], tag: str = "web.access.main", **settings: Any) -> Event:
    f = RecordTransformerFilter(**settings)
    ev = Event(tag, 1706004000 * 10**9, rec)
    f.filter([ev])
    return ev


def test_placeholders() -> None:
    ev = run(
        {"method": "GET", "path": "/x", "user": {"name": "bob"}, "n": 5},
        record={
            "summary": '${record["method"]} ${record["path"]}',
            "who": "${record['user']['name']}",
            "old_style": "${method}!",
            "tag": "${tag}",
            "parts": "${tag_parts[0]}/${tag_parts[-1]}",
            "prefix": "${tag_prefix[1]}",
            "suffix": "${tag_suffix[1]}",
            "host": "${hostname}",
            "time": "${time}",
            "count": '${record["n"]}',
            "constant": 7,
        },
    )
    r = ev.record
    assert r["summary"] == "GET /x" and r["who"] == "bob" and r["old_style"] == "GET!"
    assert r["tag"] == "web.access.main" and r["parts"] == "web/main"
    assert r["prefix"] == "web.access" and r["suffix"] == "access.main"
    assert r["host"] == socket.gethostname() and r["time"] == "2024-01-23 10:00:00 +0000"
    assert r["count"] == "5" and r["constant"] == 7


def test_auto_typecast_keeps_single_placeholder_type() -> None:
    ev = run({"n": 5, "l": [1]}, record={"n2": '${record["n"]}', "l2": '${record["l"]}', "s": 'x${record["n"]}'},
             auto_typecast=True)
    assert ev.record["n2"] == 5 and ev.record["l2"] == [1] and ev.record["s"] == "x5"


def test_missing_placeholder_left_as_written() -> None:
    ev = run({}, tag="one", record={"a": '${record["nope"]}', "b": "${tag_parts[3]}", "c": "${tag_prefix[5]}"})
    assert ev.record == {"a": '${record["nope"]}', "b": "${tag_parts[3]}", "c": "${tag_prefix[5]}"}


def test_values_come_from_the_original_record() -> None:
    ev = run({"a": "1"}, record={"a": "2", "b": '${record["a"]}'})
    assert ev.record == {"a": "2", "b": "1"}


def test_placeholder_in_key() -> None:
    ev = run({}, tag="app.web", record={"${tag_parts[1]}_seen": "yes"})
    assert ev.record == {"web_seen": "yes"}


def test_remove_keys_after_adding() -> None:
    ev = run({"password": "x", "user": {"token": "t", "name": "n"}, "keep": 1},
             record={"tmp": "v"}, remove_keys="password, $.user.token,tmp")
    assert ev.record == {"user": {"name": "n"}, "keep": 1}
    ev2 = run({"a": {"b": 1, "c": 2}}, remove_keys=["$['a']['b']"])
    assert ev2.record == {"a": {"c": 2}}


def test_renew_record_and_keep_keys() -> None:
    ev = run({"a": 1, "b": 2, "c": 3}, renew_record=True, keep_keys="a,c", record={"d": '${record["b"]}'})
    assert ev.record == {"a": 1, "c": 3, "d": "2"}


def test_renew_time_key() -> None:
    ev = run({"t": 1700000000}, renew_time_key="t")
    assert ev.time == 1700000000 * 10**9
    iso = run({"t": "2024-01-01T00:00:00Z"}, renew_time_key="t")
    assert iso.time == 1704067200 * 10**9
    bad = run({"t": "junk"}, renew_time_key="t")
    assert bad.time == 1706004000 * 10**9


@pytest.mark.parametrize(
    "settings, setting",
    [({"enable_ruby": True}, "enable_ruby"), ({"record": {"x": '${record["a"].upcase}'}}, "record"),
     ({"keep_keys": "a"}, "keep_keys"), ({"record": {"x": "${1 + 2}"}}, "record")],
)
def test_bad_settings(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        RecordTransformerFilter(**settings)
    assert info.value.setting == setting
