"""What a worker process builds its stage from, made portable (ARCHITECTURE.md, "Parallel pipeline").

Plugins are constructible from their settings alone, so a worker gets the filter and output
sections as the config wrote them (PluginNodes, conditionals) and instantiates them itself.
A plugin built in code travels as its class and the settings it was built with
(`Plugin.given_settings`), never as a copied object. An output that wants events (the
embedding CallbackOutput, collectors) is never written from a worker: it is replaced by a
stand-in that routes like it (same tag globs, same `inject`) and sends the events back.
Plugins registered in-process (`logpipe.register`) are registered in the worker too — those
whose class a worker can import; one that cannot travel (a class defined in a script or an
exec'd module) is left behind, and only a pipeline that uses it fails, naming it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import pickle
from dataclasses import dataclass
from typing import Any

from logpipe import registry
from logpipe.config.model import IfNode, PluginNode
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


def _portable_registrations(nodes: list[Any]) -> dict[tuple[str, str], type[Plugin]]:
    """The in-process registrations a worker can import. Another part of the program may have
    registered a class no worker can load; that must not stop pipelines that do not use it,
    and a pipeline that does use it gets a ConfigError at the plugin's place."""
    portable = {}
    for key, cls in registry.registered().items():
        try:
            pickle.dumps(cls, 5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            for node in _plugin_nodes(nodes):
                if (node.kind, node.name) == key:
                    raise ConfigError(f"pipeline workers: the {node.kind} '{node.name}' is registered in-process "
                                      f"from a class a worker process cannot import ({exc}); define it in an "
                                      "importable module, or run with workers = 1", pos=node.pos) from None
            continue
        portable[key] = cls
    return portable


def _plugin_nodes(nodes: list[Any]) -> list[PluginNode]:
    found: list[PluginNode] = []
    for node in nodes:
        if isinstance(node, IfNode):
            for branch in node.branches:
                found.extend(_plugin_nodes(branch.body))
        elif isinstance(node, PluginNode):
            found.append(node)
    return found


def worker_spec(filters: list[Any], outputs: list[Any]) -> bytes:
    """The pickled spec; a ConfigError naming the plugin when one cannot travel."""
    spec = WorkerSpec(list(filters), [_portable_output(n) for n in outputs],
                      _portable_registrations([*filters, *outputs]), ecs.DEFAULT_MODE,
                      logging.getLogger().getEffectiveLevel())
    buffer = io.BytesIO()
    try:
        _SpecPickler(buffer, 5).dump(spec)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ConfigError(f"pipeline workers: a filter or output built in code cannot be sent to a worker "
                          f"process ({exc}); build it from its settings only, or run with workers = 1") from None
    return buffer.getvalue()
