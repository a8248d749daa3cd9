"""drop filter."""

from __future__ import annotations

import random

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.drop import DropFilter


def batch(n: int) -> list[Event]:
    return [Event("t", 0, {"i": i}) for i in range(n)]


def test_drops_everything() -> None:
    f = DropFilter()
    assert f.filter(batch(10)) == []
    assert f.dropped == 10


def test_percentage_samples() -> None:
    random.seed(1234)
    f = DropFilter(percentage=25)
    kept = f.filter(batch(4000))
    assert 2800 < len(kept) < 3200
    assert f.dropped == 4000 - len(kept)
    assert DropFilter(percentage=0).filter(batch(5)) == batch(5)


@pytest.mark.parametrize("value", [-1, 101, "lots"])
def test_bad_percentage(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        DropFilter(percentage=value)
    assert info.value.setting == "percentage"
