"""Logstash's `throttle` filter: mark events past a rate, per key, for a conditional to drop.

Per `key` (sprintf) events are counted in time slots of `period` seconds (sprintf; event time,
not arrival time). An event is throttled — it gets the common add_tag/add_field, typically
`add_tag => "throttled"` then `if "throttled" in [tags] { drop {} }` — when its count in the
slot is below `before_count` or above `after_count` (-1 disables either). Slots older than
`max_age` seconds are forgotten and at most `max_counters` are kept (the oldest go first), so
memory stays bounded whatever the keys.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.plugin import Filter, Setting

NS = 1_000_000_000


class ThrottleFilter(Filter):
    name = "throttle"
    creates_events = False
    parallel = False  # its counters span batches: one instance sees them all (logpipe/workers/settings.py)
    doc = "Tags (via add_tag) events beyond before_count/after_count per key and period."
    settings: ClassVar[list[Setting]] = [
        Setting("key", "string", required=True, doc="what is counted (sprintf, e.g. %{host})"),
        Setting("before_count", "int", default=-1, doc="throttle while the count is below this"),
        Setting("after_count", "int", default=-1, doc="throttle once the count is above this"),
        Setting("period", "string", default="60", doc="seconds per time slot (sprintf)"),
        Setting("max_age", "number", default=3600, doc="seconds after which a slot is forgotten"),
        Setting("max_counters", "int", default=100_000, doc="the most slots kept"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        if p["before_count"] < 0 and p["after_count"] < 0:
            raise ConfigError("throttle needs 'before_count' or 'after_count'", setting="after_count")
        if p["max_counters"] < 1:
            raise ConfigError("throttle: 'max_counters' must be at least 1", setting="max_counters")
        self._key = compile_sprintf(p["key"])
        self._period = compile_sprintf(str(p["period"]))
        self._slots: OrderedDict[tuple[str, int], list[int]] = OrderedDict()  # (key, slot) → [count, slot end]
        self._newest = 0

    def filter(self, events: list[Event]) -> list[Event]:
        before, after = self.params["before_count"], self.params["after_count"]
        slots = self._slots
        for ev in events:
            try:
                period = max(1, int(float(self._period(ev))))
            except ValueError:
                self.log.warning("throttle: period %r is not a number of seconds", self._period(ev))
                continue
            epoch = ev.time // NS
            start = epoch - epoch % period
            key = (self._key(ev), start)
            counter = slots.get(key)
            if counter is None:
                counter = slots[key] = [0, start + period]
                self._expire(epoch)
            counter[0] += 1
            count = counter[0]
            if (before != -1 and count < before) or (after != -1 and count > after):
                self.matched(ev)
        return events

    def _expire(self, epoch: int) -> None:
        slots = self._slots
        self._newest = max(self._newest, epoch)
        horizon = self._newest - self.params["max_age"]
        while slots:
            first_key = next(iter(slots))
            if slots[first_key][1] < horizon or len(slots) > self.params["max_counters"]:
                del slots[first_key]
            else:
                break
