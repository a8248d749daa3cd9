"""Fluentd's out_file (`<match> @type file` in a Fluentd config): each chunk written to a file
named after the chunk.

Path rules (Fluentd 1.14's generate_path_template):
- `path /var/log/app` with the default time chunk key → `/var/log/app.%Y%m%d_N.log`, the
  time part following `timekey` (`%Y%m%d%H` under a day, `%Y%m%d%H%M` under an hour,
  `%Y%m%d%H%M%S` under a minute); when the path has its own time placeholders, none is added.
- `*` in the path is where the time part (and the index) goes: `/logs/app.*.txt`.
- `append false` (default): every chunk gets a new file, `_0`, `_1` … the first index whose
  file does not exist; `append true`: no index, chunks are appended.
- `add_path_suffix`/`path_suffix` (`.log`), `compress gzip` adds `.gz` (each chunk one gzip
  member); `time_slice_format` (v0.12) replaces the time part.
- `${tag}`, `${tag[N]}`, `${key}` and strftime come from `<buffer tag,time,key>`; a
  placeholder without its chunk key (or a chunk key without its placeholder) is a config
  error at the path, with Fluentd's message.

Lines are `<format>` (default `out_file`: `time<TAB>tag<TAB>json`) after `<inject>`. The
buffer defaults to Fluentd's: a file buffer chunked by time, one day wide, flushed lazily
(`timekey_wait` 10 minutes after the day ends).

Decisions where logpipe differs: `symlink_path` points at the file written last (Fluentd's
points at the buffer chunk being filled, which here is not text); `recompress` has no effect
(chunks are never stored compressed, so gzip always compresses the text); whether the path is
writable is checked at start, not by `logpipe check`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import time
from typing import Any

from logpipe.buffer.settings import resolve_buffer_config
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.formatter import FormatSection
from logpipe.helpers.placeholders import ChunkKeys, compile_extractor, tag_placeholders, validate
from logpipe.helpers.routed import group_routed, pack_routed, unpack_routed
from logpipe.plugin import Output, RetryableError, Setting, WriteResult

DEFAULT_TIMEKEY = 86400
INDEX = "_**"


def timekey_to_timeformat(timekey: float | None) -> str:
    if timekey is None:
        return ""
    if timekey < 60:
        return "%Y%m%d%H%M%S"
    if timekey < 3600:
        return "%Y%m%d%H%M"
    if timekey < 86400:
        return "%Y%m%d%H"
    return "%Y%m%d"


def path_template(original: str, timekey: float | None, append: bool, gzip_: bool, suffix: str,
                  time_slice_format: str | None = None) -> str:
    """Fluentd's generate_path_template."""
    compressed = ".gz" if gzip_ else ""
    index = "" if append else INDEX
    if "*" in original:
        if timekey is None:
            raise ConfigError("path including '*' must be used with buffer chunk key 'time'", setting="path")
        return original.replace("*", (time_slice_format or timekey_to_timeformat(timekey)) + index) + compressed
    if timekey is None:
        return f"{original}{index}{suffix}{compressed}"
    if time_slice_format:
        return f"{original}.{time_slice_format}{index}{suffix}{compressed}"
    wanted = timekey_to_timeformat(timekey)
    pairs = [wanted[i:i + 2] for i in range(0, len(wanted), 2)]
    if any(p in original for p in pairs):
        if not all(p in original for p in pairs):
            raise ConfigError("insufficient timestamp placeholders in path", setting="path")
        return f"{original}{index}{suffix}{compressed}"
    return f"{original}.{wanted}{index}{suffix}{compressed}"


class FluentFileOutput(Output):
    name = "fluent_file"
    doc = "Fluentd out_file: chunks written to files named by time, tag and keys (`@type file` in Fluentd configs)."
    helpers = [FormatSection]
    settings = [
        Setting("path", "string", required=True, doc="file path (strftime, ${tag}, ${tag[N]}, ${key}, '*')"),
        Setting("append", "bool", default=False, doc="append chunks to one file instead of a new _N file each"),
        Setting("add_path_suffix", "bool", default=True, doc="add path_suffix to a path without '*'"),
        Setting("path_suffix", "string", default=".log", doc="suffix of the file name"),
        Setting("compress", "string", default="text", choices=("text", "gz", "gzip"), doc="gzip: write .gz files"),
        Setting("recompress", "bool", default=False, doc="accepted; chunks are always compressed from text here"),
        Setting("symlink_path", "string", doc="symlink kept pointing at the file written last (placeholders allowed)"),
        Setting("symlink_path_use_relative", "bool", default=False, doc="make the symlink relative"),
        Setting("time_slice_format", "string", doc="v0.12: the time part of the file name"),
        Setting("utc", "bool", doc="deprecated on the output (Fluentd warns): use timekey_use_utc in <buffer>"),
        Setting("localtime", "bool", doc="deprecated on the output (Fluentd warns)"),
    ]
    buffer_defaults = {"buffer": "file", "chunk_keys": ["time"], "timekey": DEFAULT_TIMEKEY}

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        p = self.params
        for old in ("utc", "localtime"):
            if p.get(old) is not None:
                self.log.warning("'%s' is deprecated for output plugin. This parameter is used for formatter plugin "
                                 "in compatibility layer. If you want to use same feature, use timekey_use_utc "
                                 "parameter in <buffer> directive instead", old)
        buffer = resolve_buffer_config(p, type(self).buffer_defaults)
        self.chunk = ChunkKeys.of(buffer.chunk_keys, buffer.timekey, buffer.timekey_offset())
        self._gzip = p["compress"] in ("gz", "gzip")
        suffix = p["path_suffix"] if p["add_path_suffix"] else ""
        self.template = path_template(str(p["path"]), self.chunk.timekey, p["append"], self._gzip, suffix,
                                      p["time_slice_format"])
        validate("path", self.template, timekey=self.chunk.timekey, tag_key=self.chunk.tag,
                 keys=list(self.chunk.keys))
        self._path = compile_extractor(self.template, self.chunk)
        self._symlink = None
        if p["symlink_path"]:
            self._symlink = compile_extractor(str(p["symlink_path"]), self.chunk)
        self.formatter = FormatSection.create(self, "out_file")
        self.last_written_path: str | None = None

    async def start(self) -> None:
        """Fluentd's configure-time probe: the path for a stand-in chunk (tag `a`, keys `data`, now)."""
        tag = ".".join(["a"] * max(max(tag_placeholders(self.template), default=1), 1))
        record = {key: "data" for key in self.chunk.keys}
        probe = self._path(Event(tag, time.time_ns(), record))
        if not _writable(probe):
            raise ConfigError(f"out_file: `{probe}` is not writable", setting="path")

    def format(self, events: list[Event]) -> list[bytes]:
        """Each line packed with its file (and symlink) path: write sees only items. The
        events arrive with `<inject>` already applied (the router injects), so the order is
        Fluentd's: inject, then format."""
        line = self.formatter.format
        path, link = self._path, self._symlink
        out = []
        for ev in events:
            dest = path(ev) if link is None else f"{path(ev)}\0{link(ev)}"
            out.append(pack_routed(dest, line(ev.tag, ev.time, ev.record)))
        return out

    def chunk_bytes(self, item: bytes) -> bytes:
        return unpack_routed(item)[1]

    def describe(self, item: bytes) -> Any:
        dest, data = unpack_routed(item)
        return {"path": dest.split("\0")[0], "data": super().describe(data)}

    async def write(self, items: list[bytes]) -> WriteResult | None:
        for dest, (_, payloads) in group_routed(items).items():
            template, _, link = dest.partition("\0")
            try:
                self.last_written_path = self._write_chunk(template, b"".join(payloads))
                if link:
                    self._link(self.last_written_path, link)
            except OSError as exc:
                raise RetryableError(f"cannot write {template}: {exc.strerror or exc}") from exc
        return None

    def _write_chunk(self, template: str, data: bytes) -> str:
        directory = os.path.dirname(template)
        if directory:
            os.makedirs(directory, exist_ok=True)
        payload = gzip.compress(data, compresslevel=6) if self._gzip else data
        if INDEX not in template:
            with open(template, "ab") as fh:
                fh.write(payload)
            return template
        return self._create_indexed(template, payload)

    @staticmethod
    def _create_indexed(template: str, payload: bytes) -> str:
        """The first `_N` whose file does not exist, created exclusively (two writers never share one)."""
        i = 0
        while True:
            path = template.replace(INDEX, f"_{i}", 1)
            i += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            return path

    def _link(self, path: str, link: str) -> None:
        """Point `link` at `path`, replaced atomically (a reader never sees it missing)."""
        directory = os.path.dirname(link)
        if directory:
            os.makedirs(directory, exist_ok=True)
        use_relative = self.params["symlink_path_use_relative"]
        target = os.path.relpath(path, directory or ".") if use_relative else os.path.abspath(path)
        tmp = f"{link}.tmp{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, link)


def _writable(path: str) -> bool:
    """Fluentd's FileUtil.writable_p?: the file if it exists, else the nearest existing directory."""
    target = os.path.abspath(path)
    if os.path.exists(target):
        return os.path.isfile(target) and os.access(target, os.W_OK)
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)
