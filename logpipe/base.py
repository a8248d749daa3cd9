"""The plugin base classes: Plugin, Input, Filter, Output, Codec, Helper.

Plugin authors import these from `logpipe.plugin`, which re-exports them with
everything else a plugin needs; this module exists apart so that the helpers
(logpipe/helpers/), which `logpipe.plugin` also re-exports, can build on the base
classes without an import cycle.

A plugin declares its settings once (`settings = [Setting(...)]`); that single
declaration drives validation, error messages, defaults, attributes and `logpipe
plugins`. Plugins are built from their settings alone (`GrokFilter(match={...})`), so a
pipeline can be rebuilt anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from logpipe import registry
from logpipe.buffer.deadletter import describe_item
from logpipe.buffer.retry import RETRIED
from logpipe.buffer.settings import BUFFER_SETTINGS, resolve_buffer_config
from logpipe.config.tagmatch import compile_tag_patterns
from logpipe.decorate import build_decorator
from logpipe.errors import ConfigError, Pos, RetryableError
from logpipe.event import Event
from logpipe.fields import timestamp_to_ns
from logpipe.helpers import ecs
from logpipe.helpers.inject import compile_injector
from logpipe.helpers.timer import Timers
from logpipe.metrics import PluginMetrics
from logpipe.reemit import reemit
from logpipe.settings import PluginBlock, Setting, coerce_settings, written_names

__all__ = [
    "RETRIED", "TAG_MATCH", "TAG_MATCH_ALIAS", "AckCallback", "Codec", "Filter", "Helper", "Input", "InputContext",
    "Output", "Plugin", "RetryableError", "WriteResult",
]

#: The common tag filter of filters and outputs. Plugins whose own `match` setting means
#: something else (grok, date) replace it; `match_tag` is the unambiguous spelling.
TAG_MATCH = Setting("match", "array", doc="only events whose tag matches one of these globs")
TAG_MATCH_ALIAS = Setting("match_tag", "array", doc="same as the common `match`: Fluentd tag globs")


class Helper:
    """Plugin machinery shared by several plugins that brings its own settings (Fluentd's
    `helpers :server, :timer`). A plugin composes helpers by listing them,
    `helpers = [Server, TlsServer]`: their settings join the plugin's own (a setting the
    plugin declares itself, by the same name, wins: that is how a plugin changes a
    default), and the helper's functions read them back from the plugin's attributes."""

    settings: ClassVar[list[Setting]] = []

    @classmethod
    def settings_for(cls, plugin: type[Plugin]) -> list[Setting]:
        """The settings this helper adds to `plugin` (a helper may adapt defaults to it)."""
        return list(cls.settings)


#: Fluentd's log levels (`@log_level`, `<system> log_level`) → logging's.
_LOG_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL}


class Plugin(PluginBlock):
    """Base of every plugin. Subclasses set `kind`, `name`, `settings`, and read their
    validated settings as attributes (`self.path`, `self.tag` …) — the one way to read
    settings; `self.params` holds the same values by declared name, for generic code."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    settings: ClassVar[list[Setting]] = []
    #: Helpers whose settings this plugin takes (see Helper).
    helpers: ClassVar[list[type[Helper]]] = []
    _shadowed: ClassVar[frozenset[str] | None] = None
    common_settings: ClassVar[list[Setting]] = [
        Setting("id", "string", doc="a unique name for this plugin instance (logs, metrics)"),
        Setting("@log_level", "string", choices=tuple(_LOG_LEVELS),
                doc="Fluentd @log_level: this plugin's own log level"),
    ]

    def __init__(self, **settings: Any) -> None:
        cls = type(self)
        #: What it was built with: a plugin object travels to a worker process as its class and these.
        self.given_settings: dict[str, Any] = dict(settings)
        values = coerce_settings(cls, settings)
        self._written = written_names(cls.all_settings(), list(settings))
        self._build_codecs(values)
        if "ecs_compatibility" in values and values["ecs_compatibility"] is None:
            values["ecs_compatibility"] = ecs.DEFAULT_MODE  # not set: the pipeline-wide default
        self.params: dict[str, Any] = values
        for attr, value in attribute_values(cls, values).items():
            setattr(self, attr, value)
        self.id: str = values.get("id") or f"{self.name}"
        self.log = self._logger(values)
        self.metrics = PluginMetrics(self)
        #: Periodic callbacks; the core cancels them when it closes the plugin (`lifecycle_close`).
        self.timers = Timers(self.log)
        #: Called with each batch a filter hands on (`logpipe test`, taps); empty when nobody looks.
        self.observers: list[Callable[[list[Event]], None]] = []
        #: Where this plugin was written; the builder sets it (see `placed`).
        self.position_of: Callable[[str | None, bool], Pos | None] = _nowhere
        self._check_tag_globs()

    def _logger(self, values: dict[str, Any]) -> logging.Logger:
        """The plugin's logger; with `@log_level` one of its own, so other instances of the
        plugin keep theirs."""
        level = values.get("@log_level")
        if level is None:
            return logging.getLogger(f"logpipe.{self.kind}.{self.name}")
        log = logging.getLogger(f"logpipe.{self.kind}.{self.name}.{values.get('id') or id(self)}")
        log.setLevel(_LOG_LEVELS[level])
        return log

    def _build_codecs(self, values: dict[str, Any]) -> None:
        """A codec setting written as a name (`codec => json`) becomes that codec."""
        for setting in type(self).all_settings():
            if setting.type == "codec" and isinstance(values.get(setting.name), str):
                try:
                    values[setting.name] = registry.create("codec", values[setting.name])
                except ConfigError as exc:
                    if exc.setting is not None or exc.pos is not None:
                        raise  # the codec's own settings: already placed
                    raise ConfigError(exc.message, setting=setting.name) from None

    def _check_tag_globs(self) -> None:
        """Checked here, where the error can name the setting; the router compiles them again."""
        tag_setting = self._tag_setting()  # not tag_patterns(): subclasses override it with their own state
        if tag_setting is not None:
            try:
                compile_tag_patterns(list(self.params[tag_setting]))
            except ConfigError as exc:
                raise ConfigError(exc.message, setting=tag_setting) from None

    def placed(self, exc: ConfigError) -> ConfigError:
        """`exc` at the place in the config it is about: the setting it names, or this
        plugin's block. Used for errors raised after construction (in `start`)."""
        if exc.pos is not None:
            return exc
        pos = self.position_of(exc.setting, exc.at_name)
        if pos is None:
            return exc
        return ConfigError(exc.message, pos, setting=exc.setting)

    async def lifecycle_start(self) -> None:
        """How the core starts a plugin: `start`, with a ConfigError placed at where the
        plugin was written (a port in use points at `port`)."""
        try:
            await self.start()
        except ConfigError as exc:
            raise self.placed(exc) from None

    async def lifecycle_close(self) -> None:
        """How the core closes a plugin: `close`, then cancel its timers (also when
        `close` raises)."""
        try:
            await self.close()
        finally:
            await self.timers.close()

    def setting_name(self, declared: str) -> str:
        """The name the user wrote for a declared setting (an old alias, the other
        front-end's spelling), for errors that must name what to edit."""
        return self._written.get(declared, declared)

    def _tag_setting(self) -> str | None:
        """Which setting holds the tag globs: `match_tag`, or the common `match` (None if neither)."""
        if self.params.get("match_tag"):
            return "match_tag"
        own = next((s for s in type(self).all_settings() if s.name == "match"), None)
        if own is TAG_MATCH and self.params.get("match"):
            return "match"
        return None

    def tag_patterns(self) -> list[str] | None:
        """The Fluentd tag globs this filter or output is limited to, if any."""
        setting = self._tag_setting()
        return None if setting is None else list(self.params[setting])

    @classmethod
    def shadowed_settings(cls) -> frozenset[str]:
        """Settings whose attribute name this class uses for a method or property."""
        found = cls.__dict__.get("_shadowed")
        if found is None:
            for s in cls.all_settings():
                if attribute_name(s.name) in _IDENTITY:
                    raise TypeError(f"{cls.__name__}: setting {s.name!r} would replace the plugin's own "
                                    f"{attribute_name(s.name)!r}; declare it under another name with "
                                    f"spellings=({s.name!r},)")
            found = frozenset(
                attribute_name(s.name) for s in cls.all_settings()
                if callable(getattr(cls, attribute_name(s.name), None))
                or isinstance(getattr(cls, attribute_name(s.name), None), property)
            )
            cls._shadowed = found
        return found

    @classmethod
    def all_settings(cls) -> list[Setting]:
        seen: dict[str, Setting] = {}
        helper_settings = [s for helper in cls.helpers for s in helper.settings_for(cls)]
        for s in cls.common_settings + helper_settings + cls.settings:
            seen[s.name] = s
        return list(seen.values())

    async def start(self) -> None:
        """Open connections, files … Called once before events flow."""

    async def close(self) -> None:
        """Release everything. Called once after the last event."""


#: What a plugin class says about itself; a setting read as one of these would overwrite it.
_IDENTITY = frozenset({"kind", "name", "doc", "settings", "helpers", "common_settings"})


def _nowhere(setting: str | None, at_name: bool = False) -> Pos | None:
    return None


def attribute_name(setting: str) -> str:
    """The attribute a setting is read from: `@label` → `label`, `max-size` → `max_size`."""
    return setting.lstrip("@").replace("-", "_")


def attribute_values(cls: type[Plugin], values: dict[str, Any]) -> dict[str, Any]:
    """The settings as attributes. A setting whose attribute a plugin class defines as a
    method or property (Input's `event_tag` stays computed) is read from `params` only;
    `shadowed_settings` lists those names so the choice is visible, not silent."""
    out = {}
    for key, value in values.items():
        attr = attribute_name(key)
        if attr not in cls.shadowed_settings():
            out[attr] = value
    return out


# ---- inputs ----------------------------------------------------------------------

AckCallback = Callable[[], None]


class InputContext:
    """What an input is handed by the pipeline.

    `emit(events, on_ack)` hands a batch to the pipeline and waits while the pipeline
    is full (backpressure). `on_ack` is called exactly once, on the event loop, when
    every output the batch was routed to has delivered it or stored it durably (at
    once if the events were dropped or routed nowhere). Inputs commit — save a
    position, send an ack — only from `on_ack`.
    """

    def __init__(
        self,
        emit: Callable[[list[Event], AckCallback | None], Awaitable[None]],
        state_dir: str,
        plugin_id: str,
    ) -> None:
        self.emit = emit
        self.state_dir = state_dir
        self.plugin_id = plugin_id


class Input(Plugin):
    """An input runs as one task. `run` returns when a finite input is exhausted
    (stdin at EOF, generator count reached); an endless one runs until the task is
    cancelled at shutdown, and must leave its committed state consistent when it is.
    """

    kind = "input"
    common_settings = Plugin.common_settings + [
        Setting("tag", "string", doc="routing tag of the events (Fluentd style)"),
        Setting("type", "string", doc="Logstash `type` field set on every event"),
        Setting("tags", "array", doc="tags added to every event"),
        Setting("add_field", "hash", default={}, doc="fields added to every event (sprintf)"),
        Setting("codec", "codec", doc="how bytes become records"),
        Setting("@label", "string", doc="Fluentd label: route these events to a <label> section"),
    ]

    async def run(self, ctx: InputContext) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """What this input wants shown in /stats (e.g. tail's per-file lag); {} for nothing."""
        return {}

    @property
    def event_tag(self) -> str:
        """The tag events get when the user set none: the plugin's name (`stdin`, `generator`)."""
        return self.params.get("tag") or self.name


# ---- filters ---------------------------------------------------------------------


class Filter(Plugin):
    """Filters transform batches synchronously: per-event Python is the budget, so a
    filter gets the whole batch and returns the batch that continues (it may drop,
    change or add events). On success for an event a filter calls `self.matched(ev)`
    (Logstash's filter_matched), which applies the common add/remove options.

    Order: a filter returns events in the order it got them (new events where their
    parent stood). Set `creates_events = False` when `filter` only changes or drops the
    events it is given — never returns a new or an earlier batch's event: the pipeline
    then re-joins a batch that a conditional split with one call per branch and a merge
    by position. Left True (the safe default: split, clone), a split batch goes through
    the branch in runs of consecutive events, so new events stay in place."""

    kind = "filter"
    creates_events: ClassVar[bool] = True
    #: True when the filter sends events back to the top of the filter stage (`reemit`):
    #: the pipeline then runs each batch's re-emitted events again (logpipe/reemit.py).
    reemits: ClassVar[bool] = False
    #: Pipeline workers (ARCHITECTURE.md, "Parallel pipeline"): each worker process builds its
    #: own instance from the settings and gets some of the batches. Set False when that would
    #: change what the filter does — state across batches (throttle's counters), side effects
    #: that must happen once and in order (the stdout filter), holding a batch's ack
    #: (`current_ack`) or emitting on its own (`reinject`): the whole pipeline then runs in
    #: one process, with a warning. Per-process caches (lookups, metadata) are fine.
    parallel: ClassVar[bool] = True
    common_settings = Plugin.common_settings + [
        Setting("add_field", "hash", default={}, doc="fields to add on success (sprintf in keys and values)"),
        Setting("add_tag", "array", default=[], doc="tags to add on success (sprintf)"),
        Setting("remove_field", "array", default=[], doc="fields to remove on success"),
        Setting("remove_tag", "array", default=[], doc="tags to remove on success"),
        TAG_MATCH,
        TAG_MATCH_ALIAS,
        Setting("periodic_flush", "bool", default=False, doc="accepted for Logstash compatibility"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._decorate = build_decorator(
            self.add_field, self.add_tag, self.remove_field, self.remove_tag  # type: ignore[attr-defined]
        )
        #: Set by the pipeline when it starts: hands a new batch to the top of the filter stage
        #: (events a filter emits on its own, such as a timeout flush), waiting while the
        #: pipeline is full; `on_ack` runs once the batch is delivered. None outside a pipeline.
        self.reinject: Callable[[list[Event], AckCallback | None], Awaitable[None]] | None = None

    def filter(self, events: list[Event]) -> list[Event]:
        raise NotImplementedError

    def reemit(self, events: list[Event]) -> bool:
        """Send events back to the top of the filter stage in this batch (Fluentd's
        `router.emit`); declare `reemits = True`. False outside a pipeline's filter stage."""
        return reemit(events)

    async def drain(self) -> None:
        """Called at shutdown once the inputs have stopped, before the filter stage drains:
        a filter that holds events emits them now (through `reinject`)."""

    def stats(self) -> dict[str, Any]:
        """What this filter wants shown in /stats (e.g. grok's last failing lines); {} for nothing."""
        return {}

    def matched(self, event: Event) -> None:
        """Apply add_field/add_tag/remove_field/remove_tag to an event the filter handled."""
        if self._decorate is not None:
            self._decorate(event)

    @property
    def decorates(self) -> bool:
        """False when no common option is set, so filters can skip the per-event call."""
        return self._decorate is not None


# ---- outputs ---------------------------------------------------------------------


@dataclass
class WriteResult:
    """Per-item outcome of `Output.write`. Indices refer to the items passed in (the
    formatted items, or the events of an output that wants events); every index not
    listed was delivered. `retry` items are retried alone; `failed` items (index,
    reason) go to the dead-letter route."""

    retry: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


class Output(Plugin):
    """Outputs are split as in Fluentd: `format` (pure CPU) and `write` (I/O only).

    - `format(events) -> list[bytes]`: exactly one item per event, in order — the bytes
      this output will send for it (a JSON line for file and stdout, the bulk action and
      source lines for Elasticsearch, a msgpack entry for forward, a BSON document for
      Mongo). Pure: no I/O, no state that changes, because it may run in a worker process
      (pipeline.workers) built from the settings alone. The buffer stores these items
      (memory and file buffers alike, sized by their byte length), so a replay never
      formats again. Whatever `write` needs to know per event (a file path, a collection,
      a tag) must be inside the item. If `format` raises, the core formats the events one
      by one: the events that fail alone are dead-lettered with the reason, the rest go on.
    - `async write(items) -> WriteResult | None`: sends a chunk of items. Return None
      (all delivered) or a WriteResult whose indexes refer to `items`. Raise
      RetryableError (or an OSError / TimeoutError) when the whole chunk may pass later:
      it is retried with backoff (RETRIED), as are the client library's transport errors
      the output lists in `retryable_errors`. Any other exception is a programming or
      data error: the chunk is dead-lettered at once, with the reason, instead of failing
      the same way forever.
    - `describe(item)`: what a dead letter shows for an item; the default decodes JSON
      (JSON lines: a list when there are several) and falls back to base64.

    Outputs that need `Event` objects (the embedding CallbackOutput, test collectors,
    simple user plugins) do not override `format`: then `wants_events` is True and
    `write` gets the events themselves, formatted nowhere; with pipeline workers such an
    output is fed from the main process (its events travel back from the workers).
    """

    kind = "output"
    common_settings = Plugin.common_settings + [
        TAG_MATCH,
        TAG_MATCH_ALIAS,
        Setting("codec", "codec", doc="how events become bytes"),
        Setting("inject", "hash", doc="Fluentd <inject>: time_key, time_type, time_format, localtime, tag_key, "
                "hostname_key written into each record before it is written"),
    ] + BUFFER_SETTINGS
    #: Buffer settings this output prefers when the user sets none (e.g. stdout flushes at once).
    buffer_defaults: ClassVar[dict[str, Any]] = {}
    #: Exceptions of this output's client library that mean "the destination, try later"
    #: (retried like OSError); every other exception from `write` dead-letters the chunk.
    retryable_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        # The buffer engine resolves these again when it starts; checking them here as well is what
        # lets `logpipe check` and the loader report a bad <buffer> value at file:line:col.
        buffer = resolve_buffer_config(self.params, type(self).buffer_defaults)
        if buffer.secondary is not None:
            self._check_secondary(buffer)
        self.injector = compile_injector(self.params["inject"]) if self.params.get("inject") else None

    @staticmethod
    def _check_secondary(buffer: Any) -> None:
        """Build the `<secondary>` once here (the runner builds its own at start), so that
        `logpipe check` and the loader report its mistakes at their lines."""
        settings = dict(buffer.secondary)
        name = str(settings.pop("@type", None) or settings.pop("type", "")).strip()
        settings.pop("type", None)
        try:
            cls = registry.lookup("output", name)
        except ConfigError:
            return  # not known here: the runner's own factory may know it (and says so at start)
        try:
            secondary = cls(**settings)
            bind = getattr(secondary, "bind_primary", None)
            if bind is not None:
                bind(buffer)
        except ConfigError as exc:
            if exc.pos is not None:
                raise
            where = exc.setting if exc.setting and exc.setting.startswith("secondary") else \
                f"secondary.{exc.setting}" if exc.setting else "secondary"
            raise ConfigError(exc.message, setting=where) from None

    @property
    def wants_events(self) -> bool:
        """True when this output takes events in `write` (it does not override `format`)."""
        return type(self).format is Output.format

    def format(self, events: list[Event]) -> list[bytes]:
        raise NotImplementedError

    async def write(self, items: Any) -> WriteResult | None:
        """`items`: list[bytes] from `format`, or list[Event] when `wants_events`."""
        raise NotImplementedError

    def describe(self, item: bytes) -> Any:
        return describe_item(item)

    def chunk_bytes(self, item: bytes) -> bytes:
        """The item as a Fluentd chunk of this output holds it (what secondary_file dumps):
        the item itself; outputs that prefix a destination (logpipe.helpers.routed) strip it."""
        return item


# ---- codecs ----------------------------------------------------------------------


class Codec(Plugin):
    """Codecs turn bytes into records and events into bytes, a batch at a time.

    A decoded record may carry `@timestamp` (the event's time) and `@metadata`; inputs build
    their events with `events()`, which honours both. A codec that holds records back across
    calls (multiline) returns them from `flush`, which inputs call at end of input and after
    `flush_interval` seconds without new lines."""

    kind = "codec"
    #: Seconds of silence after which an input calls `flush` (None: only at end of input).
    flush_interval: float | None = None

    def flush(self) -> list[dict[str, Any]]:
        """Records still held back (nothing, for codecs that hold nothing)."""
        return []

    def events(self, tag: str, now: int, records: list[dict[str, Any]]) -> list[Event]:
        """Events from decoded records: `@timestamp` becomes the event time, `@metadata` its meta."""
        out = []
        for record in records:
            meta = record.pop("@metadata", None) if "@metadata" in record else None
            time = now
            if "@timestamp" in record:
                parsed = timestamp_to_ns(record["@timestamp"])
                if parsed is not None:
                    del record["@timestamp"]
                    time = parsed
            out.append(Event(tag, time, record, meta if isinstance(meta, dict) else None))
        return out

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        """One record per line (a line-framed input already split the stream)."""
        raise NotImplementedError

    def encode(self, events: list[Event]) -> bytes:
        raise NotImplementedError

    def encode_each(self, events: list[Event]) -> list[bytes]:
        """One encoded item per event (what `Output.format` of a codec-driven output
        returns); override when a batch loop is cheaper than one `encode` per event."""
        encode = self.encode
        return [encode([ev]) for ev in events]

registry.register_bases({"input": Input, "filter": Filter, "output": Output, "codec": Codec})
