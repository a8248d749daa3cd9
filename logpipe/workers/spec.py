"""What a worker process builds its stage from, made portable (ARCHITECTURE.md, "Parallel pipeline").

Plugins are constructible from their settings alone, so a worker gets the filter and output
sections as the config wrote them (PluginNodes, conditionals) and instantiates them itself.
A plugin built in code travels as its class and the settings it was built with
(`Plugin.given_settings`), never as a copied object. An output that wants events (the
embedding CallbackOutput, collectors) is never written from a worker: it is replaced by a
stand-in that routes like it (same tag globs, same `inject`) and sends the events back.
Plugins registered in-process (`logpipe.register`) are registered in the worker too.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import pickle
from dataclasses import dataclass
from typing import Any

from logpipe import registry
from logpipe.config.model import IfNode
from logpipe.errors import ConfigError
from logpipe.helpers import ecs
from logpipe.plugin import Output, Plugin


@dataclass
class WorkerSpec:
    filters: list[Any]
    outputs: list[Any]
    registered: dict[tuple[str, str], type[Plugin]]
    ecs_mode: str
    log_level: int


class EventsBack(Output):
    """Stands in a worker for an output that wants events: routes as it would, formats nothing."""

    name = "events_back"
    doc = "internal: the worker-side stand-in of an output that takes events"


def _rebuild(cls: type[Plugin], settings: dict[str, Any], plugin_id: str) -> Plugin:
    plugin = cls(**settings)
    plugin.id = plugin_id
    return plugin


class _SpecPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Plugin):
            return _rebuild, (type(obj), obj.given_settings, obj.id)
        return NotImplemented


def _portable_output(node: Any) -> Any:
    if isinstance(node, IfNode):
        branches = [dataclasses.replace(b, body=[_portable_output(n) for n in b.body]) for b in node.branches]
        return dataclasses.replace(node, branches=branches)
    if isinstance(node, Output) and node.wants_events:
        settings: dict[str, Any] = {"id": node.id, "match_tag": node.tag_patterns() or []}
        if node.params.get("inject"):
            settings["inject"] = node.params["inject"]
        return EventsBack(**settings)
    return node


def worker_spec(filters: list[Any], outputs: list[Any]) -> bytes:
    """The pickled spec; a ConfigError naming the plugin when one cannot travel."""
    spec = WorkerSpec(list(filters), [_portable_output(n) for n in outputs], dict(registry.registered()),
                      ecs.DEFAULT_MODE, logging.getLogger().getEffectiveLevel())
    buffer = io.BytesIO()
    try:
        _SpecPickler(buffer, 5).dump(spec)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ConfigError(f"pipeline workers: a filter or output built in code cannot be sent to a worker "
                          f"process ({exc}); build it from its settings only, or run with workers = 1") from None
    return buffer.getvalue()
