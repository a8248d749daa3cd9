"""The file buffer: acknowledgement on durable write, replay, quarantine, kill -9."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.buffer.file import MAGIC, FileStore, encode_events, scan_chunk
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import Output, WriteResult


class Recorder(Output):
    name = "recorder"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.writes: list[list[Event]] = []
        self.gate: asyncio.Event | None = None

    async def write(self, events: list[Event]) -> WriteResult | None:
        if self.gate is not None:
            await self.gate.wait()
        self.writes.append(list(events))
        return None

    def delivered(self) -> list[Any]:
        return [ev.record["n"] for batch in self.writes for ev in batch]


def events(start: int, count: int, tag: str = "t") -> list[Event]:
    return [Event(tag, 1_700_000_000_000_000_000 + i, {"n": i, "msg": "x" * 20}, {"m": i})
            for i in range(start, start + count)]


def chunk_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.name.endswith(".chunk"))


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


def file_runner(tmp_path: Path, gate: bool = False, **settings: Any) -> tuple[OutputRunner, Recorder]:
    out = Recorder(buffer="file", buffer_path=str(tmp_path / "buf"), **settings)
    if gate:
        out.gate = asyncio.Event()
    return OutputRunner(out, state_dir=str(tmp_path)), out


async def test_ack_completes_on_fsync_not_delivery(tmp_path: Path) -> None:
    runner, out = file_runner(tmp_path, gate=True, flush_interval=3600)
    await runner.start()
    done = asyncio.Event()
    ack = Ack(done.set)
    await runner.put(events(0, 50), ack)
    ack.release()
    assert not ack.done  # held until the fsync task has run
    await asyncio.wait_for(done.wait(), 5)
    assert out.writes == []  # acknowledged while the output is down: it is on disk
    [path] = chunk_files(tmp_path / "buf")
    scan = scan_chunk(path.read_bytes())
    assert scan.error is None and scan.records == 50 and scan.key == ("t",)
    await runner.stop(0.1)


async def test_fsync_never_acks_at_once(tmp_path: Path) -> None:
    runner, _ = file_runner(tmp_path, gate=True, flush_interval=3600, buffer_fsync="never")
    await runner.start()
    ack = Ack()
    await runner.put(events(0, 5), ack)
    ack.release()
    assert ack.done
    await runner.stop(0.1)


async def test_delivered_chunks_are_deleted_and_event_content_survives(tmp_path: Path) -> None:
    runner, out = file_runner(tmp_path, flush_interval=3600)
    await runner.start()
    sent = events(0, 30)
    await runner.put(sent, Ack())
    await runner.flush()
    assert [ev for batch in out.writes for ev in batch] == sent  # tag, time, record, meta round-trip
    assert chunk_files(tmp_path / "buf") == []
    await runner.stop(1)
    again, out2 = file_runner(tmp_path)
    await again.start()
    assert again.stats()["buffered_events"] == 0
    await again.stop(1)
    assert out2.writes == []


async def test_undelivered_chunks_are_replayed_once_after_restart(tmp_path: Path) -> None:
    runner, out = file_runner(tmp_path, gate=True, flush_interval=3600, chunk_limit_records=40)
    await runner.start()
    for i in range(5):
        await runner.put(events(i * 20, 20), Ack())
    await runner.stop(0.1)  # flush_at_shutdown is false for the file buffer
    assert out.writes == []
    assert len(chunk_files(tmp_path / "buf")) == 3
    second, out2 = file_runner(tmp_path, flush_interval=3600)
    await second.start()
    assert second.stats()["buffered_events"] == 100
    await second.flush()
    await second.stop(1)
    assert sorted(out2.delivered()) == list(range(100))
    third, out3 = file_runner(tmp_path)
    await third.start()
    await third.flush()
    await third.stop(1)
    assert out3.writes == []


async def test_flush_at_shutdown_can_be_enabled_for_file(tmp_path: Path) -> None:
    runner, out = file_runner(tmp_path, flush_interval=3600, flush_at_shutdown=True)
    await runner.start()
    await runner.put(events(0, 10), Ack())
    await runner.stop(2)
    assert out.delivered() == list(range(10))
    assert chunk_files(tmp_path / "buf") == []


async def test_damaged_chunks_are_quarantined_and_valid_frames_salvaged(tmp_path: Path, caplog: Any) -> None:
    runner, _ = file_runner(tmp_path, gate=True, flush_interval=3600)
    await runner.start()
    for i in range(3):
        await runner.put(events(i * 10, 10), Ack())
    await runner.stop(0.1)
    buf = tmp_path / "buf"
    [good] = chunk_files(buf)
    data = good.read_bytes()
    good.write_bytes(data[:-7])  # a torn last frame
    (buf / "q000000000090.chunk").write_bytes(b"garbage, not a chunk")
    (buf / "q000000000091.chunk").write_bytes(MAGIC + b"\x00\x00\x00\x05\xde\xad\xbe\xef\x00\x00\x00\x00hello")
    with caplog.at_level(logging.ERROR, logger="logpipe.buffer"):
        second, out = file_runner(tmp_path, flush_interval=3600)
        await second.start()
        await second.flush()
        await second.stop(1)
    assert sorted(out.delivered()) == list(range(20))  # the two intact frames
    assert second.stats()["quarantined_chunks"] == 3
    reasons = sorted(p.read_text() for p in (buf / "quarantine").glob("*.reason"))
    assert any("truncated frame" in r and "salvaged events: 20" in r for r in reasons)
    assert any("bad magic" in r for r in reasons)
    assert any("CRC mismatch" in r for r in reasons)
    assert "damaged" in caplog.text
    assert chunk_files(buf) == []


async def test_buffer_directory_cannot_be_shared(tmp_path: Path) -> None:
    first, _ = file_runner(tmp_path)
    await first.start()
    second, _ = file_runner(tmp_path)
    with pytest.raises(ConfigError, match="in use"):
        await second.start()
    await first.stop(1)


async def test_default_directory_is_under_state_dir_per_output_id(tmp_path: Path) -> None:
    out = Recorder(buffer={"@type": "file"}, id="es/main")
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    await runner.put(events(0, 3), Ack())
    await runner.stop(0.5)
    assert chunk_files(tmp_path / "buffer" / "es_main")


async def test_block_keeps_disk_use_bounded_while_output_is_down(tmp_path: Path) -> None:
    runner, out = file_runner(tmp_path, gate=True, flush_interval=0, total_limit_size=6000,
                              chunk_limit_size=2000)
    await runner.start()

    async def produce() -> None:
        for i in range(50):
            await runner.put(events(i * 10, 10), Ack())
            assert runner.stats()["buffered_bytes"] <= 6000 + 2000

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.05)
    assert not producer.done()
    assert out.gate is not None
    out.gate.set()
    await asyncio.wait_for(producer, 5)
    await runner.flush()
    assert sorted(out.delivered()) == list(range(500))
    await runner.stop(1)


def test_unencodable_values_are_carried_as_text() -> None:
    ev = Event("t", 1, {"big": 1 << 70, "obj": object(), "ok": [1, "a"]})
    store_payload = encode_events([ev])
    assert store_payload  # no exception: huge ints and objects became strings


async def test_store_reports_what_it_replays(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "s"))
    assert await store.open() == []
    chunk = store.new_chunk(("t",))
    payload, size = store.encode(events(0, 4))
    store.append(chunk, events(0, 4), payload, size, Ack())
    chunk.records += 4
    await store.close()
    again = FileStore(str(tmp_path / "s"))
    [replayed] = await again.open()
    assert replayed.records == 4 and replayed.key == ("t",)
    assert [e.record["n"] for e in await again.load(replayed)] == [0, 1, 2, 3]
    await again.close()


# ---- kill -9 -----------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import asyncio, functools, os, sys
    from logpipe.ack import Ack
    from logpipe.buffer import OutputRunner
    from logpipe.event import Event
    from logpipe.plugin import Output

    state, out_path, acked_path, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    BATCHES, SIZE = 50, 100

    class FileRecorder(Output):
        name = "filerec"

        async def write(self, events):
            await asyncio.sleep(delay)
            with open(out_path, "a") as f:
                f.write("".join(f"{e.record['n']}\\n" for e in events))
                f.flush()
                os.fsync(f.fileno())

    async def main():
        out = FileRecorder(buffer="file", flush_interval="20ms", chunk_limit_records=200)
        runner = OutputRunner(out, state_dir=state)
        await runner.start()
        committed = set()
        if os.path.exists(acked_path):
            committed = {int(x) for x in open(acked_path).read().split()}
        acked = open(acked_path, "a")

        def commit(batch):
            acked.write(f"{batch}\\n")
            acked.flush()

        resent = 0
        for b in range(BATCHES):
            if b in committed:
                continue
            resent += 1
            ack = Ack(functools.partial(commit, b))
            await runner.put([Event("t", 0, {"n": b * SIZE + i}) for i in range(SIZE)], ack)
            ack.release()
            await asyncio.sleep(0)
        print("RESENT", resent, flush=True)
        await runner.flush()
        await runner.stop(5)
        print("DONE", flush=True)

    asyncio.run(main())
""")


def test_kill_9_then_replay_loses_nothing(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    state, out_path, acked_path = tmp_path / "state", tmp_path / "out.txt", tmp_path / "acked.txt"
    args = [sys.executable, str(script), str(state), str(out_path), str(acked_path)]
    child = subprocess.Popen([*args, "0.05"], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    try:
        while True:  # kill once the input has committed everything and the output is mid-way
            assert child.poll() is None, "child finished before it could be killed"
            assert time.monotonic() < deadline, "child made no progress"
            acked = acked_path.read_text().split() if acked_path.exists() else []
            written = out_path.read_text().split() if out_path.exists() else []
            if len(acked) >= 40 and len(written) >= 400:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    written_before = len(out_path.read_text().split())
    assert written_before < 5000, "everything was delivered before the kill; the test proves nothing"
    assert list((state / "buffer" / "filerec").glob("*.chunk")), "nothing left in the buffer at the kill"
    result = subprocess.run([*args, "0"], check=False, capture_output=True, text=True, timeout=60)
    assert "DONE" in result.stdout, result.stderr
    resent = int(result.stdout.split("RESENT")[1].split()[0])
    lines = [int(x) for x in out_path.read_text().split()]
    assert set(lines) == set(range(5000))  # nothing lost
    duplicates = len(lines) - 5000
    assert duplicates <= 200 + resent * 100  # at most the chunk being written + batches never acknowledged
    assert not list((state / "buffer" / "filerec").glob("*.chunk"))  # nothing left to replay twice
    assert not (state / "buffer" / "filerec" / "quarantine").exists()


async def test_acks_of_a_file_buffered_put_complete_in_order(tmp_path: Path) -> None:
    runner, _ = file_runner(tmp_path, gate=True, flush_interval=3600)
    await runner.start()
    order: list[int] = []
    for i in range(20):
        ack = Ack(functools.partial(order.append, i))
        await runner.put(events(i, 1), ack)
        ack.release()
    await wait_for(lambda: len(order) == 20)
    assert order == list(range(20))
    await runner.stop(0.1)


async def test_failed_disk_write_is_rolled_back_and_retried(tmp_path: Path, monkeypatch: Any) -> None:
    import logpipe.buffer.file as file_mod

    real = file_mod._write_all
    failures = [True]

    def flaky(fd: int, data: bytes) -> None:
        if failures and len(data) > 100:
            failures.pop()
            os.write(fd, data[: len(data) // 2])  # a torn write, then the disk is full
            raise OSError(28, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(file_mod, "_write_all", flaky)
    runner, out = file_runner(tmp_path, gate=True, flush_interval=3600, retry_wait=0.01)
    await runner.start()
    await runner.put(events(0, 10), Ack())
    await runner.put(events(10, 10), Ack())
    assert not failures
    [path] = chunk_files(tmp_path / "buf")
    scan = scan_chunk(path.read_bytes())
    assert scan.error is None and scan.records == 20
    assert out.gate is not None
    out.gate.set()
    await runner.flush()
    assert out.delivered() == list(range(20))
    await runner.stop(1)


async def test_fsync_interval_releases_acks_after_the_period(tmp_path: Path) -> None:
    runner, _ = file_runner(tmp_path, gate=True, flush_interval=3600, buffer_fsync="interval",
                            buffer_fsync_interval="100ms")
    await runner.start()
    done = asyncio.Event()
    ack = Ack(done.set)
    started = time.monotonic()
    await runner.put(events(0, 5), ack)
    ack.release()
    await asyncio.wait_for(done.wait(), 5)
    assert time.monotonic() - started >= 0.09
    await runner.stop(0.1)


async def test_drop_oldest_chunk_deletes_its_file(tmp_path: Path) -> None:
    runner, _ = file_runner(tmp_path, gate=True, flush_interval=3600, chunk_limit_records=10,
                            total_limit_size=3000, overflow_action="drop_oldest_chunk")
    await runner.start()
    for i in range(20):
        await runner.put(events(i * 10, 10), Ack())
    stats = runner.stats()
    assert stats["dropped"] > 0
    on_disk = sum(p.stat().st_size for p in chunk_files(tmp_path / "buf"))
    assert on_disk <= 3000 + 1000
    assert len(chunk_files(tmp_path / "buf")) == stats["chunks"]
    await runner.stop(0.1)


async def test_time_chunk_key_separates_time_slots(tmp_path: Path) -> None:
    runner, out = file_runner(tmp_path, flush_interval=3600, chunk_keys=["time"], timekey="1h")
    await runner.start()
    hour = 3600 * 10**9
    batch = [Event("t", h * hour + 5, {"n": i}) for i, h in enumerate([0, 1, 0, 2, 1])]
    await runner.put(batch, Ack())
    await runner.flush()
    assert sorted(sorted(ev.record["n"] for ev in w) for w in out.writes) == [[0, 2], [1, 4], [3]]
    await runner.stop(1)


async def test_opening_the_buffer_does_no_file_io_on_the_event_loop(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Locking the directory and replaying it may block on a slow disk: none of it runs on
    the loop's thread (every path under the buffer directory is opened elsewhere)."""
    import threading

    directory = tmp_path / "buf"
    first = FileStore(str(directory))
    await first.open()
    chunk = first.new_chunk(("t",))
    payload, size = first.encode([Event("t", 1, {"n": 1})])
    first.append(chunk, [Event("t", 1, {"n": 1})], payload, size, Ack())
    await first.close()

    loop_thread = threading.get_ident()
    opened_on_loop: list[str] = []
    real_open = os.open

    def watching_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if threading.get_ident() == loop_thread and str(path).startswith(str(directory)):
            opened_on_loop.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", watching_open)
    store = FileStore(str(directory))
    replayed = await store.open()
    monkeypatch.setattr(os, "open", real_open)
    await store.close()
    assert [c.records for c in replayed] == [1]
    assert opened_on_loop == []
