"""Process-wide counters and gauges, named and labelled the Prometheus way.

Plugins count what happens to events (malformed frames, retries, dead letters)
here so that the stats and metrics endpoints have one place to read from. They do it
through `PluginMetrics` (`self.metrics` on every plugin), never with `counter` directly,
so every plugin's names and labels follow one scheme (ARCHITECTURE.md, "Metrics").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol


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


class _Identified(Protocol):
    @property
    def kind(self) -> str: ...

    id: str


class PluginMetrics:
    """A plugin's metrics, created through the plugin (`self.metrics.counter(...)`) so
    every plugin names and labels them the same way: `logpipe_<kind>_<thing>_total`
    (gauges: `logpipe_<kind>_<thing>`) with the label `<kind>="<id>"`, e.g.
    `logpipe_output_bulk_items_failed_total{output="es_main"}`. Extra labels (`reason`)
    come after. The id is read when the metric is first used, not when it is declared:
    the pipeline may give a plugin a unique id after constructing it."""

    def __init__(self, plugin: _Identified) -> None:
        self._plugin = plugin
        self.declared: list[PluginMetric] = []  # what the plugin and its helpers made, for docs and tests

    @property
    def kind(self) -> str:
        return self._plugin.kind

    @property
    def id(self) -> str:
        return self._plugin.id

    def counter(self, thing: str, doc: str, **labels: str) -> PluginMetric:
        """A counter for `thing` (a snake_case noun: `lines`, `protocol_errors`)."""
        return self._declare(f"logpipe_{self._plugin.kind}_{thing}_total", doc, labels)

    def gauge(self, thing: str, doc: str, **labels: str) -> PluginMetric:
        """A gauge for `thing` (`connections`, `buffer_bytes`)."""
        return self._declare(f"logpipe_{self._plugin.kind}_{thing}", doc, labels)

    def _declare(self, name: str, doc: str, labels: dict[str, str]) -> PluginMetric:
        if self._plugin.kind in labels:
            raise ValueError(f"{name}: the label {self._plugin.kind!r} is the plugin's id, set by PluginMetrics")
        metric = PluginMetric(self._plugin, name, doc, labels)
        self.declared.append(metric)
        return metric


class PluginMetric:
    """One counter or gauge of a plugin, bound to its series on first use (the id is settled by then)."""

    __slots__ = ("_plugin", "name", "doc", "labels", "_item")

    def __init__(self, plugin: _Identified, name: str, doc: str, labels: dict[str, str]) -> None:
        self._plugin = plugin
        self.name = name
        self.doc = doc
        self.labels = labels  # besides `<kind>="<id>"`
        self._item: Counter | None = None

    def _bound(self) -> Counter:
        item = self._item
        if item is None:
            labels = {self._plugin.kind: self._plugin.id, **self.labels}
            item = self._item = REGISTRY.counter(self.name, self.doc, **labels)
        return item

    def inc(self, amount: float = 1) -> None:
        item = self._item
        (item if item is not None else self._bound()).value += amount

    def set(self, value: float) -> None:
        self._bound().value = value

    @property
    def value(self) -> float:
        return self._bound().value
