"""From the config model to live objects: plugin instances and compiled routing.

Everything that can be decided once — which plugin class, coerced settings,
compiled conditions, tag predicates — is decided here, at build time, so that
the per-batch code in pipeline.py only partitions lists and calls functions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import compress
from typing import Any, TypeVar

import orjson

from logpipe import registry
from logpipe.config.conditions import compile_condition
from logpipe.config.model import BareWord, IfNode, PluginNode, Value
from logpipe.config.tagmatch import compile_tag_patterns
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.metrics import counter
from logpipe.plugin import Filter, Input, Output, Plugin
from logpipe.regex_budget import batch_guard as regex_batch_guard

log = logging.getLogger("logpipe.pipeline")

Predicate = Callable[[Event], bool]
FilterStep = Callable[[list[Event]], list[Event]]
T = TypeVar("T")


def plain(value: Any) -> Any:
    """Strip the parser's wrappers: the plugin API takes plain Python data."""
    if isinstance(value, Value):
        return plain(value.value)
    if isinstance(value, BareWord):
        return value.text
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def instantiate(node: PluginNode | Plugin) -> Plugin:
    """Build a plugin from its block, pointing any error at file:line:col."""
    if isinstance(node, Plugin):
        return node
    try:
        cls = registry.lookup(node.kind, node.name)
    except ConfigError as exc:
        raise ConfigError(exc.message, node.pos) from None
    settings: dict[str, Any] = {}
    for key, value in node.settings.items():
        if isinstance(value.value, PluginNode):
            settings[key] = instantiate(value.value)
        else:
            settings[key] = plain(value)
    try:
        return cls(**settings)
    except ConfigError as exc:
        raise ConfigError(exc.message, exc.pos or node.position_of(exc.setting, exc.at_name)) from None


# ---- filters ---------------------------------------------------------------------


@dataclass
class Built:
    """Every plugin instance of a pipeline, in config order, for start/close."""

    inputs: list[Input]
    filters: list[Filter]
    outputs: list[Output]


def compile_filters(nodes: list[Any], built: Built) -> FilterStep:
    steps = [_filter_step(node, built) for node in nodes]
    if not steps:
        return _identity
    if len(steps) == 1:
        return steps[0]

    def run(events: list[Event]) -> list[Event]:
        for step in steps:
            if not events:
                break
            events = step(events)
        return events

    return run


def _identity(events: list[Event]) -> list[Event]:
    return events


def _compile_branches(node: IfNode, compile_body: Callable[[list[Any], Built], T], built: Built,
                      ) -> list[tuple[Predicate | None, T]]:
    """if / else if / else: each branch's condition (None for else) and compiled body."""
    return [(None if b.condition is None else compile_condition(b.condition), compile_body(b.body, built))
            for b in node.branches]


def _partition(events: list[Event], branches: list[tuple[Predicate | None, Any]],
               ) -> tuple[list[list[Event]], list[Event]]:
    """Each event to the first branch whose condition holds: (a part per branch, the events no branch took)."""
    parts: list[list[Event]] = [[] for _ in branches]
    rest: list[Event] = []
    with regex_batch_guard() as cell:
        for ev in events:
            cell[0] += 1
            for i, (pred, _) in enumerate(branches):
                if pred is None or pred(ev):
                    parts[i].append(ev)
                    break
            else:
                rest.append(ev)
    return parts, rest


def _filter_step(node: Any, built: Built) -> FilterStep:
    if isinstance(node, IfNode):
        return _branching(_compile_branches(node, compile_filters, built))
    plugin = instantiate(node)
    if not isinstance(plugin, Filter):
        raise ConfigError(f"'{plugin.name}' is a {plugin.kind} plugin, not a filter", getattr(node, "pos", None))
    built.filters.append(plugin)
    step = _guarded(plugin)
    patterns = plugin.tag_patterns()
    if patterns:
        tag_ok = compile_tag_patterns(patterns)
        return _branching([(lambda ev: tag_ok(ev.tag), step)])
    return step


def _guarded(plugin: Filter) -> FilterStep:
    """A filter that raises must not lose the batch: the events pass on unchanged,
    tagged `_filter_error`, and the failure is logged and counted."""
    run = plugin.filter
    errors = counter("logpipe_filter_errors_total", "filter batches that raised", plugin=plugin.id)

    observers = plugin.observers

    def step(events: list[Event]) -> list[Event]:
        try:
            out = run(events)
        except Exception:
            log.exception("filter %s failed on a batch of %d events; passing them on tagged _filter_error",
                          plugin.id, len(events))
            errors.inc()
            for ev in events:
                tags = ev.record.setdefault("tags", [])
                if isinstance(tags, list) and "_filter_error" not in tags:
                    tags.append("_filter_error")
            out = events
        if observers:  # `logpipe test` and taps: one truthiness check per batch when nobody looks
            for observe in observers:
                observe(out)
        return out

    return step


def _branching(branches: list[tuple[Predicate | None, FilterStep]]) -> FilterStep:
    """if / else if / else over a batch: partition once, run each branch on its part.

    Events that take no branch pass on unchanged. Order is kept within each part;
    across parts, untouched events come first, then each branch's output in branch order.
    """
    if len(branches) == 1 and branches[0][0] is not None:
        return _single_branch(branches[0][0], branches[0][1])

    def step(events: list[Event]) -> list[Event]:
        parts, rest = _partition(events, branches)
        if not rest and sum(1 for p in parts if p) == 1:
            index = next(i for i, p in enumerate(parts) if p)
            return branches[index][1](parts[index])
        out = rest
        for part, (_, body) in zip(parts, branches):
            if part:
                out = out + body(part)
        return out

    return step


def _single_branch(pred: Predicate, body: FilterStep) -> FilterStep:
    """The common `if cond { … }` without else: one predicate pass in a comprehension,
    and no copying at all when the whole batch goes the same way."""

    def step(events: list[Event]) -> list[Event]:
        with regex_batch_guard() as cell:
            flags = [_bumped(cell) and pred(ev) for ev in events]
        if not any(flags):
            return events
        if all(flags):
            return body(events)
        taken = list(compress(events, flags))
        rest = [ev for ev, flag in zip(events, flags) if not flag]
        return rest + body(taken)

    return step


def _bumped(cell: list[int]) -> bool:
    """One event more for the regex watchdog's progress counter (always true)."""
    cell[0] += 1
    return True


# ---- outputs ---------------------------------------------------------------------

Route = Callable[[list[Event]], list[tuple[int, list[Event]]]]


def compile_outputs(nodes: list[Any], built: Built) -> Route:
    """A function from a batch to [(output index, its events)]: fan-out to every output
    in the section, guarded by conditionals and `match` globs."""
    routes = [_output_route(node, built) for node in nodes]

    def route(events: list[Event]) -> list[tuple[int, list[Event]]]:
        out: list[tuple[int, list[Event]]] = []
        for r in routes:
            out.extend(r(events))
        return out

    return route


def _output_route(node: Any, built: Built) -> Route:
    if isinstance(node, IfNode):
        branches = _compile_branches(node, compile_outputs, built)

        def route_if(events: list[Event]) -> list[tuple[int, list[Event]]]:
            parts, _ = _partition(events, branches)
            out: list[tuple[int, list[Event]]] = []
            for part, (_, body) in zip(parts, branches):
                if part:
                    out.extend(body(part))
            return out

        return route_if
    plugin = instantiate(node)
    if not isinstance(plugin, Output):
        raise ConfigError(f"'{plugin.name}' is a {plugin.kind} plugin, not an output", getattr(node, "pos", None))
    index = len(built.outputs)
    built.outputs.append(plugin)
    patterns = plugin.tag_patterns()
    if patterns:
        tag_ok = compile_tag_patterns(patterns)

        def route_match(events: list[Event]) -> list[tuple[int, list[Event]]]:
            part = [ev for ev in events if tag_ok(ev.tag)]
            return [(index, part)] if part else []

        return route_match
    return lambda events: [(index, events)]


def assign_unique_ids(plugins: list[Plugin]) -> None:
    """Plugins without an explicit `id` are named after their plugin. Ids are unique per
    kind (a `file` input and a `file` output may both be "file"); when two plugins of one
    kind share a name they get a suffix derived from their settings, so an unchanged config
    keeps its ids — and the file-buffer directories and metrics keyed by them — across
    restarts. Explicit ids are what survive a settings change (README)."""
    by_id: dict[tuple[str, str], list[Plugin]] = {}
    for plugin in plugins:
        by_id.setdefault((plugin.kind, plugin.id), []).append(plugin)
    taken = set(by_id)
    for (kind, plugin_id), group in by_id.items():
        if len(group) < 2:
            continue
        explicit = [p for p in group if p.params.get("id")]
        if len(explicit) > 1:
            raise ConfigError(f"two {kind}s share the id '{plugin_id}'; ids must be unique")
        for plugin in group:
            if plugin.params.get("id"):
                continue
            digest = hashlib.sha1(
                orjson.dumps({k: v for k, v in plugin.params.items() if _plain_data(v)}, default=str,
                             option=orjson.OPT_SORT_KEYS)
            ).hexdigest()[:8]
            candidate = f"{plugin.name}-{digest}"
            n = 2
            while (kind, candidate) in taken:
                candidate = f"{plugin.name}-{digest}-{n}"
                n += 1
            taken.add((kind, candidate))
            plugin.id = candidate


def _plain_data(value: Any) -> bool:
    return not isinstance(value, Plugin)
