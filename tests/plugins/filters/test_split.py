"""split filter."""

from __future__ import annotations

from typing import Any

from logpipe.event import Event
from logpipe_plugins.filters.split import SplitFilter


def run(record: dict[str, Any], **settings: Any) -> tuple[list[Event], SplitFilter]:
    f = SplitFilter(**settings)
    return f.filter([Event("t", 7, record, {"m": 1})]), f


def test_array_field_one_event_each() -> None:
    out, _ = run({"users": ["a", "b", "c"], "host": "h"}, field="users", add_tag=["split"])
    assert [e.record["users"] for e in out] == ["a", "b", "c"]
    assert all(e.record["host"] == "h" and e.time == 7 and e.meta == {"m": 1} for e in out)
    assert all(e.record["tags"] == ["split"] for e in out)


def test_copies_are_independent() -> None:
    out, _ = run({"items": [{"k": 1}, {"k": 2}], "shared": {"x": [1]}}, field="items")
    out[0].record["shared"]["x"].append(2)
    assert out[1].record["shared"] == {"x": [1]}


def test_string_by_terminator_skips_empty_pieces() -> None:
    out, _ = run({"message": "l1\nl2\n\nl3\n"})
    assert [e.record["message"] for e in out] == ["l1", "l2", "l3"]
    commas, _ = run({"csv": "a,b"}, field="csv", terminator=",")
    assert [e.record["csv"] for e in commas] == ["a", "b"]


def test_target_keeps_original_field() -> None:
    out, _ = run({"list": [1, 2]}, field="list", target="item")
    assert [(e.record["item"], e.record["list"]) for e in out] == [(1, [1, 2]), (2, [1, 2])]


def test_single_piece_and_missing_pass_unchanged() -> None:
    f = SplitFilter(add_tag=["split"])
    one, missing = Event("t", 0, {"message": "single line"}), Event("t", 0, {})
    assert f.filter([one, missing]) == [one, missing]
    assert "tags" not in one.record


def test_unsplittable_type_tagged() -> None:
    out, f = run({"message": 42})
    assert len(out) == 1 and out[0].record["tags"] == ["_split_type_failure"] and f.failures == 1


def test_order_preserved_across_batch() -> None:
    f = SplitFilter(field="n")
    out = f.filter([Event("t", 0, {"n": [1, 2]}), Event("t", 0, {"x": 0}), Event("t", 0, {"n": [3]})])
    assert [e.record.get("n", "x") for e in out] == [1, 2, "x", 3]
