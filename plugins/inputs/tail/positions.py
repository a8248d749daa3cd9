"""The tail input's position file (Fluentd `pos_file`, Logstash `sincedb_path`).

One JSON document listing, per file identity (device, inode), the acknowledged
offset, the last path and a fingerprint of the file's first bytes. The
fingerprint is what tells a file apart from a different file that reuses the
inode. Saved atomically (temp file, fsync, rename) so a crash leaves the old or
the new version, never a torn one; an unreadable file is logged and ignored
(everything is then read again: duplicates, never loss).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass

import orjson

log = logging.getLogger("logpipe.input.tail")

Key = tuple[int, int]


@dataclass(slots=True)
class Position:
    path: str
    dev: int
    ino: int
    offset: int
    fp: str
    fp_len: int
    #: The file's size when saved: if it is gone at the next start, size - offset went unread.
    size: int = 0

    @property
    def key(self) -> Key:
        return (self.dev, self.ino)


def load_positions(path: str | None) -> dict[Key, Position]:
    """Read a position file; missing or corrupt files yield no positions (and a log line)."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
        entries = doc["files"]
        result = {}
        for e in entries:
            pos = Position(str(e["path"]), int(e["dev"]), int(e["ino"]), int(e["offset"]),
                           str(e["fp"]), int(e["fp_len"]), int(e.get("size", e["offset"])))
            result[pos.key] = pos
        return result
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("position file %s is unreadable (%s); files are read according to start position", path, exc)
        return {}


def save_positions(path: str | None, positions: list[Position]) -> None:
    """Write atomically: temp file in the same directory, fsync, rename."""
    if path is None:
        return
    doc = {"version": 1, "files": [
        {"path": p.path, "dev": p.dev, "ino": p.ino, "offset": p.offset, "fp": p.fp, "fp_len": p.fp_len,
         "size": p.size}
        for p in positions
    ]}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pos-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(doc))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
