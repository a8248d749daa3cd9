"""The tail input's reading loop (plugin-private helper of in_tail).

One asyncio task polls the watched files: `os.read` of 1 MiB blocks, split into
lines per block, decoded and parsed per batch, emitted with an acknowledgement
callback; while `emit` waits (backpressure) nothing is read. Polling instead of
inotify: a stat per file every `stat_interval` (0.25 s) costs nothing next to the
reads, works on every file system (NFS, overlay, bind mounts) and gives the ≤ 1 s
latency; a file that had data is read again at once, so a busy file never waits.

Identity is device + inode, checked against a fingerprint of the first bytes
(inode reuse, files rewritten in place). A path that now names another inode
means rename rotation: the old file stays open and is read to its end until
`rotate_wait` has passed without data, the new one is read from its head. A file
smaller than the read position, or whose first bytes changed, was truncated
(copytruncate): it is read again from 0 with a fresh acknowledgement window.

Descriptors (issue 12, item 9): the tail inputs of a process hold at most half of the
descriptors left after the reserve of logpipe/descriptors.py, or `max_open_files` each.
A file found while none is free waits (FIFO) in `waiting`; a file read to its end gives
its descriptor up at once while others wait, and after `close_inactive`/`close_older`
of quiet in any case; a closed file is kept with its offsets (in `released`) and opened
again when it grows. Bytes of a file that vanished while it waited or was closed, and of
a saved position whose file is gone at start, are counted in
`logpipe_input_tail_unread_rotated_bytes_total`: the loss a shipper can see, said out loud.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from logpipe.descriptors import DESCRIPTORS, soft_limit, tail_budget
from logpipe.helpers.container_log import Decoded
from logpipe.helpers.multiline import Joined
from logpipe.helpers.multiline_presets import make_joiner
from logpipe.plugin import Event, InputContext, PluginMetrics
from logpipe_plugins.inputs.tail.acks import AckWindow
from logpipe_plugins.inputs.tail.container import ContainerStage
from logpipe_plugins.inputs.tail.file import FINGERPRINT_BYTES, TailedFile, TailOptions, fingerprint
from logpipe_plugins.inputs.tail.lines import LineSplitter
from logpipe_plugins.inputs.tail.paths import PathMatcher, tag_for
from logpipe_plugins.inputs.tail.positions import Key, Position, load_positions, save_positions

log = logging.getLogger("logpipe.input.tail")

READ_CHUNK = 1 << 20
#: Bytes read from one file before the others get a turn.
READ_BUDGET = 8 << 20


@dataclass
class Waiting:
    """A file found while no descriptor was free: where it is, how it was found (from
    its head, or at `at`, the size when found, for a file that starts at its end) and its
    size at the last look."""

    path: str
    from_head: bool
    at: int | None
    size: int


class Tailer:
    """Discovers, reads, rotates and releases the files of one tail input, and keeps
    their acknowledged positions."""

    def __init__(self, opts: TailOptions, ctx: InputContext, metrics: PluginMetrics) -> None:
        self.opts = opts
        self.ctx = ctx
        self.matcher = PathMatcher(opts.paths, opts.excludes)
        self.files: dict[Key, TailedFile] = {}
        self.released: dict[Key, TailedFile] = {}
        self.waiting: dict[Key, Waiting] = {}
        self._said_short = False
        #: Identities the globs matched at the last discovery, under whatever name.
        self.last_seen: set[Key] = set()
        self.ignored: dict[Key, int] = {}
        self.stored = load_positions(opts.pos_file)
        self.dirty = False
        self.closed = False
        self._save_scheduled = False
        self._last_save = 0.0
        self.m_lines = metrics.counter("tail_lines", "lines read by the tail input")
        self.m_truncated = metrics.counter("tail_long_lines", "lines over max_line_size")
        self.m_replaced = metrics.counter("tail_decode_replacements", "characters replaced because of invalid bytes")
        self.m_rotations = metrics.counter("tail_rotations", "rotations and truncations seen")
        self.m_container_failures = metrics.counter("tail_container_parse_failures",
                                                    "lines that are not valid CRI / docker json-file")
        self.m_unread = metrics.counter("tail_unread_rotated_bytes",
                                        "bytes of rotated or deleted files that were never read")

    # ---- main loop ---------------------------------------------------------------

    async def run(self) -> None:
        opts = self.opts
        clock = time.monotonic
        next_refresh = 0.0
        next_stat = 0.0
        initial = True
        try:
            while True:
                now = clock()
                if now >= next_refresh:
                    self.discover(initial)
                    initial = False
                    next_refresh = now + opts.refresh_interval
                    next_stat = now + opts.stat_interval
                elif now >= next_stat:
                    self.check_rotation(now)
                    next_stat = now + opts.stat_interval
                progressed = False
                for f in list(self.files.values()):
                    try:
                        if await self.pump(f):
                            progressed = True
                    except OSError as exc:
                        self.drop(f, exc)
                await self.flush_multiline(clock())
                await self.reap(clock())
                self.close_idle(clock())
                self.open_waiting()
                self.maybe_save(now)
                await asyncio.sleep(0 if progressed else opts.stat_interval)
        finally:
            self.save()

    def close(self) -> None:
        """After the task ended: save, release the descriptors; late acks still save (coalesced)."""
        self.closed = True
        self.save()
        for f in list(self.files.values()) + list(self.released.values()):
            if f.fd is not None:
                self.close_fd(f.fd)
                f.fd = None

    # ---- discovery and rotation ------------------------------------------------------

    def discover(self, initial: bool) -> None:
        now_wall = time.time()
        seen: set[Key] = set()
        for path in self.matcher.scan():
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            seen.add(key)
            f = self.files.get(key)
            if f is not None:
                if f.path != path or f.rotated_at is not None:
                    f.path, f.rotated_at = path, None
                continue
            waiting = self.waiting.get(key)
            if waiting is not None:
                waiting.path, waiting.size = path, st.st_size
                continue
            if self.opts.ignore_older is not None and now_wall - st.st_mtime > self.opts.ignore_older:
                # Logstash: an ignored file that is written to later is read from where it was ignored.
                self.ignored.setdefault(key, st.st_size)
                continue
            self.open(path, from_head=not initial)
        self.last_seen = seen
        if self.ignored.keys() - seen:  # ignored files gone from the globs: forget them (bounded)
            self.ignored = {k: v for k, v in self.ignored.items() if k in seen}
        for key in self.waiting.keys() - seen:
            self.lose_waiting(key)
        if initial:
            self.recover_rotated()
            self.count_vanished()

    def lose_waiting(self, key: Key) -> None:
        """A file that waited for a descriptor is gone from the globs (rotated away, deleted):
        what it held past where it would have been read from is lost, and counted."""
        w = self.waiting.pop(key)
        old = self.released.pop(key, None)
        if old is not None:
            start = old.read_pos
        elif w.at is not None:
            start = w.at
        else:
            stored = self.stored.get(key)
            start = stored.offset if stored is not None and not w.from_head else 0
        self.count_unread(w.path, w.size - start)

    def count_vanished(self) -> None:
        """At start: saved positions whose file is nowhere (deleted while logpipe was down,
        or rotated out of reach) lost what lay between the offset and the saved size."""
        for key, p in list(self.stored.items()):
            if key in self.files or key in self.waiting or _still_there(p):
                continue
            del self.stored[key]
            self.count_unread(p.path, p.size - p.offset)

    def count_unread(self, path: str, nbytes: int) -> None:
        if nbytes > 0:
            self.m_unread.inc(nbytes)
            log.warning("%s went away with %d byte(s) never read (rotated or deleted before it had a "
                        "descriptor, or while logpipe was stopped)", path, nbytes)
    def check_rotation(self, now: float) -> None:
        for f in list(self.files.values()):
            if f.rotated_at is not None:
                continue
            try:
                st = os.stat(f.path)
            except OSError:
                f.rotated_at = now
                continue
            key = (st.st_dev, st.st_ino)
            if key != f.key:
                f.rotated_at = now
                self.m_rotations.inc()
                if key not in self.files and not self.matcher.excluded(f.path):
                    self.open(f.path, from_head=True)
        self.check_closed(now)

    def check_closed(self, now: float) -> None:
        """Files closed while quiet: opened again when they change; marked rotated when their
        path names another file or none (then forgotten as rotated files are)."""
        for key, f in list(self.released.items()):
            if f.rotated_at is not None or key in self.waiting:
                continue
            try:
                st = os.stat(f.path)
            except OSError:
                f.rotated_at = now
                continue
            if (st.st_dev, st.st_ino) != key:
                f.rotated_at = now
                continue
            f.last_size = st.st_size
            if st.st_size != f.read_pos or st.st_mtime_ns != f.mtime_ns:
                self.open(f.path, from_head=True)  # resumes at its offset unless it was truncated

    # ---- descriptors ---------------------------------------------------------------

    def can_open(self) -> bool:
        """A descriptor is free for one more file: below this input's max_open_files (or the
        tail inputs' shared budget), and never into the process's reserve."""
        if DESCRIPTORS.headroom() <= 0:
            return False
        if self.opts.max_open_files is not None:
            return len(self.files) < self.opts.max_open_files
        return DESCRIPTORS.tail_open < tail_budget()

    def close_fd(self, fd: int) -> None:
        os.close(fd)
        DESCRIPTORS.gave()
        DESCRIPTORS.tail_open -= 1

    def park(self, path: str, from_head: bool, at: int | None, why: str) -> None:
        """No descriptor for `path` now: it waits for one (FIFO)."""
        try:
            st = os.stat(path)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in self.files or key in self.waiting:
            return
        if at is None and not from_head and not self.opts.read_from_head and key not in self.stored \
                and key not in self.released:
            at = st.st_size  # a file that starts at its end starts at its end as found now
        self.waiting[key] = Waiting(path, from_head, at, st.st_size)
        if not self._said_short:
            self._said_short = True
            limit = self.opts.max_open_files
            log.error("%s: %s; files wait for a descriptor and are read in turn (ulimit -n is %d, %s). "
                      "Raise the open-files limit (ulimit -n, LimitNOFILE=), set max_open_files, or "
                      "close_older/close_inactive so quiet files let theirs go", self.ctx.plugin_id, why,
                      soft_limit(), f"max_open_files {limit}" if limit is not None
                      else f"the tail inputs' share is {tail_budget()}")

    def open_waiting(self) -> None:
        """Open waiting files while descriptors are free, first found first."""
        for key, w in list(self.waiting.items()):
            if not self.can_open():
                return
            try:
                st = os.stat(w.path)
            except OSError:
                continue  # the next discovery finds it under its new name, or counts it lost
            if (st.st_dev, st.st_ino) != key:
                continue
            del self.waiting[key]
            self.open(w.path, w.from_head, w.at)

    def close_idle(self, now: float) -> None:
        """Files read to their end let their descriptor go: after close_inactive without data,
        and at once, quietest first, while other files wait for one."""
        idle = [f for f in self.files.values()
                if f.at_eof and f.rotated_at is None and f.fd is not None and not f.holds_back]
        if not idle:
            return
        wait = self.opts.close_inactive
        closing = [f for f in idle if wait is not None and now - f.last_data >= wait]
        need = len(self.waiting) - len(closing) if self.waiting and not self.can_open() else 0
        if need > 0:
            rest = sorted((f for f in idle if f not in closing), key=lambda f: f.last_data)
            closing += rest[:need]
        for f in closing:
            assert f.fd is not None
            self.close_fd(f.fd)
            f.fd = None
            del self.files[f.key]
            self.released[f.key] = f

    def open(self, path: str, from_head: bool, at: int | None = None) -> TailedFile | None:
        if not self.can_open():
            self.park(path, from_head, at, "the descriptor budget of the tail inputs is in use")
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self.park(path, from_head, at, str(exc))
            else:
                log.warning("cannot open %s: %s", path, exc)
            return None
        DESCRIPTORS.took()
        DESCRIPTORS.tail_open += 1
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key in self.files:
            self.close_fd(fd)
            return None
        fp = fingerprint(fd, FINGERPRINT_BYTES)
        old = self.released.pop(key, None)
        if old is not None and old.fp == fingerprint(fd, old.fp_len)[0] and st.st_size >= old.consumed:
            old.fd, old.path, old.rotated_at, old.at_eof = fd, path, None, False
            old.read_pos = old.scan_pos = old.consumed
            old.splitter = LineSplitter(self.opts.max_line_size)
            old.multiline = make_joiner(self.opts.multiline) if self.opts.multiline and not self.opts.container \
                else None
            old.container = self.new_container()
            os.lseek(fd, old.consumed, os.SEEK_SET)
            self.files[key] = old
            return old
        original = self.copy_source(fd, fp) if from_head and key not in self.stored else None
        if original is not None and st.st_size >= original.scan_pos:
            # copytruncate with the copy inside the glob: the copy continues where the
            # original was read, and the original waits (rotate_wait) for its truncation.
            offset = original.scan_pos
            original.frozen_until = time.monotonic() + self.opts.rotate_wait
            log.info("%s is a copy of %s; continuing at offset %d", path, original.path, offset)
        else:
            offset = self.start_offset(fd, st, key, path, from_head, at)
        f = TailedFile(path, key, fd, tag_for(self.opts.tag, path), offset, fp, self.opts, self.mark_dirty)
        f.container = self.new_container()
        self.files[key] = f
        self.mark_dirty()
        log.info("tailing %s from offset %d", path, offset)
        return f

    def new_container(self) -> ContainerStage | None:
        if self.opts.container is None:
            return None
        return ContainerStage(self.opts.container, self.opts.multiline, self.m_container_failures.inc)

    def copy_source(self, fd: int, fp: tuple[str, int]) -> TailedFile | None:
        """The live file `fd` is a byte copy of, judged by the same first bytes and the
        same last line read at the same offset (two logs that merely start alike differ there)."""
        if fp[1] < FINGERPRINT_BYTES:
            return None
        for f in self.files.values():
            if f.fp != fp[0] or f.fp_len != fp[1]:
                continue
            if f.scan_pos == 0:
                return f
            if f.last_line is None:
                continue
            tail = f.last_line + b"\n"
            if os.pread(fd, len(tail), f.scan_pos - len(tail)) == tail:
                return f
        return None

    def start_offset(self, fd: int, st: os.stat_result, key: Key, path: str, from_head: bool,
                     at: int | None = None) -> int:
        stored = self.stored.pop(key, None)
        if stored is not None:
            if st.st_size >= stored.offset and fingerprint(fd, stored.fp_len)[0] == stored.fp:
                return stored.offset
            log.info("%s: inode reused or file rewritten since the position was saved; reading from the start",
                     stored.path)
            return 0
        if key in self.ignored:
            return min(self.ignored.pop(key), st.st_size)
        if from_head or self.opts.read_from_head:
            return 0
        if any(p.path == path for p in self.stored.values()):
            return 0  # a known path with a new inode: rotated while we were stopped
        return st.st_size if at is None else min(at, st.st_size)

    def recover_rotated(self) -> None:
        """A file rotated while we were stopped: its saved inode now lives under another
        name next to the old path. Read it to its end, then let it go."""
        for key, stored in list(self.stored.items()):
            directory = os.path.dirname(stored.path) or "."
            try:
                entries = [e for e in os.scandir(directory) if e.inode() == key[1] and e.is_file()]
            except OSError:
                continue
            for entry in entries:
                if entry.path == stored.path or self.matcher.excluded(entry.path):
                    continue
                try:
                    st = os.stat(entry.path)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) != key:
                    continue
                f = self.open(entry.path, from_head=False)
                if f is not None:
                    f.rotated_at = time.monotonic() - self.opts.rotate_wait
                break

    # ---- reading -----------------------------------------------------------------

    async def pump(self, f: TailedFile) -> bool:
        """Read what the file has (up to a budget); returns whether anything was read."""
        fd = f.fd
        if fd is None:
            return False
        st = os.fstat(fd)
        size = f.last_size = st.st_size
        if f.frozen_until:
            if (size >= f.read_pos and time.monotonic() < f.frozen_until
                    and fingerprint(fd, f.fp_len)[0] == f.fp):
                return False
            f.frozen_until = 0.0
        if size < f.read_pos or (size > f.read_pos and f.fp_len and fingerprint(fd, f.fp_len)[0] != f.fp):
            self.discover(initial=False)  # a copy (copytruncate) must be matched before the fingerprint changes
            await self.restart(f)
        elif self.rewritten_in_place(f, st):
            await self.restart(f)
        f.mtime_ns = st.st_mtime_ns
        budget = READ_BUDGET
        progressed = False
        while budget > 0:
            data = os.read(fd, READ_CHUNK)
            if not data:
                f.at_eof = True
                break
            f.at_eof = False
            progressed = True
            f.read_pos += len(data)
            budget -= len(data)
            lines, extra, first_overlong = f.splitter.feed(data)
            if lines:
                await self.process(f, lines, extra, first_overlong)
            if f.fd is None:
                return progressed
            if len(data) < READ_CHUNK:
                break
        if progressed:
            f.last_data = time.monotonic()
            if f.fp_len < FINGERPRINT_BYTES and f.read_pos > f.fp_len:
                f.fp, f.fp_len = fingerprint(fd, FINGERPRINT_BYTES)
                self.mark_dirty()
        return progressed

    def drop(self, f: TailedFile, exc: OSError) -> None:
        """A read error (stale NFS handle, I/O error) closes that file only; its saved
        position stays, so it is picked up again by the next scan."""
        log.error("reading %s failed (%s); closing it", f.path, exc)
        self.files.pop(f.key, None)
        if f.fd is not None:
            with contextlib.suppress(OSError):
                self.close_fd(f.fd)
            f.fd = None
        self.released[f.key] = f

    @staticmethod
    def rewritten_in_place(f: TailedFile, st: os.stat_result) -> bool:
        """Truncated and written again to exactly the size already read, between two
        polls: the size says nothing, so a changed mtime has the fingerprint checked (one
        pread, only when the file changed without growing)."""
        if st.st_size != f.read_pos or not f.fp_len or st.st_mtime_ns == f.mtime_ns or not f.mtime_ns:
            return False
        assert f.fd is not None
        return fingerprint(f.fd, f.fp_len)[0] != f.fp

    async def restart(self, f: TailedFile) -> None:
        """Truncated or rewritten: what was held is emitted, then read again from 0."""
        self.m_rotations.inc()
        log.info("%s was truncated; reading it again from the start", f.path)
        await self.flush_file(f, final=False)
        f.splitter = LineSplitter(self.opts.max_line_size)
        f.frozen_until = 0.0
        f.last_line = None
        f.acks = AckWindow(0, self.mark_dirty)
        f.container = self.new_container()
        f.read_pos = f.scan_pos = f.consumed = 0
        assert f.fd is not None
        os.lseek(f.fd, 0, os.SEEK_SET)
        f.fp, f.fp_len = fingerprint(f.fd, FINGERPRINT_BYTES)
        f.forget_origins()
        self.mark_dirty()

    async def process(self, f: TailedFile, lines: list[bytes], extra: int, first_overlong: bool) -> None:
        opts = self.opts
        size = opts.batch_size
        max_line = opts.max_line_size
        self.m_lines.inc(len(lines))
        f.last_line = None if first_overlong and len(lines) == 1 else lines[-1]
        for k in range(0, len(lines), size):
            part = lines[k:k + size] if len(lines) > size else lines
            first_cut = first_overlong and k == 0
            raw_first = extra if k == 0 else 0
            raw_lens = [len(b) + 1 for b in part]
            raw_lens[0] += raw_first
            start = f.scan_pos
            f.scan_pos += sum(raw_lens)
            cut: list[int] | None = None
            if first_cut or max(map(len, part)) > max_line:
                part, raw_lens, cut = self.limit(part, raw_lens, first_cut)
            texts = self.decode(part)
            tags: list[list[str] | None] | None = None
            if cut and not opts.skip_long_lines:
                tags = [None] * len(texts)
                for i in cut:
                    tags[i] = ["_linetruncated"]
            if f.container is not None:
                ends = list(accumulate(raw_lens, initial=start))[1:len(texts) + 1]
                decoded = f.container.feed(texts, start, ends, tags)
                hold = f.container.hold
                f.consumed = f.scan_pos if hold is None else hold
                await self.emit_decoded(f, decoded)
            elif f.multiline is not None:
                base = f.consumed
                joined, raws = f.multiline.feed(texts, raw_lens)
                f.ml_fed = time.monotonic()
                if len(raw_lens) > len(texts):  # trailing skipped bytes
                    f.multiline.pending_raw += raw_lens[-1] if f.multiline.pending else 0
                f.consumed = f.scan_pos - f.multiline.pending_raw
                await self.emit_joined(f, joined, base, raws)
            else:
                f.consumed = f.scan_pos
                ends = list(accumulate(raw_lens, initial=start))[1:len(texts) + 1]
                await self.emit(f, texts, tags, ends)

    def limit(self, part: list[bytes], raw_lens: list[int],
              first_cut: bool) -> tuple[list[bytes], list[int], list[int]]:
        """Truncate or skip lines over max_line_size. In skip mode the raw length of a
        skipped line is carried onto the next kept one so offsets stay exact (a trailing
        carry is appended as one extra raw length)."""
        max_line = self.opts.max_line_size
        skip = self.opts.skip_long_lines
        out: list[bytes] = []
        lens: list[int] = []
        cut: list[int] = []
        carry = 0
        for i, line in enumerate(part):
            raw = raw_lens[i]
            if len(line) > max_line or (i == 0 and first_cut):
                self.m_truncated.inc()
                if skip:
                    carry += raw
                    continue
                line = line[:max_line]
                cut.append(len(out))
            out.append(line)
            lens.append(raw + carry)
            carry = 0
        if carry:
            lens.append(carry)
        return out, lens, cut

    def decode(self, part: list[bytes]) -> list[str]:
        if not part:
            return []
        enc = self.opts.encoding
        text = b"\n".join(part).decode(enc, "replace")
        texts = text.split("\n")
        if len(texts) != len(part):
            texts = [b.decode(enc, "replace") for b in part]
        if "\ufffd" in text:
            self.m_replaced.inc(text.count("\ufffd"))
        if "\r" in text:
            texts = [t[:-1] if t[-1:] == "\r" else t for t in texts]
        return texts

    # ---- emitting ----------------------------------------------------------------

    async def emit(self, f: TailedFile, texts: list[str], tags: list[list[str] | None] | None,
                   ends: list[int] | None = None) -> None:
        """`ends` are the file offsets just past each line: with the file's inode and
        fingerprint they become `meta["_origin"]`, the line's identity that outlives a
        crash, so idempotent outputs (ES, Mongo ids) absorb lines read twice."""
        end = f.consumed
        if not texts:
            f.acks.advance(end)
            return
        if self.opts.fluent_parser is not None:
            await self.emit_fluent(f, texts, tags, ends, end)
            return
        records = self.opts.parser(texts)
        if tags is not None:
            for record, extra in zip(records, tags):
                if extra:
                    _add_tags(record, extra)
        if self.opts.decorate is not None:
            self.opts.decorate(records, f.path)
        now = time.time_ns()
        tag = f.tag
        timer = self.opts.timer
        if ends is not None and len(ends) == len(records):
            origins = f.origins(ends)
            if timer is None:
                events = [Event(tag, now, r, {"_origin": o}) for r, o in zip(records, origins)]
            else:
                events = [Event(tag, timer(r) or now, r, {"_origin": o}) for r, o in zip(records, origins)]
        elif timer is None:
            events = [Event(tag, now, r) for r in records]
        else:
            events = [Event(tag, timer(r) or now, r) for r in records]
        await self.ctx.emit(events, f.acks.push(end))

    async def emit_fluent(self, f: TailedFile, texts: list[str], tags: list[list[str] | None] | None,
                          ends: list[int] | None, end: int) -> None:
        """Fluentd's in_tail: each line parsed into (time, record); a line the parser refuses
        is dropped with a warning (or emitted as `unmatched_line` with emit_unmatched_lines)."""
        assert self.opts.fluent_parser is not None
        records, times = self.opts.fluent_parser(texts)
        now = time.time_ns()
        tag = f.tag
        keep = [i for i, r in enumerate(records) if r is not None]
        kept = [records[i] for i in keep]
        if tags is not None:
            for i in keep:
                extra = tags[i] if i < len(tags) else None
                if extra:
                    _add_tags(records[i], extra)  # type: ignore[arg-type]
        if self.opts.decorate is not None:
            self.opts.decorate(kept, f.path)  # type: ignore[arg-type]
        if ends is not None and len(ends) == len(records):
            origins = f.origins(ends)
            events = [Event(tag, times[i] or now, records[i], {"_origin": origins[i]}) for i in keep]
        else:
            events = [Event(tag, times[i] or now, records[i]) for i in keep]
        await self.ctx.emit(events, f.acks.push(end))

    async def emit_joined(self, f: TailedFile, joined: list[Joined], base: int, raws: list[int]) -> None:
        """Joined events end where the bytes they cover end, counted from `base`, the
        first byte the joiner held: that is their `_origin` offset."""
        ends = list(accumulate(raws, initial=base))[1:]
        await self.emit(f, [t for t, _ in joined], [tags for _, tags in joined], ends)

    async def emit_decoded(self, f: TailedFile, decoded: Decoded) -> None:
        """Container lines carry their runtime time; the acknowledgement ends at
        `f.consumed`, before any line still held, while each event's `_origin` is the end
        of its own last byte."""
        if not decoded.records:
            f.acks.advance(f.consumed)
            return
        records = decoded.records
        if self.opts.decorate is not None:
            self.opts.decorate(records, f.path)
        tag = f.tag
        events = [Event(tag, t, r, {"_origin": o})
                  for r, t, o in zip(records, decoded.times, f.origins(decoded.ends))]
        await self.ctx.emit(events, f.acks.push(f.consumed))

    async def flush_container(self, f: TailedFile, older_than: float | None) -> None:
        assert f.container is not None
        decoded = f.container.flush(older_than)
        if decoded.records:
            hold = f.container.hold
            f.consumed = f.scan_pos if hold is None else hold
            await self.emit_decoded(f, decoded)

    async def flush_multiline(self, now: float) -> None:
        if self.opts.container is not None:
            interval = self.opts.container.flush_interval
            if self.opts.multiline is not None and self.opts.multiline.flush_interval is not None:
                interval = self.opts.multiline.flush_interval if interval is None \
                    else min(interval, self.opts.multiline.flush_interval)
            if interval is not None:
                for f in list(self.files.values()):
                    if f.container is not None and now - f.last_data >= interval:
                        await self.flush_container(f, interval)
            return
        spec = self.opts.multiline
        if spec is None or spec.flush_interval is None:
            return
        for f in list(self.files.values()):
            ml = f.multiline
            if ml is not None and ml.pending and now - f.ml_fed >= spec.flush_interval:
                base = f.consumed
                joined, raws = ml.flush()
                f.consumed = f.scan_pos
                await self.emit_joined(f, joined, base, raws)

    async def flush_file(self, f: TailedFile, final: bool) -> None:
        """Emit what a file holds back: the multiline event and, when the file is let
        go for good, its unterminated last line."""
        if final:
            rest, dropped, overlong = f.splitter.take_rest()
            if rest or dropped:
                # `process` counts a newline after every line; none follows this one.
                await self.process(f, [rest], dropped - 1, overlong)
        if f.container is not None:
            await self.flush_container(f, None)
        if f.multiline is not None and f.multiline.pending:
            base = f.consumed
            joined, raws = f.multiline.flush()
            f.consumed = f.scan_pos
            await self.emit_joined(f, joined, base, raws)

    async def reap(self, now: float) -> None:
        """Let go of rotated or deleted files once read to the end and quiet for rotate_wait."""
        wait = self.opts.rotate_wait
        for key, f in list(self.files.items()):
            if f.rotated_at is None or not f.at_eof or f.fd is None:
                continue
            if now - f.last_data < wait or now - f.rotated_at < wait:
                continue
            await self.flush_file(f, final=True)
            deleted = os.fstat(f.fd).st_nlink == 0
            self.close_fd(f.fd)
            f.fd = None
            del self.files[key]
            if not deleted:
                self.released[key] = f
            log.info("released %s (%s)", f.path, "deleted" if deleted else "rotated")
            self.mark_dirty()

    def stats(self) -> list[dict[str, Any]]:
        """Per open file: its size now, how far it was read and acknowledged, and the lag
        (bytes on disk not yet acknowledged: what a crash now would read again, or what is
        still to come). One fstat per file, only when asked (/stats)."""
        out = []
        for f in self.files.values():
            size = None
            if f.fd is not None:
                with contextlib.suppress(OSError):
                    size = os.fstat(f.fd).st_size
            acked = f.acks.committed
            out.append({"path": f.path, "size": size, "read": f.read_pos, "acknowledged": acked,
                        "lag_bytes": None if size is None else max(0, size - acked),
                        "rotated": f.rotated_at is not None})
        return out

    # ---- positions ---------------------------------------------------------------

    def mark_dirty(self) -> None:
        self.dirty = True
        if self.closed and not self._save_scheduled:
            self._save_scheduled = True
            asyncio.get_running_loop().call_soon(self.save)

    def maybe_save(self, now: float) -> None:
        if self.dirty and now - self._last_save >= self.opts.save_interval:
            self.save()
            self._last_save = now

    def save(self) -> None:
        self._save_scheduled = False
        if not self.dirty or self.opts.pos_file is None:
            self.dirty = False
            return
        self.dirty = False
        self.forget_released()
        positions = [f.position() for f in self.files.values()]
        positions += [f.position() for f in self.released.values()]
        positions += [p for p in self.stored.values() if _still_there(p)]
        try:
            save_positions(self.opts.pos_file, positions)
        except OSError as exc:
            self.dirty = True
            log.error("cannot save positions to %s: %s", self.opts.pos_file, exc)


    def forget_released(self) -> None:
        """A file let go after rotation is forgotten once its last batch is acknowledged
        and its old path names another file (as Fluentd compacts its pos_file): otherwise
        every rotation would add an entry kept in memory and written by every save. While
        the globs still match its identity under another name (`app.log*` matching
        `app.log.1`) it is kept, so the next discovery resumes it where it ended instead of
        reading it again from 0."""
        for key, f in list(self.released.items()):
            if (f.rotated_at is not None and not f.acks.pending and key not in self.last_seen
                    and not _still_there(f.position())):
                del self.released[key]
                self.count_unread(f.path, f.last_size - f.read_pos)


def _still_there(p: Position) -> bool:
    """Saved entries of files not watched any more are kept while their inode is still at that path."""
    try:
        st = os.stat(p.path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == p.key


def _add_tags(record: dict[str, Any], tags: list[str]) -> None:
    current = record.get("tags")
    if isinstance(current, list):
        current.extend(t for t in tags if t not in current)
    else:
        record["tags"] = list(tags)
