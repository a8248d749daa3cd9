"""The file buffer: append-only chunk files that survive kill -9 and are replayed at start.

Layout of the buffer directory (one per output):

    .lock                    flock'ed while a runner uses the directory (two outputs or two
                             processes sharing it would replay each other's chunks)
    b000000000042.chunk      a staged chunk, still being appended to
    q000000000041.chunk      a queued chunk: sealed, waiting to be written or being written
    quarantine/              chunks that failed validation, with a .reason file each

A chunk file is `MAGIC`, a header frame (msgpack map: chunk key, creation time), then one
frame per batch appended. A frame is `>III` (payload length, CRC-32 of the payload, event
count) followed by the payload: a msgpack array of the output's formatted items (bin), or,
for an output that wants events (and in chunks written before outputs formatted), msgpack
[tag, [time_ns…], [record…], [meta…]] — the first element's type tells them apart. A chunk is
deleted once its events are delivered or dead-lettered, so after a clean stop nothing is
replayed twice; after kill -9 a chunk being written may be replayed (at-least-once).

fsync policy (`buffer_fsync`), which decides when a put's acknowledgement is released:
- always (default): after an fsync covering the batch. One task fsyncs all dirty chunk
  files (and the directory when files were created) in a thread, then releases every ack
  that was waiting: concurrent puts share one fsync (group commit).
- interval: the same, at most once per `buffer_fsync_interval`: fewer fsyncs, later acks.
- never: at once after write(2): survives a crash of the process, not of the machine.

Replay validates every frame's length and CRC. A chunk with a bad header, a bad CRC or a
truncated last frame (a crash mid-append, or a torn write after a power cut) is moved to
quarantine/ with a logged reason; its valid frames are salvaged into a new chunk first,
because their acknowledgements may already have completed — those after the damage too:
the scan resynchronises on the next frame whose length fits and whose CRC matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import msgpack

from logpipe.ack import Ack
from logpipe.buffer.keys import ChunkKey
from logpipe.buffer.marks import StoredMarks
from logpipe.buffer.store import BufferStore, Chunk
from logpipe.errors import ConfigError
from logpipe.event import Event

MAGIC = b"LPCHUNK1"
FRAME = struct.Struct(">III")
CHUNK_NAME = re.compile(r"^([bq])(\d{12})\.chunk$")
#: A frame claiming more than this is damage, not data (chunks are limited far below it).
MAX_FRAME = 1 << 30


def default_buffer_dir(state_dir: str, output_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", output_id) or "output"
    return os.path.join(state_dir, "buffer", safe)


class FileChunk(Chunk):
    __slots__ = ("dirty", "fd", "path", "sealed", "seq", "size_on_disk", "syncing")

    def __init__(self, key: ChunkKey, seq: int, path: str, fd: int | None = None) -> None:
        super().__init__(key)
        self.seq = seq
        self.path = path
        self.fd = fd
        self.dirty = False
        self.syncing = False
        self.sealed = fd is None
        self.size_on_disk = 0


@dataclass
class ScanResult:
    key: ChunkKey | None
    records: int
    valid_end: int
    error: str | None
    #: (start, end) of every valid event frame, in order; after damage, the frames found
    #: by resynchronising on the next valid length + CRC.
    spans: tuple[tuple[int, int], ...] = ()
    #: Where the header frame ends (0 when there is no readable header).
    header_end: int = 0


# ---- encoding ----------------------------------------------------------------------


def _default(value: Any) -> Any:
    return str(value)


def sanitize(value: Any) -> Any:
    """Make a value msgpack can carry: huge ints and unencodable strings become text."""
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 64) else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):
        return value
    return str(value)


def encode_events(events: list[Event]) -> bytes:
    """Column layout [tag, times, records, metas]: a frame holds one chunk key, hence one tag,
    and three flat lists pack and unpack faster than a small list per event."""
    tag = events[0].tag
    try:
        return msgpack.packb([tag, [e.time for e in events], [e.record for e in events],
                              [e.meta for e in events]], default=_default)
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError):
        return msgpack.packb([tag, [e.time for e in events], [sanitize(e.record) for e in events],
                              [sanitize(e.meta) for e in events]], default=_default)


def decode_events(payload: bytes) -> list[Event]:
    tag, times, records, metas = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    return list(map(Event, repeat(tag), times, records, metas))


def decode_frame(payload: bytes) -> list[Any]:
    """A frame's items (bytes), or its events for an event frame."""
    value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if value and value[0].__class__ is bytes:
        return list(value)
    tag, times, records, metas = value
    return list(map(Event, repeat(tag), times, records, metas))


def _frame(payload: bytes, count: int) -> bytes:
    return FRAME.pack(len(payload), zlib.crc32(payload), count) + payload


def _header(key: ChunkKey) -> bytes:
    return MAGIC + _frame(msgpack.packb({"key": list(key), "created": time.time()}), 0)


def scan_chunk(data: bytes) -> ScanResult:
    """Validate a chunk file's bytes: its key, event count, and which frames are valid.

    Damage (a bad CRC, an impossible length, a torn frame) does not end the scan: it
    resynchronises on the next position where a frame header's length fits and its CRC
    matches, so one flipped byte costs one frame, not the rest of the chunk. The first
    damage is the reported `error`."""
    if not data.startswith(MAGIC):
        return ScanResult(None, 0, 0, "not a chunk file (bad magic)" if data else "empty file")
    end = len(data)
    pos = len(MAGIC)
    problem, length, count = _frame_problem(data, pos, end)
    if problem is not None:
        return ScanResult(None, 0, 0, f"unreadable chunk header: {problem}")
    body = pos + FRAME.size
    try:
        key: ChunkKey = tuple(msgpack.unpackb(data[body:body + length], raw=False)["key"])
    except Exception as exc:  # noqa: BLE001 - damaged bytes can fail in any way
        return ScanResult(None, 0, 0, f"unreadable chunk header: {exc}")
    header_end = pos = body + length
    spans: list[tuple[int, int]] = []
    records = 0
    error: str | None = None
    while pos < end:
        problem, length, count = _frame_problem(data, pos, end)
        if problem is None:
            spans.append((pos, pos + FRAME.size + length))
            records += count
            pos += FRAME.size + length
            continue
        error = error or problem
        next_frame = _resync(data, pos + 1, end)
        if next_frame is None:
            break
        pos = next_frame
    valid_end = spans[-1][1] if spans else header_end
    return ScanResult(key, records, end if error is None else valid_end, error, tuple(spans), header_end)


def _frame_problem(data: bytes, pos: int, end: int) -> tuple[str | None, int, int]:
    """(what is wrong with the frame at `pos` or None, its length, its event count)."""
    if end - pos < FRAME.size:
        return f"truncated frame header at byte {pos}", 0, 0
    length, crc, count = FRAME.unpack_from(data, pos)
    body = pos + FRAME.size
    if length > MAX_FRAME:
        return f"impossible frame length {length} at byte {pos}", 0, 0
    if body + length > end:
        return f"truncated frame at byte {pos} ({end - body} of {length} bytes)", 0, 0
    if zlib.crc32(data[body:body + length]) != crc:
        return f"CRC mismatch in frame at byte {pos}", 0, 0
    return None, length, count


def _resync(data: bytes, start: int, end: int) -> int | None:
    """The next position at or after `start` holding a whole valid event frame: a
    plausible header (at least one event, no more events than payload bytes, the payload
    inside the file) whose CRC matches."""
    unpack = FRAME.unpack_from
    crc32 = zlib.crc32
    for pos in range(start, end - FRAME.size + 1):
        length, crc, count = unpack(data, pos)
        if not 0 < count <= length or pos + FRAME.size + length > end:
            continue
        body = pos + FRAME.size
        if crc32(data[body:body + length]) == crc:
            return pos
    return None


def read_events(data: bytes, scan: ScanResult | None = None) -> list[Any]:
    """Items (or events, see decode_frame) of the valid frames of a chunk file (`scan`'s
    spans; a fresh scan by default). A frame whose CRC matched but whose payload does not decode is skipped."""
    scan = scan_chunk(data) if scan is None else scan
    events: list[Any] = []
    for start, stop in scan.spans:
        try:
            events.extend(decode_frame(data[start + FRAME.size:stop]))
        except Exception:  # noqa: BLE001 - a CRC collision on damaged bytes
            logging.getLogger("logpipe.buffer").warning("skipping an undecodable frame at byte %d", start)
    return events


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---- the store -----------------------------------------------------------------------


class FileStore(BufferStore):
    durable = True

    def __init__(self, path: str, *, fsync: str = "always", fsync_interval: float = 1.0,
                 log: logging.Logger | None = None) -> None:
        self.dir = path
        self.quarantine_dir = os.path.join(path, "quarantine")
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.log = log or logging.getLogger("logpipe.buffer")
        self._lock_fd: int | None = None
        self._dir_fd: int | None = None
        self._next_seq = 1
        self._open: set[FileChunk] = set()
        self._dirty: list[FileChunk] = []
        self._dir_dirty = False
        self._pending_acks: list[Ack] = []
        self._need_sync = asyncio.Event()
        self._syncer: asyncio.Task[None] | None = None
        self._round: asyncio.Future[None] | None = None
        self.quarantined = 0
        self.marks = StoredMarks(os.path.join(path, "stored.marks")) if fsync != "never" else None

    def stats(self) -> dict[str, Any]:
        return {"quarantined_chunks": self.quarantined, "buffer_path": self.dir}

    # ---- open / replay -------------------------------------------------------

    async def open(self) -> list[Chunk]:
        """Lock the directory and replay its chunks, in a thread: on a slow or hung disk
        (NFS, a full device) the event loop — other inputs, health checks — keeps running."""
        chunks = await asyncio.to_thread(self._open_dir)
        if self.fsync != "never":
            self._syncer = asyncio.create_task(self._sync_loop(), name=f"fsync:{self.dir}")
        return list(chunks)

    def _open_dir(self) -> list[FileChunk]:
        try:
            os.makedirs(self.dir, exist_ok=True)
            self._lock_fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise ConfigError(f"cannot use buffer directory {self.dir}: {exc.strerror}",
                              setting="buffer_path") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ConfigError(
                f"buffer directory {self.dir} is in use by another output or process "
                "(give each output its own 'id' or 'buffer_path')", setting="buffer_path") from None
        self._dir_fd = os.open(self.dir, os.O_RDONLY)
        if self.marks is not None:
            self.marks.load()
        return self._replay()

    def _replay(self) -> list[FileChunk]:
        found = []
        for name in os.listdir(self.dir):
            m = CHUNK_NAME.match(name)
            if m:
                found.append((int(m.group(2)), name))
        found.sort()
        if found:
            self._next_seq = found[-1][0] + 1
        chunks = []
        for seq, name in found:
            try:
                chunk = self._replay_one(seq, os.path.join(self.dir, name))
            except OSError as exc:
                self.log.error("buffer %s: cannot replay chunk %s (%s); left in place for the next start",
                               self.dir, name, exc)
                continue
            if chunk is not None:
                chunks.append(chunk)
        if chunks and self._dir_fd is not None:
            os.fsync(self._dir_fd)
        return chunks

    def _replay_one(self, seq: int, path: str) -> FileChunk | None:
        with open(path, "rb") as f:
            data = f.read()
        scan = scan_chunk(data)
        if scan.error is None and scan.key is not None:
            if scan.records == 0:
                os.unlink(path)
                return None
            return self._queued_chunk(scan.key, seq, path, scan.records, len(data))
        salvaged = self._salvage(data, scan)
        self._quarantine(path, scan.error or "invalid", salvaged.records if salvaged else 0)
        return salvaged

    def _queued_chunk(self, key: ChunkKey, seq: int, path: str, records: int, size: int) -> FileChunk:
        queued = os.path.join(self.dir, f"q{seq:012d}.chunk")
        if path != queued:
            os.rename(path, queued)
        chunk = FileChunk(key, seq, queued)
        chunk.records = records
        chunk.bytes = size
        return chunk

    def _salvage(self, data: bytes, scan: ScanResult) -> FileChunk | None:
        """Copy the valid frames before the damage into a new queued chunk."""
        if scan.key is None or scan.records == 0:
            return None
        seq = self._next_seq
        self._next_seq += 1
        path = os.path.join(self.dir, f"q{seq:012d}.chunk")
        kept = data[:scan.header_end] + b"".join(data[start:stop] for start, stop in scan.spans)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            _write_all(fd, kept)
            os.fsync(fd)
        finally:
            os.close(fd)
        chunk = FileChunk(scan.key, seq, path)
        chunk.records = scan.records
        chunk.bytes = len(kept)
        return chunk

    def _quarantine(self, path: str, reason: str, salvaged: int) -> None:
        os.makedirs(self.quarantine_dir, exist_ok=True)
        target = os.path.join(self.quarantine_dir, f"{os.path.basename(path)}.{time.time_ns()}")
        os.rename(path, target)
        with open(target + ".reason", "w") as f:
            f.write(f"{reason}\nsalvaged events: {salvaged}\n")
        self.quarantined += 1
        self.log.error("buffer %s: chunk %s is damaged (%s); moved to %s, %d event(s) before the damage "
                       "salvaged", self.dir, os.path.basename(path), reason, target, salvaged)

    # ---- appending -----------------------------------------------------------

    def encode(self, items: list[Any]) -> tuple[Any, int]:
        payload = msgpack.packb(items) if items[0].__class__ is bytes else encode_events(items)
        return payload, len(payload) + FRAME.size

    def new_chunk(self, key: ChunkKey) -> Chunk:
        seq = self._next_seq
        self._next_seq += 1
        path = os.path.join(self.dir, f"b{seq:012d}.chunk")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        header = _header(key)
        try:
            _write_all(fd, header)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        chunk = FileChunk(key, seq, path, fd)
        chunk.size_on_disk = len(header)
        self._open.add(chunk)
        self._dir_dirty = True
        self._mark_dirty(chunk)
        return chunk

    def append(self, chunk: Chunk, events: list[Any], payload: Any, nbytes: int, ack: Ack) -> None:
        """Append one frame; on failure cut the file back so no partial frame is left behind."""
        assert isinstance(chunk, FileChunk) and chunk.fd is not None
        frame = _frame(payload, len(events))
        try:
            _write_all(chunk.fd, frame)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(chunk.fd, chunk.size_on_disk)
            raise
        chunk.size_on_disk += len(frame)
        self._mark_dirty(chunk)

    def _mark_dirty(self, chunk: FileChunk) -> None:
        if not chunk.dirty:
            chunk.dirty = True
            self._dirty.append(chunk)

    def skip_stored(self, events: list[Event]) -> list[Event]:
        return self.marks.skip(events) if self.marks is not None else events

    def note_stored(self, events: list[Event]) -> None:
        if self.marks is not None:
            self.marks.note(events)

    def commit(self, ack: Ack) -> None:
        if self.fsync == "never":
            return
        ack.hold()
        self._pending_acks.append(ack)
        self._need_sync.set()

    def seal(self, chunk: Chunk) -> None:
        assert isinstance(chunk, FileChunk)
        if chunk.sealed:
            return
        queued = os.path.join(self.dir, f"q{chunk.seq:012d}.chunk")
        os.rename(chunk.path, queued)
        chunk.path = queued
        chunk.sealed = True
        self._dir_dirty = True
        self._close_if_idle(chunk)

    def _close_if_idle(self, chunk: FileChunk) -> None:
        """Close a sealed chunk's descriptor unless an fsync still needs it."""
        if chunk.sealed and chunk.fd is not None and not chunk.dirty and not chunk.syncing:
            os.close(chunk.fd)
            chunk.fd = None
            self._open.discard(chunk)

    # ---- syncing -------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while True:
            await self._need_sync.wait()
            if self.fsync == "interval":
                await asyncio.sleep(self.fsync_interval)
            self._need_sync.clear()
            # Shielded: cancelling the loop at close must not abandon a round half done.
            self._round = asyncio.ensure_future(self._sync_round())
            await asyncio.shield(self._round)

    async def _sync_round(self) -> None:
        acks, self._pending_acks = self._pending_acks, []
        chunks, self._dirty = self._dirty, []
        dir_dirty, self._dir_dirty = self._dir_dirty, False
        for chunk in chunks:
            chunk.dirty = False
            chunk.syncing = True
        fds = [c.fd for c in chunks if c.fd is not None]
        marks = self.marks.snapshot() if self.marks is not None else None
        try:
            await asyncio.to_thread(self._fsync_all, fds, dir_dirty, marks)
        except OSError as exc:
            # Not durable: keep the acknowledgements held and try again.
            self.log.error("buffer %s: fsync failed (%s); acknowledgements wait", self.dir, exc)
            if self.marks is not None and marks is not None:
                self.marks.dirty = True
            for chunk in chunks:
                chunk.syncing = False
                self._mark_dirty(chunk)
            self._dir_dirty = self._dir_dirty or dir_dirty
            self._pending_acks[:0] = acks
            self._need_sync.set()
            await asyncio.sleep(1.0)
            return
        for chunk in chunks:
            chunk.syncing = False
            self._close_if_idle(chunk)
        for ack in acks:
            ack.release()

    def _fsync_all(self, fds: list[int], dir_too: bool, marks: bytes | None = None) -> None:
        """The chunk files first, then the marks: a mark never names a line not on disk."""
        for fd in fds:
            os.fsync(fd)
        if marks is not None and self.marks is not None:
            self.marks.write(marks)
        if dir_too and self._dir_fd is not None:
            os.fsync(self._dir_fd)

    # ---- reading and forgetting ----------------------------------------------

    async def load(self, chunk: Chunk) -> list[Any]:
        assert isinstance(chunk, FileChunk)
        return await asyncio.to_thread(self._load, chunk)

    def _load(self, chunk: FileChunk) -> list[Any]:
        try:
            with open(chunk.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            self.log.error("buffer %s: chunk %s vanished before it was written", self.dir, chunk.path)
            return []
        scan = scan_chunk(data)
        events = read_events(data, scan)
        if scan.error is not None:
            self._quarantine_copy(chunk.path, data, scan.error, len(events))
        return events

    def _quarantine_copy(self, path: str, data: bytes, reason: str, salvaged: int) -> None:
        """A chunk damaged after replay: keep a copy for inspection; its valid part is written."""
        os.makedirs(self.quarantine_dir, exist_ok=True)
        target = os.path.join(self.quarantine_dir, f"{os.path.basename(path)}.{time.time_ns()}")
        with open(target, "wb") as f:
            f.write(data)
        with open(target + ".reason", "w") as f:
            f.write(f"{reason}\nsalvaged events: {salvaged}\n")
        self.quarantined += 1
        self.log.error("buffer %s: chunk %s is damaged (%s); copied to %s, %d event(s) before the damage "
                       "will be written", self.dir, os.path.basename(path), reason, target, salvaged)

    async def discard(self, chunk: Chunk) -> None:
        assert isinstance(chunk, FileChunk)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(chunk.path)
        chunk.sealed = True
        self._close_if_idle(chunk)

    async def close(self) -> int:
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
            self._syncer = None
            if self._round is not None:
                await self._round
            if self._pending_acks or self._dirty:
                await self._sync_round()
        for chunk in list(self._open):
            if chunk.fd is not None:
                os.close(chunk.fd)
                chunk.fd = None
        self._open.clear()
        for fd in (self._dir_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._dir_fd = self._lock_fd = None
        return 0
