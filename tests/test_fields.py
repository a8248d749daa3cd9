"""Field references, accessors, sprintf and the common filter options (decorate)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from logpipe.decorate import build_decorator
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import (
    MISSING,
    add_tag,
    compile_deleter,
    compile_getter,
    compile_setter,
    compile_sprintf,
    delete_field,
    get_field,
    has_sprintf,
    parse_ref,
    set_field,
    timestamp_to_ns,
)

T0 = 1706004000_123_456_789  # 2024-01-23T10:00:00.123456789Z


def ev(record: dict | None = None, meta: dict | None = None, time: int = T0) -> Event:
    return Event("test", time, record if record is not None else {}, meta)


# ---- parse_ref --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, path",
    [
        ("[a][b]", ("a", "b")),
        ("a", ("a",)),
        ("[a]", ("a",)),
        ("a.b", ("a.b",)),
        ("[@metadata][x]", ("@metadata", "x")),
        ("@timestamp", ("@timestamp",)),
        ("[arr][0]", ("arr", "0")),
        ("a[b][c]", ("a", "b", "c")),
        ("[a b][c-d]", ("a b", "c-d")),
        (" [a] ", ("a",)),
    ],
)
def test_parse_ref(ref: str, path: tuple[str, ...]) -> None:
    assert parse_ref(ref) == path


@pytest.mark.parametrize("ref", ["[a][b", "", "   ", "[]", "[a][]", "[a]b", "a]", "[a]]", "[[a]]"])
def test_parse_ref_rejects_malformed(ref: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ref(ref)
    assert "field reference" in info.value.message


# ---- getters ----------------------------------------------------------------------------------


def test_getter_levels() -> None:
    e = ev({"a": 1, "n": {"b": {"c": 3}, "z": None}, "a.b": "dotted"})
    assert compile_getter("a")(e) == 1
    assert compile_getter("[n][b]")(e) == {"c": 3}
    assert compile_getter("[n][b][c]")(e) == 3
    assert compile_getter("a.b")(e) == "dotted"
    assert compile_getter("[n][z]")(e) is None  # a present null is not MISSING
    for ref in ("nope", "[n][nope]", "[n][b][nope]", "[a][b]", "[a][b][c]", "[nope][b][c]"):
        assert compile_getter(ref)(e) is MISSING, ref


def test_getter_accepts_tuple() -> None:
    assert compile_getter(("x", "y"))(ev({"x": {"y": 2}})) == 2


def test_getter_list_indices() -> None:
    e = ev({"arr": [10, {"k": "v"}, 30], "d": {"0": "key zero"}, "s": "text"})
    assert compile_getter("[arr][0]")(e) == 10
    assert compile_getter("[arr][-1]")(e) == 30
    assert compile_getter("[arr][1][k]")(e) == "v"
    assert compile_getter("[arr][9]")(e) is MISSING
    assert compile_getter("[arr][x]")(e) is MISSING
    assert compile_getter("[d][0]")(e) == "key zero"  # a numeric key in a dict is a key
    assert compile_getter("[s][0]")(e) is MISSING  # strings are not indexed


def test_getter_metadata_and_timestamp() -> None:
    e = ev({"@metadata": "record field, not meta"}, meta={"x": 1, "n": {"y": 2}})
    assert compile_getter("[@metadata][x]")(e) == 1
    assert compile_getter("[@metadata][n][y]")(e) == 2
    assert compile_getter("[@metadata]")(e) == {"x": 1, "n": {"y": 2}}
    assert compile_getter("[@metadata][nope]")(e) is MISSING
    assert compile_getter("@timestamp")(e) == "2024-01-23T10:00:00.123Z"
    assert compile_getter("[@timestamp]")(ev(time=0)) == "1970-01-01T00:00:00.000Z"
    assert compile_getter("[@timestamp][x]")(e) is MISSING


def test_timestamp_before_epoch() -> None:
    assert compile_getter("@timestamp")(ev(time=-1_500_000_000)) == "1969-12-31T23:59:58.500Z"


def test_missing_is_falsy_singleton() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING


# ---- setters ----------------------------------------------------------------------------------


def test_setter_creates_intermediates() -> None:
    e = ev({})
    compile_setter("a")(e, 1)
    compile_setter("[n][b][c]")(e, 3)
    compile_setter("[n][x]")(e, 4)
    assert e.record == {"a": 1, "n": {"b": {"c": 3}, "x": 4}}


def test_setter_replaces_scalar_intermediate() -> None:
    e = ev({"n": "scalar"})
    compile_setter("[n][b]")(e, 1)
    assert e.record == {"n": {"b": 1}}


def test_setter_list_index() -> None:
    e = ev({"arr": [1, 2, {"k": 0}]})
    compile_setter("[arr][0]")(e, "one")
    compile_setter("[arr][2][k]")(e, 9)
    compile_setter("[arr][5]")(e, "appended")
    assert e.record["arr"] == ["one", 2, {"k": 9}, "appended"]


def test_setter_replaces_list_addressed_by_name() -> None:
    # A non-numeric key cannot address a list: the list gives way to a dict, the value is kept.
    e = ev({"arr": [1, 2], "nested": [[1], {"a": 1}]})
    compile_setter("[arr][k]")(e, 5)
    compile_setter("[nested][0][name]")(e, "x")
    compile_setter("[nested][1][a]")(e, 2)
    assert e.record == {"arr": {"k": 5}, "nested": [{"name": "x"}, {"a": 2}]}


def test_setter_metadata() -> None:
    e = ev()
    compile_setter("[@metadata][a][b]")(e, 1)
    assert e.meta == {"a": {"b": 1}} and e.record == {}
    compile_setter("[@metadata]")(e, {"fresh": True})
    assert e.meta == {"fresh": True}
    compile_setter("[@metadata]")(e, "not a dict")
    assert e.meta == {"fresh": True}


@pytest.mark.parametrize(
    "value, expected",
    [
        (1_000_000_000, 1_000_000_000),  # int: nanoseconds
        (1.5, 1_500_000_000),  # float: epoch seconds
        ("2024-01-23T10:00:00.123456789Z", T0),
        ("2024-01-23T11:00:00.123456789+01:00", T0),
        (datetime(2024, 1, 23, 10, 0, 0, 123456, tzinfo=UTC), T0 - 789),
    ],
)
def test_setter_timestamp(value: object, expected: int) -> None:
    e = ev(time=0)
    compile_setter("@timestamp")(e, value)
    assert e.time == expected


def test_setter_timestamp_invalid_tags_and_keeps_value() -> None:
    e = ev({"tags": ["x"]}, time=5)
    set_field(e, "@timestamp", "yesterday-ish")
    assert e.time == 5
    assert e.record["_@timestamp"] == "yesterday-ish"
    assert e.record["tags"] == ["x", "_timestampparsefailure"]
    assert timestamp_to_ns(True) is None and timestamp_to_ns(float("nan")) is None


# ---- deleters ---------------------------------------------------------------------------------


def test_deleter() -> None:
    e = ev({"a": 1, "n": {"b": 2, "c": 3}, "arr": [1, 2, 3]}, meta={"m": 1})
    assert compile_deleter("a")(e) == 1
    assert compile_deleter("a")(e) is MISSING
    assert compile_deleter("[n][b]")(e) == 2
    assert compile_deleter("[n][zz][y]")(e) is MISSING
    assert compile_deleter("[arr][1]")(e) == 2
    assert compile_deleter("[arr][7]")(e) is MISSING
    assert compile_deleter("[@metadata][m]")(e) == 1
    assert e.record == {"n": {"c": 3}, "arr": [1, 3]} and e.meta == {}


def test_deleter_timestamp_and_meta_root() -> None:
    e = ev(meta={"k": 1})
    assert compile_deleter("@timestamp")(e) == "2024-01-23T10:00:00.123Z"
    assert e.time == T0
    assert compile_deleter("[@metadata]")(e) == {"k": 1}
    assert e.meta == {}


def test_conveniences() -> None:
    e = ev()
    set_field(e, "[a][b]", 1)
    assert get_field(e, "[a][b]") == 1
    assert get_field(e, ("a", "b")) == 1
    assert delete_field(e, "[a][b]") == 1
    assert get_field(e, "[a][b]") is MISSING


def test_add_tag() -> None:
    e = ev()
    add_tag(e, "a")
    add_tag(e, "a")
    add_tag(e, "b")
    assert e.record["tags"] == ["a", "b"]
    s = ev({"tags": "single"})
    add_tag(s, "other")
    assert s.record["tags"] == ["single", "other"]


# ---- sprintf ----------------------------------------------------------------------------------


def test_sprintf_constant() -> None:
    f = compile_sprintf("no references here")
    assert f(ev()) == "no references here"
    assert compile_sprintf("100% {sure}")(ev()) == "100% {sure}"
    assert not has_sprintf("100% {sure}")
    assert has_sprintf("a %{b} c")
    assert not has_sprintf("%{unclosed")


def test_sprintf_fields() -> None:
    e = ev({"message": "world", "a": {"b": 7}, "f": 1.5, "t": True, "n": None, "l": ["x", "y", 3],
            "d": {"k": [1]}, "nested": [{"a": 1}]}, meta={"idx": "logs"})
    assert compile_sprintf("Hello %{message}")(e) == "Hello world"
    assert compile_sprintf("%{message}")(e) == "world"
    assert compile_sprintf("%{message}!")(e) == "world!"
    assert compile_sprintf("%{[a][b]}-%{f}-%{t}")(e) == "7-1.5-true"
    assert compile_sprintf("%{[@metadata][idx]}-x")(e) == "logs-x"
    assert compile_sprintf("%{l}")(e) == "x,y,3"  # Logstash joins arrays with ','
    assert compile_sprintf("%{d}")(e) == '{"k":[1]}'
    assert compile_sprintf("%{nested}")(e) == '{"a":1}'
    assert compile_sprintf("%{@timestamp}")(e) == "2024-01-23T10:00:00.123Z"


def test_sprintf_missing_left_as_written() -> None:
    e = ev({"n": None})
    assert compile_sprintf("a %{nope} b %{[x][y]}")(e) == "a %{nope} b %{[x][y]}"
    assert compile_sprintf("%{n}")(e) == "%{n}"
    assert compile_sprintf("%{}")(e) == "%{}"


def test_sprintf_time_formats() -> None:
    e = ev()
    assert compile_sprintf("logs-%{+YYYY.MM.dd}")(e) == "logs-2024.01.23"
    assert compile_sprintf("%{+%s}")(e) == "1706004000"
    assert compile_sprintf("%{+xxxx.ww}")(e) == "2024.04"
    assert compile_sprintf("%{{yyyy-MM-dd'T'HH}}")(e) == "2024-01-23T10"
    assert compile_sprintf("w%{{YYYY-'W'ww}}")(e) == "w2024-W04"
    assert compile_sprintf("%{{%Y/%m/%d}}")(e) == "2024/01/23"
    assert compile_sprintf("%{{TIME_NOW}}")(e).endswith("Z")


def test_sprintf_bad_reference_is_config_error() -> None:
    with pytest.raises(ConfigError):
        compile_sprintf("%{[a][b}")
    with pytest.raises(ConfigError):
        compile_sprintf("%{+YYYY.qq}")


# ---- decorate ---------------------------------------------------------------------------------


def test_decorator_none_when_empty() -> None:
    assert build_decorator({}, [], [], []) is None
    assert build_decorator(None, None, None, None) is None


def test_add_field_sprintf_and_accumulate() -> None:
    deco = build_decorator({"greeting": "Hello %{message}", "from_%{src}": "x", "[n][k]": 5}, [], [], [])
    assert deco is not None
    e = ev({"message": "world", "src": "syslog"})
    deco(e)
    assert e.record["greeting"] == "Hello world"
    assert e.record["from_syslog"] == "x"
    assert e.record["n"] == {"k": "5"}  # Logstash: add_field values are text
    deco(e)  # adding to an existing field turns it into an array
    assert e.record["greeting"] == ["Hello world", "Hello world"]
    assert e.record["from_syslog"] == ["x", "x"]


def test_add_field_array_value() -> None:
    deco = build_decorator({"f": ["a", "%{m}"]}, [], [], [])
    assert deco is not None
    e = ev({"m": "z"})
    deco(e)
    assert e.record["f"] == ["a", "z"]


def test_tags_and_remove() -> None:
    deco = build_decorator({}, ["t1", "t_%{kind}", "t1"], ["drop_me", "[n][%{kind}]"], ["old", "t_%{kind}"])
    assert deco is not None
    e = ev({"kind": "web", "drop_me": 1, "n": {"web": 1, "keep": 2}, "tags": ["old", "keep"]})
    deco(e)
    assert e.record["tags"] == ["keep", "t1"]  # remove_tag runs after add_tag
    assert "drop_me" not in e.record
    assert e.record["n"] == {"keep": 2}


def test_decorator_order_add_then_remove_field() -> None:
    # add_field runs before remove_field: a field added and removed in one block is gone
    deco = build_decorator({"tmp": "x"}, [], ["tmp"], [])
    assert deco is not None
    e = ev()
    deco(e)
    assert "tmp" not in e.record


def test_decorator_metadata_and_timestamp_fields() -> None:
    deco = build_decorator({"[@metadata][index]": "logs-%{+YYYY}", "@timestamp": "2024-01-01T00:00:00Z"}, [], [], [])
    assert deco is not None
    e = ev()
    deco(e)
    assert e.meta == {"index": "logs-2024"}
    assert e.time == 1704067200 * 10**9


def test_remove_tag_on_scalar_tags() -> None:
    deco = build_decorator({}, [], [], ["a"])
    assert deco is not None
    e = ev({"tags": "a"})
    deco(e)
    assert e.record["tags"] == []
    untagged = ev()
    deco(untagged)
    assert "tags" not in untagged.record


def test_decorator_bad_field_name() -> None:
    with pytest.raises(ConfigError):
        build_decorator({"[a][b": "x"}, [], [], [])


def test_remove_tag_ignores_unhashable_tags() -> None:
    deco = build_decorator({}, [], [], ["a", "%{kind}"])
    assert deco is not None
    e = ev({"kind": "b", "tags": ["a", {"x": 1}, ["y"], "b", "c"]})
    deco(e)
    assert e.record["tags"] == [{"x": 1}, ["y"], "c"]
    scalar = ev({"kind": "b", "tags": {"not": "a list"}})
    deco(scalar)
    assert scalar.record["tags"] == {"not": "a list"}


def test_rendered_field_name_that_is_no_reference_is_a_plain_key() -> None:
    # The name comes from event data: a malformed reference must not fail the batch.
    deco = build_decorator({"f_%{name}": "v"}, [], ["r_%{name}"], [])
    assert deco is not None
    e = ev({"name": "a]", "r_a]": 1})
    deco(e)
    assert e.record == {"name": "a]", "f_a]": "v"}
