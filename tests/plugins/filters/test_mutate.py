"""mutate: every operation, the fixed order, failures, bad settings."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.mutate import MutateFilter, ruby_split


def run(record: dict[str, Any], meta: dict[str, Any] | None = None, **settings: Any) -> Event:
    f = MutateFilter(**settings)
    ev = Event("t", 1706004000 * 10**9, record, meta)
    out = f.filter([ev])
    assert out == [ev]
    return ev


def test_seed_split_example() -> None:
    ev = run({"t": "2024-01-23", "users": "jose,pedro,maria"}, split={"users": ","})
    assert ev.record["users"] == ["jose", "pedro", "maria"]


def test_seed_add_field_example() -> None:
    ev = run({"message": "world"}, add_field={"greeting": "Hello %{message}"})
    assert ev.record["greeting"] == "Hello world"


# ---- each operation ---------------------------------------------------------------------------


def test_coerce_only_null_fields() -> None:
    ev = run({"a": None, "b": "set"}, coerce={"a": "default", "b": "default", "c": "default"})
    assert ev.record == {"a": "default", "b": "set"}


def test_rename() -> None:
    ev = run({"a": 1, "n": {"x": 2}, "kind": "k"},
             rename={"a": "b", "[n][x]": "[m][y]", "missing": "z", "kind": "%{kind}_renamed"})
    assert ev.record == {"b": 1, "n": {}, "m": {"y": 2}, "k_renamed": "k"}


def test_rename_to_self_keeps_value() -> None:
    ev = run({"a": 1}, rename={"a": "[a]"})
    assert ev.record == {"a": 1}


def test_update_and_replace() -> None:
    ev = run({"a": "old", "host": "h1"}, update={"a": "new-%{host}", "missing": "x"},
             replace={"b": "%{host}", "n": 5})
    assert ev.record == {"a": "new-h1", "host": "h1", "b": "h1", "n": "5"}


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        ("integer", "42", 42),
        ("integer", " 42 ", 42),
        ("integer", "1,000", 1000),
        ("integer", "3.9", 3),
        ("integer", "-3.9", -3),
        ("integer", "1e3", 1000),
        ("integer", 7.8, 7),
        ("integer", True, 1),
        ("integer", ["1", "2"], [1, 2]),
        ("integer_eu", "1.000", 1000),
        ("integer_eu", "1.000,9", 1000),
        ("float", "3.5", 3.5),
        ("float", "1,000.5", 1000.5),
        ("float", 3, 3.0),
        ("float", False, 0.0),
        ("float_eu", "1.000,5", 1000.5),
        ("string", 42, "42"),
        ("string", 1.5, "1.5"),
        ("string", True, "true"),
        ("string", [1, "a"], ["1", "a"]),
        ("boolean", "TRUE", True),
        ("boolean", "y", True),
        ("boolean", "1.0", True),
        ("boolean", "no", False),
        ("boolean", "F", False),
        ("boolean", "", False),
        ("boolean", 1, True),
        ("boolean", 0.0, False),
    ],
)
def test_convert(kind: str, value: Any, expected: Any) -> None:
    ev = run({"v": value}, convert={"v": kind})
    assert ev.record["v"] == expected
    assert type(ev.record["v"]) is type(expected)
    assert "tags" not in ev.record


@pytest.mark.parametrize(
    "kind, value",
    [("integer", "abc"), ("integer", "12abc"), ("float", "nan"), ("float", "inf"), ("float", "1_0"),
     ("integer", ["1", "x"]), ("integer", float("inf"))],
)
def test_convert_failure_keeps_value_tags_and_counts(kind: str, value: Any) -> None:
    f = MutateFilter(convert={"v": kind}, add_tag=["ok"])
    ev = Event("t", 0, {"v": value})
    f.filter([ev])
    assert ev.record["v"] == value or (isinstance(value, float) and ev.record["v"] == value)
    assert ev.record["tags"] == ["_mutate_error"]  # and add_tag skipped: the event failed
    assert f.failures == 1


@pytest.mark.parametrize("value", ["maybe", 2, -1.0])
def test_a_value_that_is_no_boolean_is_kept_without_error(value: Any) -> None:
    """Logstash's convert_boolean warns and returns the value: no failure, add_tag applies."""
    f = MutateFilter(convert={"v": "boolean"}, add_tag=["ok"])
    ev = Event("t", 0, {"v": value})
    f.filter([ev])
    assert ev.record["v"] == value and ev.record["tags"] == ["ok"] and f.failures == 0


def test_convert_skips_missing_null_and_hashes() -> None:
    ev = run({"n": None, "h": {"a": "1"}}, convert={"n": "integer", "h": "integer", "missing": "integer"})
    assert ev.record == {"n": None, "h": {"a": "1"}}


def test_convert_nested_field() -> None:
    ev = run({"http": {"status": "200"}}, convert={"[http][status]": "integer"})
    assert ev.record == {"http": {"status": 200}}


def test_custom_tag_on_failure() -> None:
    ev = run({"v": "x"}, convert={"v": "integer"}, tag_on_failure=["bad_number"])
    assert ev.record["tags"] == ["bad_number"]


def test_gsub() -> None:
    ev = run(
        {"path": "/a/b/c", "list": ["a-b", 3, "c-d"], "num": 5, "date": "2024-01-23"},
        gsub=["path", "/", "_", "list", "-", "+", "num", "5", "6",
              "date", r"(\d+)-(\d+)-(?<day>\d+)", r"\k<day>/\2/\1 (\0)"],
    )
    assert ev.record["path"] == "_a_b_c"
    assert ev.record["list"] == ["a+b", 3, "c+d"]
    assert ev.record["num"] == 5  # not a string: untouched
    assert ev.record["date"] == "23/01/2024 (2024-01-23)"


def test_gsub_nested_triples_and_sprintf_replacement() -> None:
    ev = run({"msg": "user=X", "who": "bob"}, gsub=[["msg", "X", "%{who}"]])
    assert ev.record["msg"] == "user=bob"


def test_gsub_sprintf_pattern() -> None:
    ev = run({"msg": "a.b.c", "sep": "\\."}, gsub=["msg", "%{sep}", "/"])
    assert ev.record["msg"] == "a/b/c"


def test_gsub_literal_backslash_in_replacement() -> None:
    ev = run({"p": "a/b"}, gsub=["p", "/", "\\\\"])
    assert ev.record["p"] == "a\\b"


def test_case_and_strip() -> None:
    ev = run(
        {"u": "abc", "c": "hELLO wORLD", "l": ["ABC", 1], "s": "  padded \t\n", "n": 5},
        uppercase=["u", "n"], capitalize=["c"], lowercase=["l"], strip=["s"],
    )
    assert ev.record == {"u": "ABC", "c": "Hello world", "l": ["abc", 1], "s": "padded", "n": 5}


@pytest.mark.parametrize(
    "text, sep, expected",
    [("a,b,c", ",", ["a", "b", "c"]), ("a,b,,", ",", ["a", "b"]), (",a", ",", ["", "a"]),
     ("  a  b ", " ", ["a", "b"]), ("abc", "", ["a", "b", "c"]), ("", ",", []), ("a::b", "::", ["a", "b"])],
)
def test_ruby_split(text: str, sep: str, expected: list[str]) -> None:
    assert ruby_split(text, sep) == expected


def test_split_step_follows_ruby() -> None:
    ev = run({"a": "x,,y,,", "b": " p  q ", "c": "", "[n]": 1, "n": {"s": "1;2;"}},
             split={"a": ",", "b": " ", "c": ",", "[n][s]": ";"})
    assert ev.record["a"] == ["x", "", "y"] and ev.record["b"] == ["p", "q"] and ev.record["c"] == []
    assert ev.record["n"] == {"s": ["1", "2"]}


def test_split_ignores_non_strings() -> None:
    ev = run({"a": ["x"], "b": 3}, split={"a": ",", "b": ","})
    assert ev.record == {"a": ["x"], "b": 3}


def test_join() -> None:
    ev = run({"a": ["x", 1, None, ["y", "z"], True], "s": "already"}, join={"a": "|", "s": ","})
    assert ev.record == {"a": "x|1||y,z|true", "s": "already"}


def test_merge() -> None:
    ev = run(
        {"arr": ["a"], "s": "b", "h": {"x": 1}, "h2": {"y": 2}, "dst": "one", "more": ["m1", "m2"]},
        merge={"arr": "s", "h": "h2", "dst": ["more", "s"], "fresh": "s"},
    )
    assert ev.record["arr"] == ["a", "b"]
    assert ev.record["h"] == {"x": 1, "y": 2}
    assert ev.record["dst"] == ["one", "m1", "m2", "b"]
    assert ev.record["fresh"] == ["b"]
    assert "tags" not in ev.record


def test_merge_hash_with_array_fails() -> None:
    f = MutateFilter(merge={"h": "arr"})
    ev = Event("t", 0, {"h": {"x": 1}, "arr": [1]})
    f.filter([ev])
    assert ev.record["h"] == {"x": 1}
    assert ev.record["tags"] == ["_mutate_error"]
    assert f.failures == 1


def test_copy_is_deep() -> None:
    ev = run({"src": {"a": [1]}}, copy={"src": "[dst][inner]", "missing": "nothing"})
    assert ev.record["dst"] == {"inner": {"a": [1]}}
    ev.record["dst"]["inner"]["a"].append(2)
    assert ev.record["src"] == {"a": [1]}
    assert "nothing" not in ev.record


def test_metadata_and_timestamp_fields() -> None:
    ev = run({"when": "2024-01-01T00:00:00Z"}, {"k": "v"},
             copy={"[@metadata][k]": "from_meta", "when": "@timestamp"})
    assert ev.record["from_meta"] == "v"
    assert ev.time == 1704067200 * 10**9


def test_remove_field_and_tags_after_operations() -> None:
    ev = run({"a": "1", "tmp": 1, "tags": ["old"]}, convert={"a": "integer"}, remove_field=["tmp"],
             add_tag=["converted_%{a}"], remove_tag=["old"])
    assert ev.record == {"a": 1, "tags": ["converted_1"]}


# ---- the order rule ---------------------------------------------------------------------------


def test_order_rename_runs_before_convert() -> None:
    # written convert-first, but rename runs first: the renamed field is converted
    ev = run({"a": "5"}, convert={"b": "integer"}, rename={"a": "b"})
    assert ev.record == {"b": 5}


def test_order_replace_before_uppercase_and_split_before_join() -> None:
    ev = run({"a": "x", "l": "p,q"}, uppercase=["a"], replace={"a": "new"}, join={"l": "+"}, split={"l": ","})
    assert ev.record == {"a": "NEW", "l": "p+q"}


def test_order_copy_runs_last() -> None:
    # copy after gsub and lowercase: the copy sees the transformed value
    ev = run({"a": "X-Y"}, copy={"a": "b"}, gsub=["a", "-", "_"], lowercase=["a"])
    assert ev.record == {"a": "x_y", "b": "x_y"}


def test_order_coerce_before_update() -> None:
    ev = run({"a": None}, update={"a": "updated"}, coerce={"a": "default"})
    assert ev.record == {"a": "updated"}


def test_batch_and_failure_counting() -> None:
    f = MutateFilter(convert={"n": "integer"}, split={"s": ","})
    events = [Event("t", 0, {"n": str(i) if i % 3 else "bad", "s": "a,b"}) for i in range(9)]
    assert f.filter(events) == events
    assert f.failures == 3
    assert [e.record["n"] for e in events[:3]] == ["bad", 1, 2]
    assert all(e.record["s"] == ["a", "b"] for e in events)  # other operations still ran


# ---- bad settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, setting",
    [
        ({"convert": {"a": "int32"}}, "convert"),
        ({"gsub": ["a", "(unclosed", "x"]}, "gsub"),
        ({"gsub": ["a", "b"]}, "gsub"),
        ({"gsub": ["a", "(x)", "\\2"]}, "gsub"),
        ({"gsub": ["a", "(x)", "\\k<nope>"]}, "gsub"),
        ({"rename": {"[a][b": "c"}}, "rename"),
        ({"split": "not a hash"}, "split"),
        ({"covnert": {"a": "integer"}}, "covnert"),
    ],
)
def test_bad_settings(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        MutateFilter(**settings)
    assert info.value.setting == setting


def test_unknown_conversion_message_lists_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        MutateFilter(convert={"a": "int"})
    assert "integer_eu" in info.value.message and "'int'" in info.value.message


def test_ruby_regex_syntax_falls_back_to_regex_module() -> None:
    # `re` rejects Ruby's (?<name>...) groups; the regex module takes them
    ev = run({"a": "aaa-b"}, gsub=["a", "(?<run>a+)-", "<\\k<run>>"])
    assert ev.record["a"] == "<aaa>b"


def test_no_decoration_when_no_common_options() -> None:
    assert not MutateFilter(split={"a": ","}).decorates


# ---- through a configured pipeline ------------------------------------------------------------


async def test_seed_examples_through_a_pipeline(state_dir: str) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.pipeline import CollectOutput

    pytest.importorskip("logpipe_plugins.filters.grok")
    cfg = """
    input { generator { lines => ["world", "2024-01-23T10:00:00 new users: jose,pedro,maria"] count => 1 } }
    filter {
      if [message] == "world" {
        mutate { add_field => { "greeting" => "Hello %{message}" } }
      } else {
        grok { match => { "message" => "%{TIMESTAMP_ISO8601:t} new users: %{GREEDYDATA:users}" } }
        mutate { split => { "users" => "," } }
      }
    }
    """
    sink = CollectOutput()
    assert await Pipeline.from_string(cfg, outputs=[sink], state_dir=state_dir).run() == 0
    first, second = sink.events  # one round of both lines, in order
    assert first.record["greeting"] == "Hello world"
    assert second.record["users"] == ["jose", "pedro", "maria"]


def test_bad_setting_points_at_the_config(state_dir: str) -> None:
    from logpipe.pipeline import Pipeline

    cfg = 'input { generator { count => 1 } }\nfilter {\n  mutate { convert => { "x" => "int32" } }\n}'
    with pytest.raises(ConfigError) as info:
        Pipeline.from_string(cfg, state_dir=state_dir)
    assert info.value.pos is not None and info.value.pos.line == 3
    assert "int32" in info.value.message
