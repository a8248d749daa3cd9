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
from typing import Any, TypeVar

import orjson

from logpipe import registry
from logpipe.config.conditions import compile_condition
from logpipe.config.model import BareWord, IfNode, PluginNode, Value
from logpipe.config.tagmatch import compile_tag_patterns
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import Filter, Input, Output, Plugin
from logpipe.reemit import with_reemits
from logpipe.regex_budget import batch_guard as regex_batch_guard
from logpipe.unmatched import Unmatched

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
        message = exc.message
        if message.startswith("unknown "):
            from logpipe.plugin_hints import unknown_plugin_message

            known = {kind: registry.known(kind) for kind in registry.KINDS}
            message = unknown_plugin_message(node.kind, node.name, node.language, node.directive_arg, known)
        raise ConfigError(message, node.pos) from None
    settings: dict[str, Any] = {}
    for key, value in node.settings.items():
        if isinstance(value.value, PluginNode):
            settings[key] = instantiate(value.value)
        else:
            settings[key] = plain(value)
    try:
        plugin = cls(**settings)
    except ConfigError as exc:
        raise ConfigError(exc.message, exc.pos or node.position_of(exc.setting, exc.at_name)) from None
    plugin.position_of = node.position_of  # errors the plugin raises later (in start) are placed too
    return plugin


# ---- filters ---------------------------------------------------------------------


@dataclass
class Built:
    """Every plugin instance of a pipeline, in config order, for start/close."""

    inputs: list[Input]
    filters: list[Filter]
    outputs: list[Output]


def compile_filters(nodes: list[Any], built: Built) -> FilterStep:
    """The filter section as one function from a batch to the batch that continues, in order;
    with a filter that re-emits (rewrite_tag_filter), re-emitted events run it again."""
    step = _compile_chain(nodes, built)[0]
    return with_reemits(step) if any(f.reemits for f in built.filters) else step


def _compile_chain(nodes: list[Any], built: Built) -> tuple[FilterStep, bool]:
    """(step, creates): `creates` is True when some filter in the chain may return events
    it was not given (split, clone, user plugins), which decides how a split batch is re-joined."""
    compiled = [_filter_step(node, built) for node in nodes]
    creates = any(c for _, c in compiled)
    steps = [s for s, _ in compiled]
    if not steps:
        return _identity, False
    if len(steps) == 1:
        return steps[0], creates

    def run(events: list[Event]) -> list[Event]:
        for step in steps:
            if not events:
                break
            events = step(events)
        return events

    return run, creates


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


def _filter_step(node: Any, built: Built) -> tuple[FilterStep, bool]:
    if isinstance(node, IfNode):
        chains = _compile_branches(node, _compile_chain, built)
        creates = any(c for _, (_, c) in chains)
        return _branching([(pred, body) for pred, (body, _) in chains], creates), creates
    plugin = instantiate(node)
    if not isinstance(plugin, Filter):
        raise ConfigError(f"'{plugin.name}' is a {plugin.kind} plugin, not a filter", getattr(node, "pos", None))
    built.filters.append(plugin)
    step = _guarded(plugin)
    creates = plugin.creates_events
    patterns = plugin.tag_patterns()
    if patterns:
        tag_ok = compile_tag_patterns(patterns)
        return _branching([(lambda ev: tag_ok(ev.tag), step)], creates), creates
    return step, creates


def _guarded(plugin: Filter) -> FilterStep:
    """A filter that raises must not lose the batch: the events pass on unchanged,
    tagged `_filter_error`, and the failure is logged and counted."""
    run = plugin.filter
    errors = plugin.metrics.counter("errors", "filter batches that raised")

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


def _branching(branches: list[tuple[Predicate | None, FilterStep]], creates: bool) -> FilterStep:
    """if / else if / else over a batch, keeping the batch's order (ARCHITECTURE.md, "Order").

    Each event is assigned the first branch whose condition holds (or none: it passes on
    unchanged). When the whole batch goes one way the body runs on the batch as it is —
    no copy, no re-join. Otherwise the parts are re-joined in their original order:
    - bodies that only change or drop the events they are given (`creates` False): each
      body runs once on its part, and the results are merged back by original position;
    - bodies that may create events (split, clone): each body runs on every run of
      consecutive events that took it, so new events stand where their parent stood.
    """
    preds = [pred for pred, _ in branches]
    bodies = [body for _, body in branches]
    none = len(branches)
    if none == 1 and preds[0] is not None:
        only = preds[0]

        def choose_one(events: list[Event]) -> list[int]:
            with regex_batch_guard() as cell:
                return [0 if _bumped(cell) and only(ev) else 1 for ev in events]

        choose = choose_one
    else:

        def choose_first(events: list[Event]) -> list[int]:
            out = []
            with regex_batch_guard() as cell:
                for ev in events:
                    cell[0] += 1
                    for i, pred in enumerate(preds):
                        if pred is None or pred(ev):
                            out.append(i)
                            break
                    else:
                        out.append(none)
            return out

        choose = choose_first
    rejoin = _rejoin_runs if creates else _rejoin_merged

    def step(events: list[Event]) -> list[Event]:
        choice = choose(events)
        first = choice[0]
        if choice.count(first) == len(choice):
            return events if first == none else bodies[first](events)
        return rejoin(events, choice, bodies)

    return step


def _bumped(cell: list[int]) -> bool:
    """One event more for the regex watchdog's progress counter (always true)."""
    cell[0] += 1
    return True


def _rejoin_merged(events: list[Event], choice: list[int], bodies: list[FilterStep]) -> list[Event]:
    """One call per body, results merged by the original position of each event.

    A body that returns an event it was not given (a filter that wrongly declared
    `creates_events = False`) is not an error: the stranger follows the last known
    event the body returned before it."""
    parts: list[list[Event]] = [[] for _ in range(len(bodies) + 1)]
    for ev, c in zip(events, choice):
        parts[c].append(ev)
    joined = parts[-1]
    for part, body in zip(parts, bodies):
        if part:
            joined.extend(body(part))
    # `events` holds every input alive for this call, so no id below can be reused.
    position = {id(ev): i for i, ev in enumerate(events)}
    keys: list[int] = []
    last = -1
    for ev in joined:
        last = position.get(id(ev), last)
        keys.append(last)
    return [joined[i] for i in sorted(range(len(joined)), key=keys.__getitem__)]


def _rejoin_runs(events: list[Event], choice: list[int], bodies: list[FilterStep]) -> list[Event]:
    """Each run of consecutive events that took the same branch goes through it as a batch."""
    out: list[Event] = []
    none = len(bodies)
    start = 0
    n = len(events)
    for i in range(1, n + 1):
        if i == n or choice[i] != choice[start]:
            run = events[start:i]
            out.extend(run if choice[start] == none else bodies[choice[start]](run))
            start = i
    return out


# ---- outputs ---------------------------------------------------------------------

Routed = list[tuple[str, list[Event]]]
Route = Callable[[list[Event]], Routed]


def compile_outputs(nodes: list[Any], built: Built) -> Route:
    """A function from a batch to [(output id, its events)]: fan-out to every output in
    the section, guarded by conditionals and `match` globs.

    Outputs are named by their id, not by their place in a list: the id is what the
    runners, metrics, file buffers and dead letters are keyed by, and what a worker
    process can send back (ARCHITECTURE.md, "Parallel pipeline"). The id is read when a
    batch is routed, because `assign_unique_ids` settles it after every plugin is built."""
    routes = [_output_route(node, built) for node in nodes]

    def route(events: list[Event]) -> Routed:
        out: Routed = []
        for r in routes:
            out.extend(r(events))
        return out

    return route


def _output_route(node: Any, built: Built) -> Route:
    if isinstance(node, IfNode):
        branches = _compile_branches(node, compile_outputs, built)
        unmatched = Unmatched().count if node.counts_unmatched else None

        def route_if(events: list[Event]) -> Routed:
            parts, rest = _partition(events, branches)
            if rest and unmatched is not None:
                unmatched(rest)
            out: Routed = []
            for part, (_, body) in zip(parts, branches):
                if part:
                    out.extend(body(part))
            return out

        return route_if
    plugin = instantiate(node)
    if not isinstance(plugin, Output):
        raise ConfigError(f"'{plugin.name}' is a {plugin.kind} plugin, not an output", getattr(node, "pos", None))
    if not any(plugin is known for known in built.outputs):
        # One object placed in several branches (pipelines built in code) is one output.
        built.outputs.append(plugin)
    patterns = plugin.tag_patterns()
    inject = plugin.injector
    if patterns:
        tag_ok = compile_tag_patterns(patterns)

        def route_match(events: list[Event]) -> Routed:
            part = [ev for ev in events if tag_ok(ev.tag)]
            if inject is not None:
                part = [inject(ev) for ev in part]
            return [(plugin.id, part)] if part else []

        return route_match
    if inject is not None:
        return lambda events: [(plugin.id, [inject(ev) for ev in events])]
    return lambda events: [(plugin.id, events)]


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
