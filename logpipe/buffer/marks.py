"""Durable marks of what a file buffer already holds or delivered, per tailed file.

After kill -9 the tail input reads again everything it had not saved a position for (up to
`save_interval` of reading), though the file buffer had stored — and often delivered — those
lines: with a burst of 47,000 lines that was 47,000 duplicates. The buffer remembers, per
(tag, inode), the highest `_origin` end offset it stored, with the fingerprint of the file's
first bytes there (`_origin` is `(inode, fingerprint, end)`, logpipe_plugins tail). The marks
are written in the fsync round that releases the acknowledgements (group commit: one small
file, temp + fsync + rename, after the chunk files are fsynced), so a mark never claims a line
that is not on disk. A line read again whose end is at or below its file's mark, with the
same fingerprint, is skipped at `put`: it is in the buffer or was delivered.

Only lines whose end is past the fingerprint length (255 bytes) are judged: before that the
fingerprint covers less than the mark's and cannot tell a rewritten file from the same one, so
such lines may be duplicated, never skipped wrongly. A file truncated and rewritten with the
same first 255 bytes would be taken for the old one — the tail input's own identity check has
the same limit.
"""

from __future__ import annotations

import contextlib
import logging
import os

import msgpack

from logpipe.event import Event

#: Files remembered per buffer (the oldest marks are forgotten first).
MAX_MARKS = 4096
#: Below this end offset a line's fingerprint covers less than the file's (tail's FINGERPRINT_BYTES).
FINGERPRINT_BYTES = 255

log = logging.getLogger("logpipe.buffer")

Mark = tuple[int, str]  # (end offset, fingerprint)


class StoredMarks:
    def __init__(self, path: str) -> None:
        self.path = path
        self._marks: dict[tuple[str, int], Mark] = {}
        self.dirty = False

    def load(self) -> None:
        """Read the marks (in the store's thread); unreadable marks are no marks (duplicates, never loss)."""
        try:
            with open(self.path, "rb") as fh:
                entries = msgpack.unpackb(fh.read(), raw=False)
            self._marks = {(str(tag), int(ino)): (int(end), str(fp)) for tag, ino, end, fp in entries}
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001 - a damaged marks file only costs duplicates
            log.warning("buffer marks %s unreadable (%s); lines read again after a crash may be sent twice",
                        self.path, exc)
            self._marks = {}

    def skip(self, events: list[Event]) -> list[Event]:
        """The events not already stored (see the module docstring)."""
        marks = self._marks
        if not marks:
            return events
        get = marks.get
        kept = []
        for ev in events:
            meta = ev.meta
            origin = meta.get("_origin") if meta else None
            if origin.__class__ is tuple and len(origin) == 3:
                mark = get((ev.tag, origin[0]))
                if mark is not None and FINGERPRINT_BYTES <= origin[2] <= mark[0] and origin[1] == mark[1]:
                    continue
            kept.append(ev)
        return kept if len(kept) < len(events) else events

    def note(self, events: list[Event]) -> None:
        """Raise the marks to what these (now appended) events reach: per file, the last line
        of the batch that came from it (tail emits a file's lines in order)."""
        last: dict[tuple[str, int], tuple[int, str, int]] = {}
        for ev in events:
            meta = ev.meta
            origin = meta.get("_origin") if meta else None
            if origin.__class__ is tuple and len(origin) == 3:
                last[(ev.tag, origin[0])] = origin
        marks = self._marks
        for key, (_ino, fp, end) in last.items():
            if end < FINGERPRINT_BYTES:
                continue
            mark = marks.get(key)
            if mark is None or end > mark[0] or fp != mark[1]:
                marks.pop(key, None)
                marks[key] = (end, fp)
                self.dirty = True
        while len(marks) > MAX_MARKS:
            del marks[next(iter(marks))]

    def snapshot(self) -> bytes | None:
        """The marks to write in this sync round, or None when unchanged."""
        if not self.dirty:
            return None
        self.dirty = False
        return msgpack.packb([[tag, ino, end, fp] for (tag, ino), (end, fp) in self._marks.items()])

    def write(self, data: bytes) -> None:
        """Atomically (temp, fsync, rename); called from the store's fsync thread."""
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
