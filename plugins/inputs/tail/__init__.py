"""Tail files: Fluentd's `in_tail` (`tail`) and Logstash's `file` input (`file`).

Both names run the same engine (tail_engine.py); they differ only in the names
of their settings and in the fields they put on a record:

- `tail` (Fluentd): `{"message": line}` (format none), plus the path under
  `path_key` when set; `tag` with `*` expanded from the path (`/` → `.`).
- `file` (Logstash): `message`, and the path and host as Logstash's file input
  writes them: `[log][file][path]` and `[host][name]` (ecs_compatibility v1/v8), or
  `path` and `host` (disabled, the pipeline-wide default: logpipe/helpers/ecs.py). The tag is
  `tag` when set, else `file`.

Delivery: a file's position is saved only up to acknowledged bytes, atomically,
at most every `save_interval` and at close; after a crash anything not
acknowledged is read again. Files present at the first scan start at their end
unless `read_from_head` / `start_position => beginning`; files that appear later
(a rotated-in file, a new file matching the glob) are read from their start, so
nothing written before they were found is lost.

Formats (`format`, Fluentd `<parse>`, or Logstash `codec => plain|json`): none,
json, `/regexp/` with named groups, and the grok engine's named formats
(apache2, nginx, syslog …), whose `time` becomes the event time as in Fluentd.
Unparsable lines keep `message` and get `_jsonparsefailure` / `_grokparsefailure`.

Multiline: `multiline => { pattern => "^\\s" what => "previous" negate => false
flush_interval => 5 max_lines => 500 max_bytes => "10MB" }` (Logstash codec
semantics, grok references allowed in the pattern, flush_interval also as
`auto_flush_interval`), or the flat
`multiline_pattern`/`multiline_negate`/`multiline_what`/`multiline_flush_interval`,
or a Fluentd `<parse> @type multiline format_firstline … format1 …`. Stack-trace
presets (Fluent Bit's built-in multiline parsers java, python, go, ruby):
`multiline => { preset => "java" }` or `multiline_preset java` (both inputs), or
`multiline_preset java` inside a Fluentd `<parse> @type cri|docker`.

Container logs (`format => "cri" | "docker" | "auto"`; Fluentd `<parse> @type cri`
(fluent-plugin-parser-cri's name), `@type docker`, `@type json` on a path under a
`containers/` directory (docker json-file, as fluentd-kubernetes-daemonset reads
it), or `@type multi_format` with a json and a CRI pattern, the daemonset's pair):
partial lines joined per stream (container.py), the runtime's time as the event
time, `stream` a field, the text in `log` (tail) or `message` (file), at most
`max_line_size` per joined line; multiline then runs per stream.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from logpipe.helpers import ecs
from logpipe.helpers.container_log import ContainerFormat
from logpipe.helpers.multiline import MultilineSpec
from logpipe.helpers.multiline_presets import PRESETS, PresetSpec
from logpipe.helpers.parser import Parser, TimeExtractor, make_parser, make_time_extractor, parse_none
from logpipe.helpers.parsers import ParseError, build_parser, flat_parse_section
from logpipe.helpers.parsers.base import ruby_regex
from logpipe.plugin import ConfigError, Input, InputContext, Section, Setting
from logpipe.settings import coerce_value
from logpipe_plugins.inputs.tail.engine import Tailer
from logpipe_plugins.inputs.tail.file import Decorate, TailOptions
from logpipe_plugins.inputs.tail.paths import split_paths

#: in_tail parameters that change nothing here, with the reason (README lists them).
TAIL_NO_EFFECT = {
    "follow_inodes": "files are always followed by inode and fingerprint",
    "enable_stat_watcher": "logpipe polls with stat_interval, there is no inotify watcher",
    "enable_watch_timer": "logpipe polls with stat_interval",
    "skip_refresh_on_startup": "paths are expanded once at start either way",
    "ignore_repeated_permission_error": "permission errors are logged once per file already",
    "read_bytes_limit_per_second": "reads are bounded by batch_size and backpressure",
    "pos_file_compaction_interval": "the position file is rewritten whole, never grows",
    "path_timezone": "tags never carry time placeholders here",
    "encoding_fallback": "invalid bytes become U+FFFD",
}

_SHARED_SETTINGS = [
    Setting("path", "array", required=True, doc="files to read: globs (*, **, {a,b}); Fluentd's a,b lists"),
    Setting("rotate_wait", "duration", 5.0, doc="keep reading a rotated or deleted file this long after its last data"),
    Setting("ignore_older", "duration", doc="do not open files last modified longer ago than this"),
    Setting("max_line_size", "bytes", 1 << 20, doc="longer lines are truncated (tag _linetruncated) or skipped"),
    Setting("max_line_action", "string", "truncate", choices=("truncate", "skip"),
            doc="what to do with lines over max_line_size"),
    Setting("encoding", "string", "utf-8", doc="character set of the files; invalid bytes become U+FFFD"),
    Section("multiline", [
        Setting("pattern", "string", doc="regex (grok references allowed) a line is tested against",
                example="^%{TIMESTAMP_ISO8601} "),
        Setting("negate", "bool", doc="join the lines that do not match (default false)"),
        Setting("what", "string", choices=("previous", "next"),
                doc="a joined line belongs to the previous or the next line (default previous)"),
        Setting("preset", "string", choices=PRESETS,
                doc="instead of a pattern: a built-in stack-trace joiner (Fluent Bit's java, python, go, ruby)"),
        Setting("flush_interval", "duration", min=0, spellings=("auto_flush_interval",),
                doc="emit a pending event after this long without a new line (default multiline_flush_interval)"),
        Setting("max_lines", "int", min=1, doc="lines joined into one event at most (default 500; preset 1000)"),
        Setting("max_bytes", "bytes", min=1, doc="bytes joined into one event at most (default 10MB)"),
    ], doc="join lines into events (Logstash's multiline codec settings)",
       example='multiline => { pattern => "^\\s" what => "previous" }'),
    Setting("multiline_pattern", "string", doc="flat form of multiline.pattern"),
    Setting("multiline_negate", "bool", False, doc="flat form of multiline.negate"),
    Setting("multiline_what", "string", "previous", choices=("previous", "next"), doc="flat form of multiline.what"),
    Setting("multiline_flush_interval", "duration", 5.0,
            doc="emit a pending multiline event after this long without a new line"),
    Setting("multiline_preset", "string", choices=PRESETS,
            doc="join stack traces with a built-in rule set (Fluent Bit's java, python, go, ruby)"),
    Setting("format", "any", "none", doc="none (message), json, /regexp/ with named groups, a named format, "
                                         "or container logs: cri, docker, auto"),
    Setting("parse", "hash", doc="Fluentd <parse> section (@type none|json|regexp|multiline|<format>)"),
    Setting("batch_size", "int", 2048, doc="maximum events per emitted batch"),
    Setting("save_interval", "duration", 1.0, doc="how often acknowledged positions are written"),
    Setting("stat_interval", "duration", 0.25, doc="how often idle files are checked for new data"),
    Setting("max_open_files", "int", min=1, spellings=("harvester_limit",),
            doc="files this input holds open at once; the others wait their turn (default: half of the "
                "process's descriptors left after a reserve for outputs and positions)"),
]


class TailInput(Input):
    """Fluentd's in_tail."""

    #: Where decoded container lines put their text (Fluentd's parsers write `log`).
    _message_key = "log"
    name = "tail"
    doc = "follow files across rotations, at-least-once (Fluentd in_tail)"
    settings = _SHARED_SETTINGS + [
        Setting("exclude_path", "array", [], doc="globs of paths not to read"),
        Setting("path_key", "string", doc="record field that receives the file's path"),
        Setting("read_from_head", "bool", False, doc="read files found at start from the beginning"),
        Setting("pos_file", "path", doc="position file (default: under the state dir); /dev/null: none"),
        Setting("refresh_interval", "duration", 5.0, doc="how often the globs are expanded again"),
        Setting("limit_recently_modified", "duration", doc="Fluentd's name for ignore_older"),
        Setting("emit_unmatched_lines", "bool", False,
                doc="emit lines the parser refuses as {\"unmatched_line\": line} instead of dropping them"),
        Setting("read_lines_limit", "int", doc="Fluentd: lines per read; here the batch size when set"),
        Setting("from_encoding", "string", doc="Fluentd: character set of the files (same as encoding)"),
        Setting("close_inactive", "duration",
                doc="close a file read to its end after this long without new data; reopened when it grows"),
        Setting("open_on_every_update", "bool", False,
                doc="Fluentd: close each file once read to its end, open it again when it grows "
                    "(close_inactive 0)"),
        *[Setting(name, "any", doc=f"Fluentd in_tail {name}: {why} (accepted, logged once)")
          for name, why in TAIL_NO_EFFECT.items()],
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._tailer: Tailer | None = None
        self._fluent: FluentLines | None = None
        self._parser: Parser
        self._container = _container_format(self, self._message_key)
        if self._container is not None:
            self._parser, self._timer = parse_none, None
            self._multiline = _container_multiline(self)
        elif self.name == "tail":
            self._fluent, self._multiline = _fluent_parsing(self)
            self._parser, self._timer = parse_none, None
        else:
            self._parser, self._multiline, self._timer = _parsing(self)
        encoding = self.params.get("from_encoding") or self.params["encoding"]
        self._encoding = _check_encoding(encoding)
        ignored = [name for name in TAIL_NO_EFFECT if self.params.get(name) is not None]
        if ignored:
            self.log.warning("in_tail %s: %s accepted with no effect (see README, 'Fluentd compatibility')",
                             self.id, ", ".join(ignored))
        self._paths = split_paths([str(p) for p in self.params["path"]])

    def options(self, ctx: InputContext) -> TailOptions:
        p = self.params
        return self._options(
            ctx,
            excludes=p["exclude_path"],
            read_from_head=p["read_from_head"],
            pos_file=p["pos_file"],
            refresh_interval=p["refresh_interval"],
            ignore_older=p["ignore_older"] if p["ignore_older"] is not None else p["limit_recently_modified"],
            save_interval=p["save_interval"],
            close_inactive=0.0 if p["open_on_every_update"] else p["close_inactive"],
        )

    def _options(self, ctx: InputContext, *, excludes: list[Any], read_from_head: bool, pos_file: str | None,
                 refresh_interval: float, ignore_older: float | None, save_interval: float,
                 close_inactive: float | None) -> TailOptions:
        """The engine's options from the settings both names share, plus the ones each
        spells its own way (passed in)."""
        p = self.params
        return TailOptions(
            paths=self._paths,
            excludes=[str(x) for x in excludes],
            tag=p["tag"] or self.name,
            read_from_head=read_from_head,
            pos_file=_pos_file(pos_file, ctx, self._paths),
            refresh_interval=refresh_interval,
            stat_interval=p["stat_interval"],
            rotate_wait=p["rotate_wait"],
            ignore_older=ignore_older,
            max_line_size=p["max_line_size"],
            skip_long_lines=p["max_line_action"] == "skip",
            encoding=self._encoding,
            multiline=self._multiline,
            parser=self._parser,
            timer=self._timer,
            fluent_parser=self._fluent,
            decorate=self.decorator(),
            batch_size=p.get("read_lines_limit") or p["batch_size"],
            save_interval=save_interval,
            container=self._container,
            max_open_files=p["max_open_files"],
            close_inactive=close_inactive,
        )

    def decorator(self) -> Decorate | None:
        key = self.params.get("path_key")
        if not key:
            return None

        def add_path(records: list[dict[str, Any]], path: str) -> None:
            for r in records:
                if key not in r:
                    r[key] = path

        return add_path

    async def run(self, ctx: InputContext) -> None:
        self._tailer = Tailer(self.options(ctx), ctx, self.metrics)
        await self._tailer.run()

    async def close(self) -> None:
        if self._tailer is not None:
            self._tailer.close()

    def stats(self) -> dict[str, Any]:
        """Per tailed file: size, bytes read, bytes acknowledged and the lag; for the input: files
        waiting for a descriptor and bytes of rotated files never read (/stats, logpipe top)."""
        if self._tailer is None:
            return {}
        return {"files": self._tailer.stats(), "waiting_for_descriptor": len(self._tailer.waiting),
                "unread_rotated_bytes": int(self._tailer.m_unread.value)}


class FileInput(TailInput):
    """Logstash's file input (tail mode) on the same engine."""

    _message_key = "message"
    name = "file"
    doc = "follow files across rotations, at-least-once (Logstash file input, tail mode)"
    settings = _SHARED_SETTINGS + [
        Setting("exclude", "array", [], doc="globs of file names (or paths) not to read"),
        Setting("start_position", "string", "end", choices=("beginning", "end"),
                doc="where files seen at start are read from when no position is saved"),
        Setting("sincedb_path", "path", doc="position file (default: under the state dir); /dev/null: none"),
        Setting("sincedb_write_interval", "duration", doc="Logstash's name for save_interval"),
        Setting("discover_interval", "int", 15, doc="expand the globs every this many stat_intervals"),
        Setting("mode", "string", "tail", choices=("tail",), doc="only tail mode is supported"),
        Setting("close_older", "duration", 3600.0,
                doc="close a file read to its end after this long without new data; reopened when it grows"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="field layout: [log][file][path]/[host][name] (v1, v8) or path/host (disabled)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.params["discover_interval"] < 1:  # here, not in run: `logpipe check` only builds plugins
            raise ConfigError("setting 'discover_interval' must be at least 1", setting="discover_interval")

    def options(self, ctx: InputContext) -> TailOptions:
        p = self.params
        return self._options(
            ctx,
            excludes=p["exclude"],
            read_from_head=p["start_position"] == "beginning",
            pos_file=p["sincedb_path"],
            refresh_interval=p["discover_interval"] * p["stat_interval"],
            ignore_older=p["ignore_older"],
            save_interval=p["sincedb_write_interval"] or p["save_interval"],
            close_inactive=p["close_older"],
        )

    def decorator(self) -> Decorate | None:
        host = socket.gethostname()
        if self.params["ecs_compatibility"] == "disabled":
            def add_flat(records: list[dict[str, Any]], path: str) -> None:
                for r in records:
                    if "path" not in r:
                        r["path"] = path
                    if "host" not in r:
                        r["host"] = host

            return add_flat

        def add_ecs(records: list[dict[str, Any]], path: str) -> None:
            for r in records:
                if "log" not in r:
                    r["log"] = {"file": {"path": path}}
                if "host" not in r:
                    r["host"] = {"name": host}

        return add_ecs


def _parsing(plugin: TailInput) -> tuple[Parser, MultilineSpec | PresetSpec | None, TimeExtractor | None]:
    """The record parser, the multiline joiner and the event-time extractor, from
    `parse` (Fluentd section), `codec` (Logstash) or `format`, plus the multiline settings."""
    p = plugin.params
    multiline = _multiline_spec(p)
    section = p.get("parse")
    codec = p.get("codec")
    if section:
        raise ConfigError(f"the {plugin.name} input takes 'codec' or 'format'; <parse> sections belong to "
                          "Fluentd's tail", setting="parse")
    codec_multiline = getattr(codec, "multiline_spec", None)
    if isinstance(codec_multiline, MultilineSpec):  # codec => multiline {…}: the tail's own joiner does it
        if multiline is not None:
            raise ConfigError("use either 'codec => multiline' or the 'multiline' setting, not both", setting="codec")
        return parse_none, codec_multiline, None
    if codec is not None and str(p["format"]) == "none":
        if hasattr(codec, "decode"):
            return codec.decode, multiline, None
        name = str(getattr(codec, "name", codec))
        if name not in ("plain", "line", "json", "json_lines"):
            raise ConfigError(f"codec '{name}' is not supported by the {plugin.name} input; "
                              "use plain or json (or 'format')", setting="codec")
        return make_parser(name, plugin.metrics, "codec"), multiline, None
    return make_parser(p["format"], plugin.metrics), multiline, make_time_extractor(p["format"])


FluentLines = Callable[[list[str]], tuple[list[dict[str, Any] | None], list[int | None]]]


def _fluent_parsing(plugin: TailInput) -> tuple[FluentLines, MultilineSpec | PresetSpec | None]:
    """Fluentd's in_tail: a `<parse>` section (or v0.12 `format`) and, for `@type multiline`, the
    `format_firstline` joiner. Refused lines are counted and warned about (at most once a
    second, with the line), then dropped as Fluentd does, or emitted as `unmatched_line`."""
    p = plugin.params
    section = p.get("parse") or flat_parse_section(p["format"], {})
    if isinstance(section, list):
        raise ConfigError("only one <parse> section is allowed", setting="parse")
    try:
        parser = build_parser(section)
    except ConfigError as exc:
        raise ConfigError(exc.message, setting="parse" if p.get("parse") else "format") from None
    multiline = _multiline_spec(p)
    if section.get("@type", section.get("type")) == "multiline" and section.get("format_firstline") is not None:
        if multiline is not None:
            raise ConfigError("use either 'multiline' or <parse> @type multiline, not both", setting="parse")
        first = ruby_regex(str(section["format_firstline"]), what="format_firstline")
        flush = section.get("multiline_flush_interval", p["multiline_flush_interval"])
        multiline = MultilineSpec(pattern=first.pattern, negate=True, what="previous",
                                  flush_interval=coerce_value(Setting("parse", "duration"), flush)
                                  if flush is not None else None)
    unmatched = p["emit_unmatched_lines"]
    failures = plugin.metrics.counter("parse_failures", "lines the input could not parse",
                                      format=str(section.get("@type", "none")))
    log = plugin.log
    last_warning = [0.0]
    parse = parser.parse

    def parse_lines(lines: list[str]) -> tuple[list[dict[str, Any] | None], list[int | None]]:
        records: list[dict[str, Any] | None] = []
        times: list[int | None] = []
        for line in lines:
            try:
                t, record = parse(line)
            except ParseError as exc:
                failures.inc()
                now = time.monotonic()
                if now - last_warning[0] >= 1.0:
                    last_warning[0] = now
                    log.warning("%s: %s: %r", plugin.id, exc, line[:500])
                if unmatched:
                    records.append({"unmatched_line": line})
                    times.append(None)
                else:
                    records.append(None)
                    times.append(None)
                continue
            records.append(record)
            times.append(t)
        return records, times

    return parse_lines, multiline


_CONTAINER_FORMATS = ("cri", "docker", "auto")


def _container_format(plugin: TailInput, message_key: str) -> ContainerFormat | None:
    """Container decoding, if the settings ask for it (see the module doc for the spellings)."""
    p = plugin.params
    section = p.get("parse")
    mode: str | None = None
    if isinstance(section, dict) and plugin.name == "tail":
        kind = str(section.get("@type", section.get("type", "none")))
        if kind in ("cri", "docker"):
            mode = kind
        elif kind == "json" and any("/containers/" in str(x) for x in p["path"]):
            mode = "json"
        elif kind == "multi_format":
            mode = _multi_format_mode(section)
    elif str(p["format"]).strip() in _CONTAINER_FORMATS:
        mode = str(p["format"]).strip()
    if mode is None:
        return None
    return ContainerFormat(mode=mode, message_key=message_key, max_size=p["max_line_size"],
                           flush_interval=p["multiline_flush_interval"])


def _multi_format_mode(section: dict[str, Any]) -> str | None:
    """fluentd-kubernetes-daemonset's pair (a json pattern and a CRI regexp or `format cri`)
    reads container logs; any other multi_format is left to the Fluentd parsers."""
    patterns = section.get("pattern")
    if isinstance(patterns, dict):
        patterns = [patterns]
    kinds: set[str] = set()
    for pattern in patterns or []:
        fmt = str(pattern.get("format", pattern.get("@type", "")))
        if fmt in ("json", "cri", "docker"):
            kinds.add("json" if fmt == "docker" else fmt)
        elif fmt.startswith("/") and "stdout|stderr" in fmt:
            kinds.add("cri")
        else:
            return None
    return "auto" if kinds == {"json", "cri"} else None


def _container_multiline(plugin: TailInput) -> MultilineSpec | PresetSpec | None:
    """In container mode, joining comes from `multiline`/`multiline_preset` or the
    `<parse>` section's `multiline_preset` (per stream, after decoding)."""
    p = plugin.params
    multiline = _multiline_spec(p)
    section = p.get("parse")
    preset = section.get("multiline_preset") if isinstance(section, dict) else None
    if preset is None:
        return multiline
    if multiline is not None:
        raise ConfigError("use either 'multiline' or <parse> multiline_preset, not both", setting="parse")
    return _preset(str(preset), p["multiline_flush_interval"], "parse")


def _preset(name: str, flush: float | None, setting: str) -> PresetSpec:
    if name not in PRESETS:
        raise ConfigError(f"unknown multiline preset {name!r}; allowed: {', '.join(PRESETS)}", setting=setting)
    return PresetSpec(preset=name, flush_interval=flush)


def _multiline_spec(p: dict[str, Any]) -> MultilineSpec | PresetSpec | None:
    """The joiner from the `multiline` section, or from its flat forms (`multiline_pattern` …,
    `multiline_preset`); one of the three at most. The section's settings have no defaults of
    their own, so an unwritten one is told apart and the joiner's default applies."""
    section = p["multiline"]
    written = {k: v for k, v in section.items() if v is not None}
    flat = p.get("multiline_pattern")
    flat_preset = p.get("multiline_preset")
    if sum(1 for x in (written, flat, flat_preset) if x) > 1:
        raise ConfigError("use one of 'multiline', 'multiline_pattern', 'multiline_preset'", setting="multiline")
    if flat_preset:
        return _preset(flat_preset, p["multiline_flush_interval"], "multiline_preset")
    flush = written.get("flush_interval", p["multiline_flush_interval"])
    if "preset" in written:
        extra = set(written) & {"pattern", "negate", "what"}
        if extra:
            raise ConfigError(f"multiline preset takes flush_interval, max_lines, max_bytes; not "
                              f"{', '.join(sorted(extra))}", setting="multiline")
        return PresetSpec(preset=written["preset"], flush_interval=flush, **_limits(written))
    if flat:
        written = {"pattern": flat, "negate": p["multiline_negate"], "what": p["multiline_what"]}
    elif not written:
        return None
    if "pattern" not in written:
        raise ConfigError("multiline needs a 'pattern' (or a 'preset')", setting="multiline")
    return MultilineSpec(pattern=_multiline_regex(str(written["pattern"])), negate=written.get("negate", False),
                         what=written.get("what", "previous"), flush_interval=flush, **_limits(written))


def _limits(written: dict[str, Any]) -> dict[str, int]:
    """max_lines / max_bytes as written; the joiner's own defaults otherwise."""
    return {k: written[k] for k in ("max_lines", "max_bytes") if k in written}


def _multiline_regex(pattern: str) -> str:
    """Logstash's multiline patterns may use grok (`^%{TIMESTAMP_ISO8601} `): expanded here."""
    if "%{" in pattern:
        from logpipe.errors import GrokError
        from logpipe.grok.engine import Grok

        try:
            pattern = Grok(pattern, named_captures_only=True).regex.pattern
        except GrokError as exc:
            raise ConfigError(f"invalid multiline pattern: {exc}", setting="multiline") from None
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid multiline pattern {pattern!r}: {exc}", setting="multiline") from None
    return pattern


def _check_encoding(name: str) -> str:
    """Lines are split on the byte 0x0A, so only encodings that write '\\n' as that byte work."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ConfigError(f"unknown encoding {name!r}", setting="encoding") from None
    if "\n".encode(info.name) != b"\n":
        raise ConfigError(f"encoding {name!r} is not supported: lines are split on the byte 0x0A "
                          "(use an ASCII-compatible encoding such as utf-8 or latin-1)", setting="encoding")
    return info.name


def _pos_file(configured: str | None, ctx: InputContext, paths: list[str]) -> str | None:
    """Default: `<state_dir>/tail-<id>-<hash of the globs>.pos`; /dev/null turns persistence off."""
    if configured:
        return None if os.path.abspath(configured) == os.devnull else configured
    digest = hashlib.sha1("\0".join(sorted(paths)).encode()).hexdigest()[:12]
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", ctx.plugin_id)
    return os.path.join(ctx.state_dir, f"tail-{safe_id}-{digest}.pos")
