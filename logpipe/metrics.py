"""Process-wide counters and gauges, named and labelled the Prometheus way.

Plugins count what happens to events (malformed frames, retries, dead letters)
here so that the stats and metrics endpoints have one place to read from.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator


class Counter:
    __slots__ = ("name", "labels", "value")

    def __init__(self, name: str, labels: tuple[tuple[str, str], ...]) -> None:
        self.name = name
        self.labels = labels
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        """For gauges (queue depth, buffer bytes)."""
        self.value = value


class Registry:
    def __init__(self) -> None:
        self._items: dict[tuple[str, tuple[tuple[str, str], ...]], Counter] = {}
        self._help: dict[str, str] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help: str = "", **labels: str) -> Counter:
        key = (name, tuple(sorted(labels.items())))
        item = self._items.get(key)
        if item is None:
            with self._lock:
                item = self._items.setdefault(key, Counter(name, key[1]))
                if help:
                    self._help.setdefault(name, help)
        return item

    gauge = counter

    def value(self, name: str, **labels: str) -> float:
        item = self._items.get((name, tuple(sorted(labels.items()))))
        return 0 if item is None else item.value

    def __iter__(self) -> Iterator[Counter]:
        return iter(list(self._items.values()))

    def help(self, name: str) -> str:
        return self._help.get(name, "")


REGISTRY = Registry()
counter = REGISTRY.counter
gauge = REGISTRY.gauge
