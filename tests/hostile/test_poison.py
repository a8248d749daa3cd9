"""Poison values handed to the API (issue 12, item 7): an Event built with its
arguments in the wrong slots fails at construction with a TypeError that says what
was expected, instead of travelling on and making the buffer retry it for ever."""

from __future__ import annotations

import pytest

from logpipe.event import Event


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("web", {"message": "hi"}), {}, "Event time must be int nanoseconds"),
        (("web", 1.5), {}, "Event time must be int"),
        (("web", True), {}, "Event time must be int"),
        (("web", 1, ["not", "a", "dict"]), {}, "Event record must be a dict"),
        ((None, 1, {}), {}, "Event tag must be a str"),
    ],
)
def test_event_arguments_in_the_wrong_slots_raise(args: tuple[object, ...], kwargs: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Event(*args, **kwargs)  # type: ignore[arg-type]


def test_event_valid_forms_still_work() -> None:
    assert Event("web", record={"a": 1}).record == {"a": 1}
    assert Event("web", 5, {"a": 1}).time == 5
    assert Event("web").record == {}
