"""Logstash's file output: events appended to files whose path may use sprintf
(`/var/log/app/%{[host]}-%{+YYYY-MM-dd}.log`), JSON lines by default."""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from typing import IO

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.plugin import Codec, Output, RetryableError, Setting, WriteResult
from logpipe.registry import create_codec

MAX_OPEN_FILES = 64


class FileOutput(Output):
    name = "file"
    doc = "Appends events to files (path with sprintf); codec json_lines unless set."
    settings = [
        Setting("path", "path", required=True, doc="file to append to; sprintf and %{+date} allowed"),
        Setting("fsync", "bool", default=False, doc="fsync after each write (durable, slower)"),
        Setting("create_if_deleted", "bool", default=True, doc="reopen the file when it was removed"),
    ]
    buffer_defaults = {"flush_interval": 1.0}

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        path = self.params["path"]
        if ".." in path.split(os.sep):
            raise ConfigError("file output path must not contain '..'", setting="path")
        self._path = compile_sprintf(path)
        self._codec: Codec = self.params["codec"] or create_codec("json_lines")
        self._files: OrderedDict[str, IO[bytes]] = OrderedDict()

    async def write(self, events: list[Event]) -> WriteResult | None:
        groups: dict[str, list[Event]] = {}
        render = self._path
        for ev in events:
            groups.setdefault(render(ev), []).append(ev)
        for path, group in groups.items():
            try:
                fh = self._open(path)
                fh.write(self._codec.encode(group))
                fh.flush()
                if self.params["fsync"]:
                    os.fsync(fh.fileno())
            except OSError as exc:
                # The retry reopens the file: a handle that failed (a remounted or full disk)
                # may keep failing. exc.filename is unset for write errors, hence `path`.
                self._forget(path)
                raise RetryableError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return None

    def _forget(self, path: str) -> None:
        fh = self._files.pop(path, None)
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()

    def _open(self, path: str) -> IO[bytes]:
        fh = self._files.get(path)
        if fh is not None and self.params["create_if_deleted"] and not os.path.exists(path):
            fh.close()
            fh = None
        if fh is None:
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            fh = open(path, "ab")  # noqa: SIM115 - kept open across writes, closed in close()
            self._files[path] = fh
            if len(self._files) > MAX_OPEN_FILES:
                _, oldest = self._files.popitem(last=False)
                oldest.close()
        else:
            self._files.move_to_end(path)
        return fh

    async def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()
