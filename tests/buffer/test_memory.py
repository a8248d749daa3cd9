"""The buffer engine with the memory buffer: flushing, chunking, acks, retries, dead letters, overflow."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any, ClassVar

import pytest

from logpipe.ack import Ack
from logpipe.buffer import BufferOverflowError, OutputRunner
from logpipe.event import Event
from logpipe.plugin import Output, RetryableError, WriteResult


class Recorder(Output):
    """Records every write; `script` scripts the outcome of successive writes
    (None, a WriteResult, or an exception to raise); `gate` holds writes until set."""

    name = "recorder"

    def __init__(self, script: list[Any] | None = None, **settings: Any) -> None:
        super().__init__(**settings)
        self.script = list(script or [])
        self.writes: list[list[Event]] = []
        self.gate: asyncio.Event | None = None
        self.wrote = asyncio.Event()
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def write(self, events: list[Event]) -> WriteResult | None:
        if self.gate is not None:
            await self.gate.wait()
        self.writes.append(list(events))
        self.wrote.set()
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        return None

    def delivered(self) -> list[Any]:
        return [ev.record["n"] for batch in self.writes for ev in batch]


def events(start: int, count: int, tag: str = "t") -> list[Event]:
    return [Event(tag, 1_700_000_000_000_000_000 + i, {"n": i}) for i in range(start, start + count)]


class Sleeps:
    """Injectable backoff sleep: records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def make(tmp_path: Any, script: list[Any] | None = None, **settings: Any) -> tuple[OutputRunner, Recorder, Sleeps]:
    out = Recorder(script, **settings)
    sleeps = Sleeps()
    return OutputRunner(out, state_dir=str(tmp_path), sleep=sleeps), out, sleeps


async def test_flush_delivers_and_ack_completes_only_after_delivery(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600)
    await runner.start()
    assert out.started
    done: list[bool] = []
    ack = Ack(lambda: done.append(True))
    await runner.put(events(0, 10), ack)
    ack.release()  # the pipeline's own hold ends after routing
    await asyncio.sleep(0)
    assert not done and out.writes == []
    await runner.flush()
    assert out.delivered() == list(range(10))
    assert done == [True]
    stats = runner.stats()
    assert stats["delivered"] == 10 and stats["buffered_events"] == 0 and stats["chunks"] == 0
    await runner.stop(1)
    assert out.closed


async def test_flush_interval_flushes_without_being_asked(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval="50ms")
    await runner.start()
    await runner.put(events(0, 3), Ack())
    await asyncio.wait_for(out.wrote.wait(), 2)
    assert out.delivered() == [0, 1, 2]
    await runner.stop(1)


async def test_output_buffer_defaults_flush_at_once(tmp_path: Any) -> None:
    class Immediate(Recorder):
        buffer_defaults: ClassVar[dict[str, Any]] = {"flush_interval": 0}

    out = Immediate()
    runner = OutputRunner(out, state_dir=str(tmp_path))
    assert runner.config.flush_interval == 0
    await runner.start()
    await runner.put(events(0, 2), Ack())
    await asyncio.wait_for(out.wrote.wait(), 2)
    assert out.delivered() == [0, 1]
    await runner.stop(1)


async def test_chunks_are_keyed_by_tag_and_limited_in_records(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600, chunk_limit_records=4)
    await runner.start()
    batch = events(0, 6, "a") + events(6, 3, "b") + events(9, 2, "a")
    await runner.put(batch, Ack())
    await runner.flush()
    assert all(len({ev.tag for ev in w}) == 1 for w in out.writes)
    assert all(len(w) <= 4 for w in out.writes)
    assert sorted(out.delivered()) == list(range(11))
    a_order = [ev.record["n"] for w in out.writes for ev in w if ev.tag == "a"]
    assert a_order == [0, 1, 2, 3, 4, 5, 9, 10]
    await runner.stop(1)


async def test_chunk_keys_by_field(tmp_path: Any) -> None:
    pytest.importorskip("logpipe.fields")
    runner, out, _ = make(tmp_path, flush_interval=3600, chunk_keys=["host"])
    await runner.start()
    batch = [Event("t", 0, {"host": h, "n": i}) for i, h in enumerate("abab")]
    await runner.put(batch, Ack())
    await runner.flush()
    assert sorted(sorted(ev.record["n"] for ev in w) for w in out.writes) == [[0, 2], [1, 3]]
    await runner.stop(1)


async def test_exception_retries_whole_chunk_with_backoff(tmp_path: Any) -> None:
    script = [RetryableError("down"), ConnectionError("refused"), None]
    runner, out, sleeps = make(tmp_path, script, flush_interval=3600, retry_wait=1, retry_randomize=False)
    await runner.start()
    done: list[bool] = []
    ack = Ack(lambda: done.append(True))
    await runner.put(events(0, 5), ack)
    ack.release()
    await runner.flush()
    assert [len(w) for w in out.writes] == [5, 5, 5]
    assert sleeps.delays == [1.0, 2.0]
    stats = runner.stats()
    assert stats["delivered"] == 5 and stats["retries"] == 2 and stats["write_errors"] == 2
    assert done == [True]
    await runner.stop(1)


async def test_retry_items_are_retried_alone_and_failed_items_dead_lettered(tmp_path: Any) -> None:
    dlq = tmp_path / "dlq.jsonl"
    script = [WriteResult(retry=[1, 3], failed=[(2, "mapper_parsing_exception: bad field")]), None]
    runner, out, _ = make(tmp_path, script, flush_interval=3600, dead_letter_path=str(dlq), id="es1")
    await runner.start()
    done: list[bool] = []
    ack = Ack(lambda: done.append(True))
    await runner.put(events(0, 5), ack)
    ack.release()
    await runner.flush()
    assert [ev.record["n"] for ev in out.writes[1]] == [1, 3]
    lines = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"]["record"] == {"n": 2} and lines[0]["event"]["tag"] == "t"
    assert lines[0]["output"] == "es1" and "mapper_parsing_exception" in lines[0]["reason"]
    assert set(lines[0]) == {"event", "output", "reason", "time"}
    stats = runner.stats()
    assert stats["delivered"] == 4 and stats["dead_lettered"] == 1 and stats["retried"] == 2
    assert done == [True]
    await runner.stop(1)


async def test_gives_up_after_retry_max_times_into_dead_letter(tmp_path: Any) -> None:
    dlq = tmp_path / "dlq.jsonl"
    script = [RetryableError("503")] * 10
    runner, out, _ = make(tmp_path, script, flush_interval=3600, retry_max_times=2,
                               dead_letter_path=str(dlq))
    await runner.start()
    done: list[bool] = []
    ack = Ack(lambda: done.append(True))
    await runner.put(events(0, 3), ack)
    ack.release()
    await runner.flush()
    assert len(out.writes) == 3  # first attempt + 2 retries
    lines = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert [rec["event"]["record"]["n"] for rec in lines] == [0, 1, 2]
    assert "gave up after 3 attempt(s)" in lines[0]["reason"] and "503" in lines[0]["reason"]
    assert done == [True]
    assert runner.stats()["dead_lettered"] == 3
    await runner.stop(1)


async def test_failed_items_without_route_are_logged_not_silent(tmp_path: Any, caplog: Any) -> None:
    runner, _, _ = make(tmp_path, [WriteResult(failed=[(0, "rejected")])], flush_interval=3600)
    await runner.start()
    with caplog.at_level(logging.ERROR, logger="logpipe.buffer"):
        await runner.put(events(0, 2), Ack())
        await runner.flush()
    assert "1 event(s) failed for good" in caplog.text and "rejected" in caplog.text
    await runner.stop(1)


async def test_secondary_output_takes_failed_events(tmp_path: Any) -> None:
    made: list[Recorder] = []

    def factory(settings: dict[str, Any]) -> Output:
        assert settings["@type"] == "recorder"
        made.append(Recorder())
        return made[0]

    out = Recorder([WriteResult(failed=[(1, "nope")])], flush_interval=3600,
                   secondary={"@type": "recorder"})
    runner = OutputRunner(out, state_dir=str(tmp_path), output_factory=factory)
    await runner.start()
    await runner.put(events(0, 3), Ack())
    await runner.flush()
    assert made[0].started and made[0].delivered() == [1]
    await runner.stop(1)
    assert made[0].closed


async def test_block_overflow_waits_and_memory_stays_bounded(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=0, total_limit_size=4000, chunk_limit_size=1000)
    out.gate = asyncio.Event()  # output down
    await runner.start()
    acked: list[int] = []
    peak = 0

    async def produce() -> None:
        nonlocal peak
        for i in range(40):
            ack = Ack(functools.partial(acked.append, i))
            await runner.put(events(i * 10, 10), ack)
            ack.release()
            peak = max(peak, runner.stats()["buffered_bytes"])

    producer = asyncio.create_task(produce())
    for _ in range(50):
        await asyncio.sleep(0)
    assert not producer.done()
    assert runner.stats()["buffered_bytes"] <= 4000
    assert acked == []
    out.gate.set()
    await asyncio.wait_for(producer, 5)
    await runner.flush()
    assert peak <= 4000 + 1000
    assert sorted(out.delivered()) == list(range(400))
    assert sorted(acked) == list(range(40))
    await runner.stop(1)


async def test_drop_oldest_chunk_drops_counts_and_completes_acks(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600, total_limit_size=2500, chunk_limit_records=10,
                          overflow_action="drop_oldest_chunk")
    await runner.start()
    acked: list[int] = []
    for i in range(30):
        ack = Ack(functools.partial(acked.append, i))
        await runner.put(events(i * 10, 10), ack)
        ack.release()
    stats = runner.stats()
    assert stats["dropped"] > 0 and stats["dropped"] % 10 == 0
    assert stats["buffered_bytes"] <= 2500
    dropped_batches = stats["dropped"] // 10
    assert sorted(acked) == list(range(dropped_batches))  # the oldest ones
    await runner.flush()
    assert sorted(out.delivered()) == list(range(dropped_batches * 10, 300))
    assert sorted(acked) == list(range(30))
    await runner.stop(1)


async def test_throw_exception_refuses_without_holding_the_ack(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600, total_limit_size=500, overflow_action="throw")
    await runner.start()
    await runner.put(events(0, 20), Ack())
    ack = Ack()
    with pytest.raises(BufferOverflowError):
        await runner.put(events(20, 20), ack)
    assert ack.pending == 1
    assert runner.stats()["dropped"] == 20
    await runner.flush()
    assert out.delivered() == list(range(20))
    await runner.stop(1)


async def test_stop_flushes_memory_buffer(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600)
    await runner.start()
    await runner.put(events(0, 7), Ack())
    await runner.stop(2)
    assert out.delivered() == list(range(7)) and out.closed


async def test_stop_deadline_logs_undelivered_and_leaves_acks_pending(tmp_path: Any, caplog: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600)
    out.gate = asyncio.Event()  # never opens
    await runner.start()
    ack = Ack()
    await runner.put(events(0, 7), ack)
    ack.release()
    with caplog.at_level(logging.WARNING, logger="logpipe.buffer"):
        await runner.stop(0.05)
    assert "7 event(s) were not delivered" in caplog.text
    assert not ack.done and out.closed
    with pytest.raises(RuntimeError):
        await runner.put(events(0, 1), Ack())


async def test_flush_cuts_a_backoff_wait_short(tmp_path: Any) -> None:
    out = Recorder([RetryableError("down"), None], flush_interval=3600, retry_wait=3600)
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    await runner.put(events(0, 2), Ack())
    flush = asyncio.create_task(runner.flush())
    while len(out.writes) < 1:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    assert not flush.done()  # waiting an hour for the retry
    await asyncio.wait_for(runner.flush(), 2)  # a second flush (SIGUSR1) retries now
    assert flush.done() and len(out.writes) == 2
    await runner.stop(1)


async def test_flush_thread_count_writes_chunks_concurrently(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600, flush_thread_count=3, chunk_limit_records=5)
    out.gate = asyncio.Event()
    in_write = 0
    peak = 0
    original = out.write

    async def counting(events: list[Event]) -> WriteResult | None:
        nonlocal in_write, peak
        in_write += 1
        peak = max(peak, in_write)
        try:
            return await original(events)
        finally:
            in_write -= 1

    out.write = counting  # type: ignore[method-assign]
    await runner.start()
    await runner.put(events(0, 20), Ack())
    flush = asyncio.create_task(runner.flush())
    while in_write < 3:
        await asyncio.sleep(0.001)
    assert runner.stats()["inflight_chunks"] == 3 and runner.stats()["queued_chunks"] == 1
    out.gate.set()
    await asyncio.wait_for(flush, 2)
    assert peak == 3 and sorted(out.delivered()) == list(range(20))
    await runner.stop(1)


async def test_a_timed_out_flush_does_not_break_another_flush(tmp_path: Any) -> None:
    runner, out, _ = make(tmp_path, flush_interval=3600)
    out.gate = asyncio.Event()
    await runner.start()
    await runner.put(events(0, 3), Ack())
    patient = asyncio.create_task(runner.flush())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(runner.flush(), 0.02)
    out.gate.set()
    await asyncio.wait_for(patient, 2)
    assert out.delivered() == [0, 1, 2]
    await runner.stop(1)
