"""End-to-end delivery through the buffer engine (OutputRunner) into the ES stand-in:
no loss and no duplicates across 429 storms, lost responses and a node restart;
mapping errors dead-lettered with their reason; a file buffer replayed after a stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.event import Event
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput
from tests.standins.elasticsearch import ESStandIn

T0 = 1_700_000_000_000_000_000
FAST_RETRY = {"retry_wait": 0.01, "retry_max_interval": 0.05, "retry_forever": True, "flush_interval": 0}


def batch(start: int, n: int) -> list[Event]:
    return [Event("app", T0 + i * 1000, {"seq": i, "message": f"request {i}"}) for i in range(start, start + n)]


async def run_through(es: ESStandIn, state_dir: str, total: int, disturb: Any = None,
                      **settings: Any) -> list[Ack]:
    """Put `total` events in batches of 100 through an OutputRunner, with `disturb(es)` running
    alongside; return the acks (all must complete)."""
    out = ElasticsearchOutput(hosts=[es.url], index="logs", request_timeout=2, **{**FAST_RETRY, **settings})
    runner = OutputRunner(out, state_dir=state_dir)
    await runner.start()
    acks: list[Ack] = []
    side = asyncio.create_task(disturb(es)) if disturb else None
    for start in range(0, total, 100):
        ack = Ack()
        await runner.put(batch(start, 100), ack)
        ack.release()
        acks.append(ack)
        await asyncio.sleep(0)
    await asyncio.wait_for(runner.flush(), 30)
    if side:
        await side
    await runner.stop(5)
    return acks


def seq_counts(es: ESStandIn) -> Counter[int]:
    return Counter(d["seq"] for d in es.docs("logs"))


@pytest.fixture
async def es() -> Any:
    server = ESStandIn("9.1.3")
    await server.start()
    yield server
    await server.stop()


async def test_429_storm_loses_nothing_and_duplicates_nothing(es: ESStandIn, state_dir: str) -> None:
    es.storm_rate = 0.3
    es.request_failures.extend([429, None, 503, 429, None, None, 429])
    acks = await run_through(es, state_dir, 2000, bulk_max_docs=150)
    counts = seq_counts(es)
    assert len(counts) == 2000 and set(counts.values()) == {1}
    assert es.count() == 2000
    assert es.stats.item_statuses[429] > 200  # the storm really happened
    assert all(a.done for a in acks)


async def test_restart_and_lost_responses_lose_nothing_and_duplicate_nothing(es: ESStandIn, state_dir: str) -> None:
    async def disturb(server: ESStandIn) -> None:
        await server.wait_for_count(600)
        server.reset_after = 3  # indexed, then the connection dies before the response
        await server.wait_for_count(1200)
        await server.restart(down_for=0.3)
        server.reset_before = 2

    await run_through(es, state_dir, 3000, disturb=disturb, bulk_max_docs=100)
    counts = seq_counts(es)
    assert len(counts) == 3000 and set(counts.values()) == {1}
    rewritten = sum(1 for v in es.versions.values() if v > 1)
    assert rewritten >= 100  # resends of already-indexed documents did happen, and were absorbed
    assert es.stats.resets >= 5


async def test_without_deterministic_ids_lost_responses_do_duplicate(es: ESStandIn, state_dir: str) -> None:
    """The contrast that shows the previous test can fail: server-assigned ids duplicate."""
    async def disturb(server: ESStandIn) -> None:
        await server.wait_for_count(300)
        server.reset_after = 2

    await run_through(es, state_dir, 1000, disturb=disturb, bulk_max_docs=100, deterministic_id=False)
    counts = seq_counts(es)
    assert len(counts) == 1000  # nothing lost …
    assert es.count() > 1000  # … but duplicated


async def test_mapping_errors_land_in_the_dead_letter_file_with_their_reason(
        es: ESStandIn, state_dir: str, tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.jsonl"
    out = ElasticsearchOutput(hosts=[es.url], index="logs", dead_letter_path=str(dlq), **FAST_RETRY)
    runner = OutputRunner(out, state_dir=state_dir)
    await runner.start()
    events = batch(0, 10)
    events[3].record["seq"] = "three"  # seq is mapped as long by the first document
    events[7].record["message"] = {"nested": True}  # message is text
    ack = Ack()
    await runner.put(events, ack)
    ack.release()
    await asyncio.wait_for(runner.flush(), 10)
    await runner.stop(5)
    lines = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    # Chunks hold bulk items: the dead letter is the document as sent, with its target in @metadata.
    assert [d["item"]["seq"] for d in lines] == ["three", 7]
    assert all(d["item"]["@metadata"]["_index"] == "logs" and d["item"]["@metadata"]["_docid"] for d in lines)
    assert lines[0]["item"]["@timestamp"] == "2023-11-14T22:13:20.000Z"
    assert lines[0]["reason"].startswith("400 document_parsing_exception: [1:2] failed to parse field [seq]")
    assert "START_OBJECT" in lines[1]["reason"]
    assert all(d["output"] == out.id for d in lines)
    assert es.count() == 8
    assert ack.done


async def test_file_buffer_replays_after_a_stop_while_es_was_down(es: ESStandIn, tmp_path: Path) -> None:
    """Chunks stored while the node is down survive a stop; a new process delivers them once."""
    settings = {"buffer": "file", "buffer_path": str(tmp_path / "buf"), **FAST_RETRY}
    await es.wait_for_count(0)
    first = ElasticsearchOutput(hosts=[es.url], index="logs", request_timeout=1, **settings)
    runner = OutputRunner(first, state_dir=str(tmp_path))
    await runner.start()
    await runner.put(batch(0, 200), Ack())  # delivered while the node is up
    await es.wait_for_count(200)
    port = es.port
    await es.stop()
    acks = []
    for start in (200, 300):
        ack = Ack()
        await runner.put(batch(start, 100), ack)
        ack.release()
        acks.append(ack)
    await asyncio.sleep(0.2)
    await runner.stop(0.5)
    assert all(a.done for a in acks)  # durably on disk counts as acknowledged
    es.port = port
    await es.start()
    second = ElasticsearchOutput(hosts=[es.url], index="logs", **settings)
    runner2 = OutputRunner(second, state_dir=str(tmp_path))
    await runner2.start()
    await asyncio.wait_for(runner2.flush(), 10)
    await runner2.stop(5)
    counts = seq_counts(es)
    assert len(counts) == 400 and set(counts.values()) == {1}
