"""Deterministic document ids (logpipe.helpers.docid): stable, content-addressed, never failing."""

from __future__ import annotations

from logpipe.event import Event
from logpipe.helpers.docid import MEMO_KEY, assign_ids, event_id

T0 = 1_700_000_000_000_000_000


def test_same_content_same_id_whatever_the_key_order() -> None:
    a = Event("app", T0, {"a": 1, "b": {"x": [1, 2]}}, {"m": 1})
    b = Event("app", T0, {"b": {"x": [1, 2]}, "a": 1}, {"m": 1})
    assert event_id(a) == event_id(b)
    assert len(event_id(a)) == 20


def test_every_part_of_the_event_matters() -> None:
    base = event_id(Event("app", T0, {"a": 1}, {"m": 1}))
    assert base != event_id(Event("app2", T0, {"a": 1}, {"m": 1}))
    assert base != event_id(Event("app", T0 + 1, {"a": 1}, {"m": 1}))
    assert base != event_id(Event("app", T0, {"a": 2}, {"m": 1}))
    assert base != event_id(Event("app", T0, {"a": 1}, {"m": 2}))


def test_origin_replaces_the_time() -> None:
    """A line read again after a crash gets a new read time but the same origin: same id."""
    first = Event("app", T0, {"message": "x"}, {"_origin": "/var/log/a.log:42:1024"})
    again = Event("app", T0 + 5_000_000_000, {"message": "x"}, {"_origin": "/var/log/a.log:42:1024"})
    other = Event("app", T0, {"message": "x"}, {"_origin": "/var/log/a.log:42:2048"})
    assert event_id(first) == event_id(again) != event_id(other)


def test_values_json_cannot_hold_still_hash() -> None:
    ev = Event("app", T0, {"big": 2**80, "raw": b"\x00\xff", "set": {3, 1}, "obj": object})
    assert event_id(ev) == event_id(Event("app", T0, dict(ev.record)))


def test_twins_in_a_chunk_get_distinct_ids_that_survive_a_partial_retry() -> None:
    twins = [Event("app", T0, {"m": "same"}) for _ in range(3)]
    ids = assign_ids(twins)
    assert len(set(ids)) == 3 and ids[1] == ids[0] + "-1"
    assert [ev.meta[MEMO_KEY] for ev in twins] == ids
    assert assign_ids([twins[2]]) == [ids[2]]  # retried alone: the id it was given
    rebuilt = [Event("app", T0, {"m": "same"}) for _ in range(3)]
    assert assign_ids(rebuilt) == ids  # a replayed chunk in the same order: the same ids
