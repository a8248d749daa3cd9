"""Fluentd's out_secondary_file: what the primary output failed to deliver, dumped to files
(`<secondary> @type secondary_file directory /x basename dump.bin </secondary>`).

Written as Fluentd writes it: the primary's chunk as it was buffered — the primary's own
formatted bytes (out_file lines, forward's msgpack `[time, record]` entries) — and for a
primary that buffers events, Fluentd's standard chunk format, msgpack `[EventTime, record]`
per event, which `fluent-binlog-reader` and `fluent-cat --format msgpack` read. Files are
`directory/basename.N` (the first N not taken; `.gz` with `compress gzip`), or
`directory/basename` with `append true`. `${tag}`, `${tag[N]}`, `${chunk_id}`, and strftime
(when the primary chunks by time) are filled from the failed chunk.
"""

from __future__ import annotations

import gzip
import os
import secrets
from datetime import datetime
from typing import Any

import msgpack

from logpipe.buffer.settings import BufferConfig
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.forward_protocol import event_time
from logpipe.helpers.placeholders import KEY_PATTERN, TAG_PATTERN, ChunkKeys, time_placeholder
from logpipe.jsonvalues import msgpack_default
from logpipe.plugin import Output, Setting, WriteResult


class SecondaryFileOutput(Output):
    name = "secondary_file"
    doc = "Fluentd out_secondary_file: a failing output's chunks dumped to files (only inside <secondary>)."
    settings = [
        Setting("directory", "string", required=True, doc="directory of the dump files (placeholders allowed)"),
        Setting("basename", "string", default="dump.bin", doc="file name; .N is added unless append"),
        Setting("append", "bool", default=False, doc="append every chunk to one file"),
        Setting("compress", "string", default="text", choices=("text", "gzip"), doc="gzip: .gz files"),
    ]

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        if "/" in self.params["basename"]:
            raise ConfigError("basename should not include `/`", setting="basename")
        self.template = os.path.join(self.params["directory"], self.params["basename"])
        self.suffix = ".gz" if self.params["compress"] == "gzip" else ""
        self.primary: ChunkKeys | None = None
        self.last_written_path: str | None = None

    def bind_primary(self, primary: BufferConfig) -> None:
        """Fluentd's validate_compatible_with_primary_buffer!: placeholders the primary's chunks can fill."""
        keys = ChunkKeys.of(primary.chunk_keys, primary.timekey, primary.timekey_offset())
        text = self.template
        if keys.timekey is None and time_placeholder(text):
            raise ConfigError("out_secondary_file: basename or directory has an incompatible placeholder, remove "
                              "time formats, like `%Y%m%d`, from basename or directory", setting="secondary")
        tag_used = TAG_PATTERN.search(text)
        if not keys.tag and tag_used:
            raise ConfigError(f"out_secondary_file: basename or directory has an incompatible placeholder "
                              f"{tag_used.group(1)}, remove tag placeholder, like `${{tag}}`, from basename or "
                              "directory", setting="secondary")
        for name in KEY_PATTERN.findall(text):
            if name.startswith("tag") or name == "chunk_id" or name in keys.keys:
                continue
            raise ConfigError(f"out_secondary_file: basename or directory has an incompatible placeholder {name}, "
                              "remove variable placeholder, like `${varname}`, from basename or directory",
                              setting="secondary")
        self.primary = keys

    async def start(self) -> None:
        if self.primary is None:
            raise ConfigError("This plugin can only be used in the <secondary> section")

    def format(self, events: list[Event]) -> list[bytes]:
        """Fluentd's standard chunk entry: msgpack [EventTime, record]."""
        pack = msgpack.Packer(use_bin_type=True, default=msgpack_default).pack
        return [pack((event_time(ev.time), ev.record)) for ev in events]

    async def write(self, items: list[bytes]) -> WriteResult | None:
        self._dump(b"".join(items), None, None)
        return None

    async def write_failed(self, failed: list[Any], tag: str | None, raw: Any) -> None:
        """A failed chunk of the primary: its items as the primary buffered them (`raw(item)`),
        events in the standard format."""
        first_time = next((f.time for f in failed if isinstance(f, Event)), None)
        data = b"".join(self.format([f])[0] if isinstance(f, Event) else raw(f) for f in failed)
        self._dump(data, tag, first_time)

    def _path(self, tag: str | None, time_ns: int | None) -> str:
        text = self.template
        keys = self.primary
        if keys is not None and keys.timekey is not None and time_placeholder(text):
            when = keys.slot(time_ns) if time_ns is not None else None
            moment = datetime.fromtimestamp(when // 1_000_000_000) if when is not None else datetime.now()
            text = moment.strftime(text)
        if tag is not None:
            parts = tag.split(".")
            names = {"tag": tag, **{f"tag[{i}]": p for i, p in enumerate(parts)}}
            text = TAG_PATTERN.sub(lambda m: names.get(m.group(1), m.group(0)), text)
        return text.replace("${chunk_id}", secrets.token_hex(16))

    def _dump(self, data: bytes, tag: str | None, time_ns: int | None) -> None:
        base = self._path(tag, time_ns)
        directory = os.path.dirname(base)
        if directory:
            os.makedirs(directory, exist_ok=True)
        payload = gzip.compress(data, compresslevel=6) if self.suffix else data
        if self.params["append"]:
            path = base + self.suffix
            with open(path, "ab") as fh:
                fh.write(payload)
        else:
            i = 0
            while True:
                path = f"{base}.{i}{self.suffix}"
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    break
                except FileExistsError:
                    i += 1
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
        self.last_written_path = path
