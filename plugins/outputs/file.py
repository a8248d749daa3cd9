"""Logstash's file output: events appended to files whose path may use sprintf
(`/var/log/app/%{[host]}-%{+YYYY-MM-dd}.log`), JSON lines by default."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from typing import IO, Any

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.helpers.routed import group_routed, pack_routed, unpack_routed
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
        #: Without sprintf every event goes to one file and items are the codec's bytes alone.
        self._fixed_path: str | None = None if "%{" in path else path
        self._codec: Codec = self.params["codec"] or create_codec("json_lines")
        self._files: OrderedDict[str, IO[bytes]] = OrderedDict()

    def format(self, events: list[Event]) -> list[bytes]:
        """The codec's bytes per event; with a sprintf path, prefixed by the rendered path."""
        encoded = self._codec.encode_each(events)
        if self._fixed_path is not None:
            return encoded
        render = self._path
        return [pack_routed(render(ev), data) for ev, data in zip(events, encoded)]

    def describe(self, item: bytes) -> Any:
        if self._fixed_path is not None:
            return super().describe(item)
        path, data = unpack_routed(item)
        return {"path": path, "data": super().describe(data)}

    async def write(self, items: list[bytes]) -> WriteResult | None:
        """In a thread: a write to a file the kernel is writing back blocks (dirty-page
        throttling), and the event loop — inputs, acks, the pipeline workers' results — must
        not stop with it (py-spy showed 18% of the main process in this write). One write at
        a time per flush worker, as before, so lines keep their order."""
        await asyncio.to_thread(self._write_all, items)
        return None

    def _write_all(self, items: list[bytes]) -> None:
        if self._fixed_path is not None:
            self._append(self._fixed_path, items)
            return
        for path, (_, payloads) in group_routed(items).items():
            self._append(path, payloads)

    def _append(self, path: str, payloads: list[bytes]) -> None:
        try:
            fh = self._open(path)
            fh.write(b"".join(payloads))
            fh.flush()
            if self.params["fsync"]:
                os.fsync(fh.fileno())
        except OSError as exc:
            # The retry reopens the file: a handle that failed (a remounted or full disk)
            # may keep failing. exc.filename is unset for write errors, hence `path`.
            self._forget(path)
            raise RetryableError(f"cannot write {path}: {exc.strerror or exc}") from exc

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
