"""One followed file and the tail input's normalised options (plugin-private helpers of in_tail).

A TailedFile carries the offsets that make delivery exact: `read_pos` (bytes read)
≥ `scan_pos` (end of the last complete line) ≥ `consumed` (end of the last line
that left in an event) ≥ `acks.committed` (acknowledged, saved). Its identity is
(device, inode) plus a fingerprint of its first bytes.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from logpipe.helpers.container_log import ContainerFormat
from logpipe.helpers.multiline import MultilineSpec
from logpipe.helpers.multiline_presets import PresetSpec, make_joiner
from logpipe.helpers.parser import Parser, TimeExtractor
from logpipe_plugins.inputs.tail.acks import AckWindow
from logpipe_plugins.inputs.tail.container import ContainerStage
from logpipe_plugins.inputs.tail.lines import LineSplitter
from logpipe_plugins.inputs.tail.positions import Key, Position

FINGERPRINT_BYTES = 255

Decorate = Callable[[list[dict[str, Any]], str], None]


@dataclass
class TailOptions:
    """Normalised settings: TailInput (Fluentd names) and FileInput (Logstash names) both map onto these."""

    paths: list[str]
    excludes: list[str]
    tag: str
    read_from_head: bool
    pos_file: str | None
    refresh_interval: float
    stat_interval: float
    rotate_wait: float
    ignore_older: float | None
    max_line_size: int
    skip_long_lines: bool
    encoding: str
    multiline: MultilineSpec | PresetSpec | None
    parser: Parser
    decorate: Decorate | None
    batch_size: int
    save_interval: float = 1.0
    timer: TimeExtractor | None = None
    #: Fluentd parsing (lines → records with None for dropped lines, and their times); replaces parser/timer.
    fluent_parser: Callable[[list[str]], tuple[list[dict[str, Any] | None], list[int | None]]] | None = None
    #: Container runtime logs (CRI / docker json-file): decoded before multiline, which then runs per stream.
    container: ContainerFormat | None = None
    #: Descriptors this input may hold (None: its share of the process's, logpipe/descriptors.py).
    max_open_files: int | None = None
    #: Close a file read to its end and quiet this long; reopened when it grows (None: never).
    close_inactive: float | None = None


def fingerprint(fd: int, length: int) -> tuple[str, int]:
    data = os.pread(fd, length, 0)
    return hashlib.blake2b(data, digest_size=8).hexdigest(), len(data)


class TailedFile:
    """One open file. Offsets: `read_pos` (bytes read) ≥ `scan_pos` (end of the last
    complete line) ≥ `consumed` (end of the last line that left in an event) ≥
    `acks.committed` (acknowledged, saved)."""

    def __init__(self, path: str, key: Key, fd: int, tag: str, offset: int, fp: tuple[str, int],
                 opts: TailOptions, on_change: Callable[[], None]) -> None:
        self.path = path
        self.key = key
        self.fd: int | None = fd
        self.tag = tag
        self.read_pos = self.scan_pos = self.consumed = offset
        self.fp, self.fp_len = fp
        self.splitter = LineSplitter(opts.max_line_size)
        self.multiline = make_joiner(opts.multiline) if opts.multiline and not opts.container else None
        self.container: ContainerStage | None = None
        self.ml_fed = 0.0
        self.acks = AckWindow(offset, on_change)
        self.rotated_at: float | None = None
        self._small_fps: dict[int, str] = {}
        #: mtime at the last poll: a change without growth has the fingerprint checked.
        self.mtime_ns = 0
        self.last_data = time.monotonic()
        self.at_eof = False
        self.frozen_until = 0.0
        self.last_line: bytes | None = None
        #: Size at the last look: what a file that vanishes while closed leaves unread.
        self.last_size = offset
        os.lseek(fd, offset, os.SEEK_SET)

    def position(self) -> Position:
        return Position(self.path, self.key[0], self.key[1], self.acks.committed, self.fp, self.fp_len,
                        max(self.last_size, self.read_pos))

    @property
    def holds_back(self) -> bool:
        """Whether an event is held (multiline, container partial line) that only a later line
        or the flush timer emits: such a file keeps its descriptor."""
        return bool((self.multiline is not None and self.multiline.pending)
                    or (self.container is not None and self.container.hold is not None))

    def origins(self, ends: list[int]) -> list[tuple[int, str, int]]:
        """`meta["_origin"]` of lines ending at `ends` (ascending): inode, fingerprint, end.

        The fingerprint is of the first min(end, FINGERPRINT_BYTES) bytes: content that
        lies before the line's end and so never changes as the file grows. The file's own
        fingerprint (its first 255 bytes, or all of it while shorter) changed with every
        line of a new file, so a line read again after a crash got another id."""
        ino = self.key[1]
        if ends and ends[0] >= FINGERPRINT_BYTES and self.fp_len >= FINGERPRINT_BYTES:
            fp = self.fp
            return [(ino, fp, e) for e in ends]
        return [(ino, self._origin_fp(e), e) for e in ends]

    def forget_origins(self) -> None:
        """The file was truncated: its first bytes are new."""
        self._small_fps.clear()

    def _origin_fp(self, end: int) -> str:
        if end >= FINGERPRINT_BYTES and self.fp_len >= FINGERPRINT_BYTES:
            return self.fp
        fp = self._small_fps.get(end)
        if fp is None:
            if self.fd is None:
                return self.fp
            fp = fingerprint(self.fd, min(end, FINGERPRINT_BYTES))[0]
            if len(self._small_fps) < FINGERPRINT_BYTES:
                self._small_fps[end] = fp
        return fp
