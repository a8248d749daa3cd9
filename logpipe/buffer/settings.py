"""Buffer, retry and dead-letter settings common to every output (owned by the buffer engine).

Two ways to write them, one result (`BufferConfig`):

- Logstash style, flat settings on the output: `buffer => file`, `buffer_path => "/var/lib/x"`,
  `flush_interval => "5s"`, `retry_max_times => 10` …
- Fluentd style, a `<buffer ARGS>` subsection, which the Fluentd front-end hands over as the
  setting `buffer` whose value is a dict: `{"@type": "file", "@args": "tag,time",
  "path": "/var/log/td-agent/buffer", "timekey": "1h", …}`.

Inside the dict the names are Fluentd's (`path`, `fsync`); flat, the storage-specific ones
carry a `buffer_` prefix (`buffer_path`, `buffer_fsync`) because outputs have settings of
their own called `path`. A value written flat wins over the dict, which wins over the
output's `buffer_defaults`, which win over the engine's defaults below.

Every flat setting is declared with no default so the engine can tell "written" from
"not written"; the documented defaults are applied by `resolve_buffer_config`.
"""

from __future__ import annotations

import difflib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from logpipe.errors import ConfigError
from logpipe.settings import Setting, coerce_value

log = logging.getLogger("logpipe.buffer")

MIB = 1024 * 1024

#: Engine defaults per buffer type. Memory limits are far below Fluentd's 512MB because a
#: Python event takes several times its encoded size; a file chunk is decoded whole when it is
#: flushed, hence 8MB chunks rather than Fluentd's 256MB.
TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "memory": {
        "chunk_limit_size": 8 * MIB,
        "total_limit_size": 64 * MIB,
        "flush_at_shutdown": True,
    },
    "file": {
        "chunk_limit_size": 8 * MIB,
        "total_limit_size": 64 * 1024 * MIB,
        "flush_at_shutdown": False,
    },
}

COMMON_DEFAULTS: dict[str, Any] = {
    "chunk_keys": [],
    "chunk_limit_records": None,
    "timekey": None,
    "flush_interval": 1.0,
    "flush_thread_count": 1,
    "overflow_action": "block",
    "retry_type": "exponential_backoff",
    "retry_wait": 1.0,
    "retry_exponential_backoff_base": 2.0,
    "retry_max_interval": 60.0,
    "retry_max_times": None,
    "retry_timeout": 72 * 3600.0,
    "retry_forever": False,
    "retry_randomize": True,
    "dead_letter_path": None,
    "secondary": None,
    "path": None,
    "fsync": "always",
    "fsync_interval": 1.0,
    "flush_mode": "default",
    "timekey_wait": 600.0,
    "timekey_use_utc": False,
    "timekey_zone": None,
}

OVERFLOW_ACTIONS = ("block", "drop_oldest_chunk", "throw_exception")
RETRY_TYPES = ("exponential_backoff", "periodic")
FSYNC_POLICIES = ("always", "interval", "never")

_DOC_FSYNC = (
    "file buffer: always = every put is fsynced before it is acknowledged (group commit); "
    "interval = fsync every buffer_fsync_interval, acknowledgements wait for it; "
    "never = acknowledged once written to the OS (survives a process crash, not a power cut)"
)

BUFFER_SETTINGS: list[Setting] = [
    Setting("buffer", "any", doc="memory | file, or a Fluentd <buffer> section (default memory)"),
    Setting("buffer_path", "path", doc="file buffer directory (default STATE_DIR/buffer/OUTPUT_ID)"),
    Setting("buffer_fsync", "string", choices=FSYNC_POLICIES, doc=_DOC_FSYNC + " (default always)"),
    Setting("buffer_fsync_interval", "duration", doc="period of buffer_fsync => interval (default 1s)"),
    Setting("chunk_keys", "array", doc="chunk events by these keys besides the tag: time, a field, a sprintf"),
    Setting("timekey", "duration", doc="width of the time chunk key (required when chunk_keys has time)"),
    Setting("chunk_limit_size", "bytes", doc="a chunk is flushed once it is this big (default 8MB)"),
    Setting("chunk_limit_records", "int", doc="a chunk is flushed once it holds this many events"),
    Setting("total_limit_size", "bytes", doc="buffer capacity (default 64MB memory, 64GB file)"),
    Setting("flush_interval", "duration", doc="flush a chunk this long after its first event; 0 = at once "
            "(default 1s)"),
    Setting("flush_thread_count", "int", doc="concurrent chunk writers (default 1)"),
    Setting("flush_at_shutdown", "bool", doc="flush the buffer when stopping (default true memory, false file)"),
    Setting("overflow_action", "string", choices=OVERFLOW_ACTIONS + ("throw",),
            doc="when the buffer is full: block (default, backpressure), drop_oldest_chunk, throw_exception"),
    Setting("retry_type", "string", choices=RETRY_TYPES + ("exponential",),
            doc="exponential_backoff (default, with jitter) | periodic"),
    Setting("retry_wait", "duration", doc="first retry delay (default 1s)"),
    Setting("retry_exponential_backoff_base", "float", doc="growth factor of the delay (default 2)"),
    Setting("retry_max_interval", "duration", doc="longest retry delay (default 60s)"),
    Setting("retry_max_times", "int", doc="give up a chunk after this many retries (default unlimited)"),
    Setting("retry_timeout", "duration", doc="give up a chunk after retrying this long (default 72h)"),
    Setting("retry_forever", "bool", doc="never give up (default false)"),
    Setting("retry_randomize", "bool", doc="add jitter to exponential delays (default true)"),
    Setting("dead_letter_path", "path", doc="JSON-lines file for events that failed for good"),
    Setting("secondary", "hash", doc="output that receives events that failed for good: {\"@type\" => …}"),
]

_FLAT_BY_NAME = {s.name: s for s in BUFFER_SETTINGS}
#: Fluentd (<buffer> dict) name → flat setting that declares its type.
_DICT_NAMES: dict[str, str] = {
    **{s.name: s.name for s in BUFFER_SETTINGS if s.name not in ("buffer", "buffer_path", "buffer_fsync",
                                                                  "buffer_fsync_interval")},
    "path": "buffer_path",
    "fsync": "buffer_fsync",
    "fsync_interval": "buffer_fsync_interval",
}
#: Fluentd <buffer> parameters of the time chunk key (declared here: only the dict form has them).
_TIMEKEY_SETTINGS = {
    "timekey_wait": Setting("timekey_wait", "duration", min=0,
                            doc="lazy flush: a time chunk is written this long after its slot ends (600s)"),
    "timekey_use_utc": Setting("timekey_use_utc", "bool", doc="cut time slots at UTC midnight, not local"),
    "timekey_zone": Setting("timekey_zone", "string", doc="zone (offset or IANA name) the slots are cut in"),
}
#: Fluentd <buffer> parameters that have no meaning here, accepted so existing configs load.
_IGNORED_DICT_KEYS = frozenset({
    "chunk_full_threshold", "queued_chunks_limit_size",
    "compress", "delayed_commit_timeout", "flush_thread_interval", "flush_thread_burst_interval",
    "retry_secondary_threshold", "disable_chunk_backup", "path_suffix", "queue_limit_length",
})
#: Flat name → key in BufferConfig / COMMON_DEFAULTS.
_FIELD_OF = {"buffer_path": "path", "buffer_fsync": "fsync", "buffer_fsync_interval": "fsync_interval"}


@dataclass
class BufferConfig:
    """The resolved buffer settings of one output (types checked, defaults applied)."""

    type: str
    path: str | None
    chunk_keys: list[str]
    timekey: float | None
    chunk_limit_size: int
    chunk_limit_records: int | None
    total_limit_size: int
    flush_interval: float
    flush_thread_count: int
    flush_at_shutdown: bool
    overflow_action: str
    retry_type: str
    retry_wait: float
    retry_exponential_backoff_base: float
    retry_max_interval: float | None
    retry_max_times: int | None
    retry_timeout: float | None
    retry_forever: bool
    retry_randomize: bool
    dead_letter_path: str | None
    secondary: dict[str, Any] | None
    fsync: str
    fsync_interval: float
    #: interval (every flush_interval), lazy (a time chunk when its slot + timekey_wait is over),
    #: immediate; "default" is resolved to one of them by resolve_buffer_config, as Fluentd does.
    flush_mode: str = "interval"
    timekey_wait: float = 600.0
    timekey_use_utc: bool = False
    timekey_zone: str | None = None

    def timekey_offset(self) -> int:
        """Seconds east of UTC that time slots are cut at (Fluentd: local zone unless timekey_use_utc)."""
        return timekey_offset(self.timekey_use_utc, self.timekey_zone)


def resolve_buffer_config(params: dict[str, Any], output_defaults: dict[str, Any] | None = None) -> BufferConfig:
    """Merge flat settings, the `buffer` dict, the output's preferences and the engine defaults.

    Raises ConfigError(setting=…) for anything a user wrote wrong.
    """
    raw = params.get("buffer")
    section: dict[str, Any] = {}
    if raw is None:
        kind = None
    elif isinstance(raw, str):
        kind = raw.strip().lower()
    elif isinstance(raw, dict):
        section = _coerce_section(raw)
        kind = section.pop("type", None)
    else:
        raise ConfigError("setting 'buffer' expects memory, file or a <buffer> section", setting="buffer")
    prefs = dict(output_defaults or {})
    kind = kind or str(prefs.get("buffer", "memory")).lower()
    if kind not in TYPE_DEFAULTS:
        raise ConfigError(f"setting 'buffer' must be 'memory' or 'file', got {kind!r}", setting="buffer")
    values: dict[str, Any] = {**COMMON_DEFAULTS, **TYPE_DEFAULTS[kind]}
    for name, value in prefs.items():
        if name != "buffer":
            values[_FIELD_OF.get(name, name)] = value
    values.update(section)
    for name in _FLAT_BY_NAME:
        if name != "buffer" and params.get(name) is not None:
            values[_FIELD_OF.get(name, name)] = params[name]
    values["flush_mode"] = _flush_mode(values, section, params, prefs)
    values["overflow_action"] = {"throw": "throw_exception"}.get(values["overflow_action"],
                                                                 values["overflow_action"])
    values["retry_type"] = {"exponential": "exponential_backoff"}.get(values["retry_type"], values["retry_type"])
    values["chunk_keys"] = [str(k).strip() for k in values["chunk_keys"] if str(k).strip()]
    config = BufferConfig(type=kind, **{k: values[k] for k in COMMON_DEFAULTS if k in values},
                          **{k: values[k] for k in TYPE_DEFAULTS[kind]})
    _check(config)
    if config.path is not None:
        config.path = os.path.expanduser(config.path)
    return config


def _coerce_section(raw: dict[str, Any]) -> dict[str, Any]:
    """Type-check a Fluentd <buffer> dict with the same declarations as the flat settings."""
    out: dict[str, Any] = {}
    known = sorted(set(_DICT_NAMES) | {"@type", "type", "@args", "flush_mode"})
    for key, value in raw.items():
        if key in ("@type", "type"):
            out["type"] = str(value).strip().lower()
        elif key == "@args":
            args = value if isinstance(value, list) else str(value).strip().strip("[]").split(",")
            out["chunk_keys"] = [str(a).strip() for a in args if str(a).strip()]  # `<buffer []>`: none
        elif key == "flush_mode":
            mode = str(value).strip().lower()
            if mode not in ("default", "lazy", "interval", "immediate"):
                raise ConfigError(f"buffer flush_mode must be default, lazy, interval or immediate, got {mode!r}",
                                  setting="buffer.flush_mode")
            out["flush_mode"] = mode
            if mode == "immediate":
                out["flush_interval"] = 0.0
        elif key in _TIMEKEY_SETTINGS:
            try:
                out[key] = coerce_value(_TIMEKEY_SETTINGS[key], value)
            except ConfigError as exc:
                raise ConfigError(f"<buffer> {key}: {exc.message}", setting=f"buffer.{key}") from None
            if key == "timekey_zone":
                timekey_offset(False, out[key])
        elif key in _IGNORED_DICT_KEYS:
            continue
        elif key in _DICT_NAMES:
            setting = _FLAT_BY_NAME[_DICT_NAMES[key]]
            try:
                out[_FIELD_OF.get(setting.name, setting.name)] = coerce_value(setting, value)
            except ConfigError as exc:
                raise ConfigError(f"<buffer> {key}: {exc.message}", setting="buffer") from None
        else:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown <buffer> parameter '{key}'{hint}", setting="buffer")
    return out


def _flush_mode(values: dict[str, Any], section: dict[str, Any], params: dict[str, Any],
                prefs: dict[str, Any]) -> str:
    """Fluentd's choice for flush_mode default: interval when flush_interval is written flat
    (v0.12 style), lazy when a Fluentd <buffer> (or the output's own default) chunks by time,
    interval otherwise. Logstash-style flat chunk_keys keep interval."""
    mode = values["flush_mode"]
    if mode != "default":
        return "interval" if mode == "immediate" else mode
    if params.get("flush_interval") is not None:
        return "interval"
    time_from_fluentd = "chunk_keys" in section or "chunk_keys" in prefs and params.get("chunk_keys") is None
    if "time" in values["chunk_keys"] and time_from_fluentd:
        if "flush_interval" in section:
            log.warning("'flush_interval' is ignored because default 'flush_mode' is not 'interval': 'lazy'")
        return "lazy"
    return "interval"


def timekey_offset(use_utc: bool, zone: str | None) -> int:
    """Seconds east of UTC of the zone time slots are cut in: UTC, `timekey_zone`, or the
    local zone now (Fluentd takes `Time.now.strftime('%z')` once, at configure)."""
    if use_utc:
        return 0
    if zone:
        from datetime import datetime

        from logpipe.timefmt import resolve_zone

        try:
            tz = resolve_zone(zone)
        except ConfigError as exc:
            raise ConfigError(f"<buffer> timekey_zone: {exc.message}", setting="buffer.timekey_zone") from None
        offset = datetime.now(tz).utcoffset() if tz is not None else None
        return int(offset.total_seconds()) if offset is not None else 0
    return int(time.localtime().tm_gmtoff)


def _check(config: BufferConfig) -> None:
    def positive(name: str, value: float | None, allow_zero: bool = False) -> None:
        if value is not None and (value < 0 or (value == 0 and not allow_zero)):
            raise ConfigError(f"setting '{name}' must be {'>= 0' if allow_zero else '> 0'}, got {value}",
                              setting=name)

    positive("chunk_limit_size", config.chunk_limit_size)
    positive("chunk_limit_records", config.chunk_limit_records)
    positive("total_limit_size", config.total_limit_size)
    positive("flush_interval", config.flush_interval, allow_zero=True)
    positive("flush_thread_count", config.flush_thread_count)
    positive("retry_wait", config.retry_wait)
    positive("retry_max_interval", config.retry_max_interval)
    positive("retry_max_times", config.retry_max_times, allow_zero=True)
    positive("retry_timeout", config.retry_timeout, allow_zero=True)
    positive("timekey", config.timekey)
    positive("buffer_fsync_interval", config.fsync_interval)
    if config.retry_exponential_backoff_base < 1:
        raise ConfigError("setting 'retry_exponential_backoff_base' must be >= 1",
                          setting="retry_exponential_backoff_base")
    for name, value, allowed in (
        ("overflow_action", config.overflow_action, OVERFLOW_ACTIONS),
        ("retry_type", config.retry_type, RETRY_TYPES),
        ("buffer_fsync", config.fsync, FSYNC_POLICIES),
    ):
        if value not in allowed:
            raise ConfigError(f"setting '{name}' must be one of {', '.join(allowed)}, got {value!r}", setting=name)
    if "time" in config.chunk_keys and config.timekey is None:
        raise ConfigError("chunk key 'time' needs a 'timekey' (for example 1h)", setting="timekey")
    if config.secondary is not None and not (config.secondary.get("@type") or config.secondary.get("type")):
        raise ConfigError("setting 'secondary' needs an '@type' (the output plugin to use)", setting="secondary")
