"""Unlucky files (issue 12, items 8–14). Here: item 13, a damaged chunk of the file
buffer (one flipped byte in the middle frame used to cost every frame after it; the scan
now resynchronises on the next frame whose length fits and whose CRC matches), and item
10, ids of lines that must not change as a new file grows past its fingerprint length."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.buffer.file import FRAME, MAGIC, scan_chunk
from logpipe.event import Event
from logpipe.helpers.docid import event_id
from logpipe.plugin import InputContext, Output, WriteResult
from logpipe_plugins.inputs.tail import TailInput
from tests.support.hostile import Daemon


class Recorder(Output):
    name = "recorder"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.writes: list[Event] = []
        self.gate = asyncio.Event()

    async def write(self, events: list[Event]) -> WriteResult | None:
        await self.gate.wait()
        self.writes.extend(events)
        return None


def runner(tmp_path: Path, open_gate: bool) -> tuple[OutputRunner, Recorder]:
    out = Recorder(buffer="file", buffer_path=str(tmp_path / "buf"), flush_interval=3600)
    if open_gate:
        out.gate.set()
    return OutputRunner(out, state_dir=str(tmp_path)), out


async def test_salvage_resynchronises_after_a_damaged_frame(tmp_path: Path) -> None:
    first, _ = runner(tmp_path, open_gate=False)
    await first.start()
    for batch in range(3):
        await first.put([Event("t", 1, {"n": batch * 10 + i}) for i in range(10)], Ack())
    await first.stop(0.1)
    [path] = sorted((tmp_path / "buf").glob("*.chunk"))
    data = bytearray(path.read_bytes())
    scan = scan_chunk(bytes(data))
    assert scan.error is None and len(scan.spans) == 3
    middle_start, middle_end = scan.spans[1]
    data[(middle_start + FRAME.size + middle_end) // 2] ^= 0xFF  # one flipped byte in frame 2
    path.write_bytes(bytes(data))

    damaged = scan_chunk(bytes(data))
    assert damaged.error is not None and "CRC mismatch" in damaged.error
    assert damaged.spans == (scan.spans[0], scan.spans[2]) and damaged.records == 20

    second, out = runner(tmp_path, open_gate=True)
    await second.start()
    await second.flush()
    await second.stop(1)
    assert sorted(ev.record["n"] for ev in out.writes) == [*range(10), *range(20, 30)]
    assert second.stats()["quarantined_chunks"] == 1
    [reason] = (tmp_path / "buf" / "quarantine").glob("*.reason")
    assert "salvaged events: 20" in reason.read_text()
    assert data.startswith(MAGIC)


class Lines:
    """Plays the pipeline for a tail input: keeps every event, acknowledges at once."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    async def emit(self, events: list[Event], on_ack: Any) -> None:
        self.events.extend(events)
        if on_ack is not None:
            on_ack()
        self.changed.set()

    async def wait_for(self, count: int) -> list[Event]:
        async with asyncio.timeout(10):
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.events


async def read_all(path: Path, state: Path, count: int) -> list[Event]:
    """A fresh tail of `path` from its head, as after a kill -9 before positions were saved."""
    plugin = TailInput(path=[str(path)], read_from_head=True, pos_file="/dev/null", stat_interval=0.05,
                       refresh_interval=0.1)
    sink = Lines()
    task = asyncio.create_task(plugin.run(InputContext(sink.emit, str(state), plugin.id)))
    try:
        return list(await sink.wait_for(count))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await plugin.close()


async def test_ids_do_not_change_as_a_new_file_grows_past_255_bytes(tmp_path: Path) -> None:
    """Item 10: a kill -9 near a rotation — the new file is short when its first lines are
    read, long when they are read again. Before: `_origin` held the fingerprint of the
    whole (short) file, so those lines got new ids and became duplicate documents."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(f"first {i}\n".encode() for i in range(3)))  # 24 bytes
    first = await read_all(log, tmp_path / "s1", 3)
    with log.open("ab") as f:
        f.write(b"".join(f"later line {i:04d}\n".encode() for i in range(30)))  # now well past 255
    again = await read_all(log, tmp_path / "s2", 33)
    assert [ev.record["message"] for ev in again[:3]] == [ev.record["message"] for ev in first]
    assert [event_id(ev) for ev in again[:3]] == [event_id(ev) for ev in first]
    assert len({event_id(ev) for ev in again}) == 33


async def test_truncated_and_regrown_to_the_same_size_between_polls(tmp_path: Path) -> None:
    """Item 11: logrotate's copytruncate, then the application writes exactly as many bytes
    as the file had before the next poll. Before: unnoticed until the file grew again."""
    log = tmp_path / "app.log"
    log.write_bytes(b"old 1\nold 2\nold 3\n")
    plugin = TailInput(path=[str(log)], read_from_head=True, pos_file="/dev/null", stat_interval=0.02,
                       refresh_interval=0.05)
    sink = Lines()
    task = asyncio.create_task(plugin.run(InputContext(sink.emit, str(tmp_path / "state"), plugin.id)))
    try:
        await sink.wait_for(3)
        before = log.stat().st_mtime_ns
        while log.stat().st_mtime_ns == before:  # the kernel's coarse clock must tick for mtime to move
            with log.open("r+b") as f:  # truncate and regrow in one step: no poll can fall between
                f.truncate(0)
                f.write(b"new 1\nnew 2\nnew 3\n")
        events = await sink.wait_for(6)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await plugin.close()
    assert [ev.record["message"] for ev in events] == ["old 1", "old 2", "old 3", "new 1", "new 2", "new 3"]


def test_sigterm_with_a_file_buffer_and_the_output_down_returns_at_once(tmp_path: Path) -> None:
    """Item 12: the output cannot write (its path is a directory), the lines are in the file
    buffer, on disk. Before: SIGTERM waited the whole --shutdown-timeout (30 s here)."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(100)))
    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    config = f"""
input {{ file {{ path => "{log}" start_position => "beginning" sincedb_path => "{tmp_path / 'sincedb'}"
               stat_interval => 0.05 }} }}
output {{ file {{ id => "down" path => "{blocked}" buffer => file flush_interval => 0.05
                 retry_wait => 0.05 retry_forever => true }} }}
"""
    proc = Daemon(tmp_path, config, shutdown_timeout=30)
    try:
        proc.wait_listening(proc.http_port)
        deadline = time.monotonic() + 30
        while proc.metric("logpipe_output_write_errors_total", output="down") < 2:
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.05)
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        proc.proc.wait(40)
        took = time.monotonic() - started
    finally:
        proc.stop()
    assert took < 5, f"SIGTERM took {took:.1f}s"
    chunks = list((tmp_path / "state").rglob("*.chunk"))
    assert chunks, "the buffered lines must stay on disk for the next start"


async def test_rotated_name_inside_the_glob_is_not_read_again(tmp_path: Path) -> None:
    """Item 8: `path => app.log*`, rotate_wait ends before the next glob refresh. Before: the
    released file was forgotten and rediscovered as app.log.1 from offset 0 — every line
    delivered twice."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(f"first {i}\n".encode() for i in range(100)))
    plugin = TailInput(path=[str(tmp_path / "app.log*")], read_from_head=True, stat_interval=0.02,
                       refresh_interval=0.5, rotate_wait=0.05, save_interval=0.02,
                       pos_file=str(tmp_path / "pos"))
    sink = Lines()
    task = asyncio.create_task(plugin.run(InputContext(sink.emit, str(tmp_path / "state"), plugin.id)))
    try:
        await sink.wait_for(100)
        log.rename(tmp_path / "app.log.1")
        log.write_bytes(b"".join(f"second {i}\n".encode() for i in range(100)))
        await sink.wait_for(200)
        tailer = plugin._tailer
        assert tailer is not None
        async with asyncio.timeout(10):  # until a glob refresh has seen app.log.1 again
            while not any(f.path.endswith("app.log.1") for f in tailer.files.values()):
                await asyncio.sleep(0.02)
        for _ in range(10):  # a few polls of the adopted file: nothing more may come out of it
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await plugin.close()
    messages = [ev.record["message"] for ev in sink.events]
    assert len(messages) == 200 and len(set(messages)) == 200


def _messages(path: Path) -> list[str]:
    import orjson

    if not path.exists():
        return []
    return [orjson.loads(line)["message"] for line in path.read_bytes().splitlines() if line.endswith(b"}")]


def test_kill9_with_a_file_buffer_sends_at_most_one_chunk_again(tmp_path: Path) -> None:
    """Item 14: tail → file buffer → file output, kill -9 before any position was saved.
    Before, the tail read everything again and the buffer took it again: 20,000 duplicates
    for 20,000 lines (67,421 for 47k in the issue). Now the buffer's durable marks
    (logpipe/buffer/marks.py, written in the fsync round that acknowledges) skip the lines it
    had stored; what comes twice is at most the chunk being written at the kill
    (chunk_limit_records) plus the lines within a file's first 255 bytes (not judged)."""
    n, chunk = 20_000, 1000
    log, out = tmp_path / "app.log", tmp_path / "out.jsonl"
    config = f"""
    input {{ file {{ path => "{log}" start_position => "beginning" stat_interval => 0.05
                    sincedb_write_interval => "60s" }} }}
    output {{ file {{ path => "{out}" buffer => "file" flush_interval => 0.2 chunk_limit_records => {chunk} }} }}
    """
    lines = [f"{i:08d} the quick brown fox jumps over" for i in range(n)]
    first = Daemon(tmp_path, config)
    try:
        _wait(first.healthz)
        with log.open("w") as f:
            f.write("".join(line + "\n" for line in lines))
        # Kill once the buffer's group commit has covered the whole file (its marks say so):
        # lines stored but not yet fsynced are not acknowledged, and are rightly read again.
        marks = tmp_path / "state" / "buffer" / "file" / "stored.marks"
        deadline = time.monotonic() + 30
        while _marked_end(marks) < log.stat().st_size or len(_messages(out)) < n // 4:
            assert time.monotonic() < deadline and first.alive(), first.log()
            time.sleep(0.01)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    at_kill = len(_messages(out))
    assert at_kill > 0  # part-way or all of it: either way no position was saved, all is read again
    second = Daemon(tmp_path, config)
    try:
        deadline = time.monotonic() + 60
        while len(set(_messages(out))) < n:
            assert time.monotonic() < deadline and second.alive(), second.log()
            time.sleep(0.05)
        time.sleep(1.0)  # nothing more may come
        got = _messages(out)
    finally:
        second.stop()
    assert set(got) == set(lines)
    within_fingerprint = sum(1 for i in range(n) if (i + 1) * (len(lines[0]) + 1) < 255)
    duplicates = len(got) - n
    assert duplicates <= chunk + within_fingerprint, f"{duplicates} duplicates, {at_kill} delivered at the kill"


def _marked_end(path: Path) -> int:
    import msgpack

    try:
        return max((end for _tag, _ino, end, _fp in msgpack.unpackb(path.read_bytes())), default=0)
    except (OSError, ValueError):
        return 0


def _wait(probe: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
