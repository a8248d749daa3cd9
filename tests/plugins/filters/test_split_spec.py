"""Vectors derived from logstash-filter-split's spec (spec/filters/split_spec.rb)."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.event import Event
from logpipe.testing import FilterDriver
from logpipe_plugins.filters.split import SplitFilter

VECTORS: list[tuple[str, dict[str, Any], dict[str, Any], str, list[Any]]] = [
    ("trailing terminator", {}, {"message": "big\n"}, "message", ["big"]),
    ("all defaults", {}, {"message": "big\nbird\nsesame street"}, "message", ["big", "bird", "sesame street"]),
    ("custom terminator", {"terminator": "\t"}, {"message": "big\tbird\tsesame street"}, "message",
     ["big", "bird", "sesame street"]),
    ("custom field", {"field": "custom"}, {"custom": "big\nbird\nsesame street", "do_not_touch": "1\n2\n3"},
     "custom", ["big", "bird", "sesame street"]),
    ("split array", {"field": "array"}, {"array": ["big", "bird", "sesame street"], "untouched": "1\n2\n3"},
     "array", ["big", "bird", "sesame street"]),
    ("one-element array", {"field": "array"}, {"array": ["big"], "untouched": "1\n2\n3"}, "array", ["big"]),
    ("array with nil", {"field": "array"}, {"array": ["big", None, "bird", None, "sesame street"]}, "array",
     ["big", "bird", "sesame street"]),
    ("into a new field", {"field": "array", "target": "element"}, {"array": ["big", "bird", "sesame street"]},
     "element", ["big", "bird", "sesame street"]),
    ("numerics", {"field": "array", "target": "element"}, {"array": [1, 2, 3]}, "element", [1, 2, 3]),
    ("numerics and strings", {"field": "array", "target": "element"}, {"array": [1, 2, "three", ""]}, "element",
     [1, 2, "three"]),
]


@pytest.mark.parametrize(("name", "config", "record", "field", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
async def test_spec_vector(name: str, config: dict[str, Any], record: dict[str, Any], field: str,
                           expected: list[Any]) -> None:
    async with FilterDriver(SplitFilter(**config)) as driver:  # the plugin-author driver, as third parties use it
        out = driver.run([dict(record)])
    assert [ev.record[field] for ev in out] == expected
    for ev in out:
        for key in ("do_not_touch", "untouched"):
            if key in record:
                assert ev.record[key] == record[key]


@pytest.mark.parametrize("record", [{"field": 10}, {}], ids=["a number", "missing"])
def test_unsplittable_values_are_tagged(record: dict[str, Any]) -> None:
    f = SplitFilter(field="field")
    [ev] = f.filter([Event("t", 0, record)])
    assert ev.record["tags"] == ["_split_type_failure"] and f.failures == 1
