"""The format/write split (logpipe/plugin.py, Output): buffers hold formatted items,
replays never format again, one event that cannot be formatted costs only itself, and
a data error in write dead-letters instead of retrying forever."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.buffer.memory import ITEM_OVERHEAD
from logpipe.event import Event
from logpipe.plugin import Output, WriteResult


class JsonItems(Output):
    """Formats each event to a JSON line and records formats and writes."""

    name = "jsonitems"
    buffer_defaults = {"flush_interval": 0.0}

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.formatted = 0
        self.writes: list[list[bytes]] = []
        self.raise_in_write: BaseException | None = None
        self.wrote = asyncio.Event()

    def format(self, events: list[Event]) -> list[bytes]:
        self.formatted += len(events)
        return [orjson.dumps(ev.record) + b"\n" for ev in events]

    async def write(self, items: list[bytes]) -> WriteResult | None:
        self.writes.append(list(items))
        self.wrote.set()
        if self.raise_in_write is not None:
            raise self.raise_in_write
        return None


def _events(n: int) -> list[Event]:
    return [Event("t", 1_700_000_000_000_000_000, {"n": i}) for i in range(n)]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"d": value}
    return value


def _dlq(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_write_gets_the_formatted_items_in_order(tmp_path: Path) -> None:
    out = JsonItems()
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    ack = Ack()
    await runner.put(_events(5), ack)
    ack.release()
    await runner.flush()
    await runner.stop(1)
    assert [orjson.loads(item)["n"] for batch in out.writes for item in batch] == [0, 1, 2, 3, 4]
    assert ack.done


async def test_memory_buffer_counts_the_real_bytes_of_the_items(tmp_path: Path) -> None:
    out = JsonItems(flush_interval=60)
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    await runner.put(_events(10), Ack())
    expected = sum(len(orjson.dumps({"n": i}) + b"\n") + ITEM_OVERHEAD for i in range(10))
    assert runner.stats()["buffered_bytes"] == expected
    await runner.stop(1)


async def test_one_unformattable_event_is_dead_lettered_alone(tmp_path: Path) -> None:
    """orjson refuses a record nested 300 levels: that event goes to the DLQ with the reason,
    its neighbours are delivered."""
    dlq = tmp_path / "dlq.jsonl"
    out = JsonItems(dead_letter_path=str(dlq))
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    batch = _events(3)
    batch[1].record["deep"] = _nested(300)
    ack = Ack()
    await runner.put(batch, ack)
    ack.release()
    await runner.flush()
    await runner.stop(1)
    assert [orjson.loads(item)["n"] for w in out.writes for item in w] == [0, 2]
    (line,) = _dlq(dlq)
    assert line["event"]["record"]["n"] == 1
    assert "format failed" in line["reason"] and "Recursion limit" in line["reason"]
    assert runner.counts["dead_lettered"] == 1 and runner.counts["delivered"] == 2
    assert ack.done


async def test_data_error_in_write_is_dead_lettered_not_retried(tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.jsonl"
    out = JsonItems(dead_letter_path=str(dlq), retry_forever=True, retry_wait=0.01)
    out.raise_in_write = TypeError("cannot handle this")
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    ack = Ack()
    await runner.put(_events(2), ack)
    ack.release()
    await asyncio.wait_for(runner.flush(), 5)
    await runner.stop(1)
    assert len(out.writes) == 1  # tried once
    lines = _dlq(dlq)
    assert [line["item"] for line in lines] == [{"n": 0}, {"n": 1}]  # the item, decoded
    assert all("TypeError" in line["reason"] and line["tag"] == "t" for line in lines)


async def test_io_error_in_write_is_retried(tmp_path: Path) -> None:
    out = JsonItems(retry_wait=0.01)
    out.raise_in_write = ConnectionRefusedError("down")
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    await runner.put(_events(1), Ack())
    for _ in range(2):
        out.wrote.clear()
        await asyncio.wait_for(out.wrote.wait(), 5)
    out.raise_in_write = None
    await asyncio.wait_for(runner.flush(), 5)
    await runner.stop(1)
    assert len(out.writes) >= 3 and runner.counts["delivered"] == 1


class LibraryDown(Exception):
    """A client library's transport error that is not an OSError (as PyMongoError, redis')."""


class LibraryOutput(JsonItems):
    name = "libraryitems"
    retryable_errors = (LibraryDown,)


async def test_only_io_errors_and_declared_library_errors_are_retried(tmp_path: Path) -> None:
    """A RuntimeError (a bug, not the destination) is dead-lettered at the first attempt;
    an exception the output declares in `retryable_errors` is retried like an OSError."""
    dlq = tmp_path / "dlq.jsonl"
    out = JsonItems(dead_letter_path=str(dlq), retry_forever=True, retry_wait=0.01)
    out.raise_in_write = RuntimeError("a bug in the output")
    runner = OutputRunner(out, state_dir=str(tmp_path))
    await runner.start()
    ack = Ack()
    await runner.put(_events(2), ack)
    ack.release()
    await asyncio.wait_for(runner.flush(), 5)
    await runner.stop(1)
    assert len(out.writes) == 1 and runner.counts["retries"] == 0
    assert [("RuntimeError" in line["reason"], line["item"]) for line in _dlq(dlq)] == [(True, {"n": 0}),
                                                                                         (True, {"n": 1})]

    library = LibraryOutput(dead_letter_path=str(tmp_path / "dlq2.jsonl"), retry_wait=0.01)
    library.raise_in_write = LibraryDown("server selection timed out")
    runner = OutputRunner(library, state_dir=str(tmp_path / "2"))
    await runner.start()
    await runner.put(_events(1), Ack())
    for _ in range(2):
        library.wrote.clear()
        await asyncio.wait_for(library.wrote.wait(), 5)
    library.raise_in_write = None
    await asyncio.wait_for(runner.flush(), 5)
    await runner.stop(1)
    assert runner.counts["delivered"] == 1 and runner.counts["retries"] >= 2
    assert not (tmp_path / "dlq2.jsonl").exists()


async def test_file_buffer_replay_sends_the_stored_items_without_formatting(tmp_path: Path) -> None:
    first = JsonItems(buffer="file", flush_interval=60, flush_at_shutdown=False)
    runner = OutputRunner(first, state_dir=str(tmp_path))
    await runner.start()
    ack = Ack()
    await runner.put(_events(4), ack)
    ack.release()
    while not ack.done:  # durable: fsynced
        await asyncio.sleep(0.01)
    await runner.stop(0)
    assert first.writes == []

    second = JsonItems(buffer="file")
    replay = OutputRunner(second, state_dir=str(tmp_path))
    await replay.start()
    await asyncio.wait_for(replay.flush(), 5)
    await replay.stop(1)
    assert second.formatted == 0
    assert [orjson.loads(item)["n"] for w in second.writes for item in w] == [0, 1, 2, 3]


async def test_event_chunks_of_an_older_buffer_are_formatted_once_on_replay(tmp_path: Path) -> None:
    """Chunks stored as events (an output that wanted events, or a buffer written before
    outputs formatted) are formatted when loaded."""

    class EventsOut(Output):
        name = "eventsout"

        async def write(self, items: Any) -> WriteResult | None:
            raise ConnectionError("down")

    older = EventsOut(id="o", buffer="file", flush_interval=60, flush_at_shutdown=False)
    runner = OutputRunner(older, state_dir=str(tmp_path))
    await runner.start()
    ack = Ack()
    await runner.put(_events(2), ack)
    ack.release()
    while not ack.done:
        await asyncio.sleep(0.01)
    await runner.stop(0)

    newer = JsonItems(id="o", buffer="file")
    replay = OutputRunner(newer, state_dir=str(tmp_path))
    await replay.start()
    await asyncio.wait_for(replay.flush(), 5)
    await replay.stop(1)
    assert newer.formatted == 2
    assert [orjson.loads(item)["n"] for w in newer.writes for item in w] == [0, 1]
