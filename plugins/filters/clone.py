"""Logstash's `clone` filter: one copy of each event per name in `clones`.

The original goes on unchanged; each copy follows it with `type` set to its name (legacy) or
the name added to `tags` (ECS v1/v8), and only the copies get the common add/remove options,
as in Logstash. An empty `clones` makes no copies (Logstash warns the same).
"""

from __future__ import annotations

from typing import Any, ClassVar

from logpipe.event import Event
from logpipe.fields import add_tag
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.plugin import Filter, Setting


class CloneFilter(Filter):
    name = "clone"
    doc = "Emits a copy of each event per name in `clones` (copies get type/tag = the name)."
    settings: ClassVar[list[Setting]] = [
        Setting("clones", "array", default=[], doc="one copy per name"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._names = [str(n) for n in self.params["clones"]]
        self._ecs = ecs_enabled(self.params)
        if not self._names:
            self.log.warning("clone: `clones` is empty; no copies are made")

    def filter(self, events: list[Event]) -> list[Event]:
        if not self._names:
            return events
        out: list[Event] = []
        for ev in events:
            out.append(ev)
            for name in self._names:
                copy = ev.copy()
                if self._ecs:
                    add_tag(copy, name)
                else:
                    copy.record["type"] = name
                self.matched(copy)
                out.append(copy)
        return out
