"""kv filter."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.kv import KvFilter


def run(record: dict[str, Any], **settings: Any) -> Event:
    f = KvFilter(**settings)
    ev = Event("t", 0, record)
    f.filter([ev])
    return ev


def test_defaults_and_quoted_values() -> None:
    ev = run({"message": 'a=1 b="two words" c=\'single q\' d=(x y) e=[z] f=<w> junk g = h'})
    assert ev.record == {"message": ev.record["message"], "a": "1", "b": "two words", "c": "single q",
                         "d": "x y", "e": "z", "f": "w", "g": "h"}


def test_no_brackets() -> None:
    ev = run({"message": "a=(x) b=[y]"}, include_brackets=False)
    assert ev.record["a"] == "(x)" and ev.record["b"] == "[y]"


def test_split_characters_and_source_target() -> None:
    ev = run({"url": "?x=1&y=2&z=a:b"}, source="url", field_split="&?", target="[q]")
    assert ev.record["q"] == {"x": "1", "y": "2", "z": "a:b"}
    ev2 = run({"m": "k1:v1|k2:v2"}, source="m", field_split="|", value_split=":")
    assert ev2.record["k1"] == "v1" and ev2.record["k2"] == "v2"


def test_split_patterns() -> None:
    ev = run({"message": "a => 1 ;; b => 2"}, field_split_pattern=r"\s*;;\s*", value_split_pattern=r"\s*=>\s*")
    assert ev.record["a"] == "1" and ev.record["b"] == "2"


def test_target_merges_into_existing_hash() -> None:
    ev = run({"message": "a=1", "kv": {"old": True}}, target="kv")
    assert ev.record["kv"] == {"old": True, "a": "1"}


def test_include_exclude_prefix() -> None:
    ev = run({"message": "a=1 b=2 c=3"}, include_keys=["a", "b"], exclude_keys=["b"], prefix="kv_")
    assert {k: v for k, v in ev.record.items() if k != "message"} == {"kv_a": "1"}


def test_trim_remove_transform() -> None:
    ev = run({"message": "<Key>=  'v!'  [X]=y"}, trim_key="<>[]", trim_value="'!", remove_char_key="K",
             transform_key="lowercase", transform_value="uppercase", include_brackets=False)
    assert ev.record["ey"] == "V" and ev.record["x"] == "Y"


def test_duplicates() -> None:
    ev = run({"message": "a=1 a=2 a=1"})
    assert ev.record["a"] == ["1", "2", "1"]
    ev2 = run({"message": "a=1 a=2 a=1"}, allow_duplicate_values=False)
    assert ev2.record["a"] == ["1", "2"]


def test_default_keys_and_recursive() -> None:
    ev = run({"message": "a=1"}, default_keys={"a": "x", "b": "default"})
    assert ev.record["a"] == "1" and ev.record["b"] == "default"
    rec = run({"message": 'outer="in1=x in2=y"'}, recursive=True)
    assert rec.record["outer"] == {"in1": "x", "in2": "y"}


def test_strict_whitespace() -> None:
    ev = run({"message": "a = 1 b=2"}, whitespace="strict")
    assert "a" not in ev.record and ev.record["b"] == "2"


def test_array_source_and_decoration() -> None:
    ev = run({"message": ["a=1", "b=2"]}, add_tag=["kv"])
    assert ev.record["a"] == "1" and ev.record["b"] == "2" and ev.record["tags"] == ["kv"]


def test_nothing_found_no_decoration() -> None:
    ev = run({"message": "no pairs here"}, add_tag=["kv"])
    assert "tags" not in ev.record


def test_hash_source_fails() -> None:
    f = KvFilter()
    ev = Event("t", 0, {"message": {"a": 1}})
    f.filter([ev])
    assert ev.record["tags"] == ["_kv_filter_error"] and f.failures == 1


@pytest.mark.parametrize("settings", [{"field_split_pattern": "("}, {"value_split": ""},
                                      {"transform_key": "reverse"}, {"whitespace": "loose"}])
def test_bad_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        KvFilter(**settings)
