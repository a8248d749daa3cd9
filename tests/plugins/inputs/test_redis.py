"""The redis input against a real redis-server: reliable lists (processing list, commit on
ack, recovery after a crash), pub/sub, and stream consumer groups (XACK on ack, a dead
consumer's entries taken over by XAUTOCLAIM, every event delivered once)."""

from __future__ import annotations

import asyncio

import msgpack
import orjson

from logpipe.testing import InputDriver
from logpipe_plugins.inputs.redis import RedisInput
from tests.support.redis_server import RedisServer

T0_ISO = "2023-11-14T22:13:20.123Z"
T0 = 1_700_000_000_123_000_000


def payloads(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"@timestamp": T0_ISO, "seq": i}) for i in range(start, start + n)]


def seqs(driver: InputDriver) -> list[int]:
    return [ev.record["seq"] for ev in driver.events]


async def until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll Redis-side state (acks are committed by a background task) until it holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def held(r, consumer: str = "c1") -> int:  # type: ignore[no-untyped-def]
    """Items a reliable list consumer holds unacknowledged: single ones BLMOVE moved, plus
    the items packed in its batch elements."""
    packed = r.lrange(f"q:processing:{consumer}:batches", 0, -1)
    return int(r.llen(f"q:processing:{consumer}")) + sum(len(msgpack.unpackb(p, raw=True)) for p in packed)


async def test_reliable_list_commits_only_on_ack(redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.rpush("q", *payloads(10))
    plugin = RedisInput(port=redis_server.port, key="q", data_type="list", batch_count=4, consumer="c1")
    async with InputDriver(plugin, auto_ack=False) as driver:
        await driver.wait_for(10)
        assert sorted(seqs(driver)) == list(range(10))
        assert driver.events[0].time == T0 and "@timestamp" not in driver.events[0].record
        assert r.llen("q") == 0 and held(r) == 10  # taken, not yet acknowledged
        assert r.llen("q:processing:c1:batches") == len(driver.batches)  # one element per batch
        driver.batches[0].ack()
        await until(lambda: held(r) == 10 - len(driver.batches[0].events))
        for batch in driver.batches[1:]:
            batch.ack()
        await until(lambda: held(r) == 0 and r.llen("q:processing:c1:batches") == 0)


async def test_reliable_list_recovers_the_processing_list_after_a_crash(redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.rpush("q", *payloads(6))
    first = RedisInput(port=redis_server.port, key="q", data_type="list", batch_count=3, consumer="c1")
    async with InputDriver(first, auto_ack=False) as driver:
        await driver.wait_for(6)
        driver.batches[0].ack()
        await until(lambda: held(r) == 3)
    # the "crash": the second batch was never acknowledged; new items arrived meanwhile
    r.rpush("q", *payloads(2, start=6))
    again = RedisInput(port=redis_server.port, key="q", data_type="list", batch_count=3, consumer="c1")
    async with InputDriver(again) as driver:
        await driver.wait_for(5)
        assert seqs(driver)[:3] == [3, 4, 5]  # the unacknowledged batch comes back first
        assert sorted(seqs(driver)) == [3, 4, 5, 6, 7]
        await until(lambda: held(r) == 0)


async def test_reliable_list_recovers_an_item_blmove_had_moved(redis_server: RedisServer) -> None:
    """A crash between BLMOVE (one item into the processing list) and the script that packs
    it into a batch leaves it there: it is emitted again at start, then committed."""
    r = redis_server.client()
    r.rpush("q:processing:c1", *payloads(1))
    r.rpush("q", *payloads(2, start=1))
    plugin = RedisInput(port=redis_server.port, key="q", data_type="list", batch_count=5, consumer="c1")
    async with InputDriver(plugin) as driver:
        await driver.wait_for(3)
        assert seqs(driver) == [0, 1, 2]
        await until(lambda: held(r) == 0)


async def test_reliable_list_blocked_consumer_wakes_with_a_whole_batch(redis_server: RedisServer) -> None:
    r = redis_server.client()
    plugin = RedisInput(port=redis_server.port, key="q", data_type="list", batch_count=50, consumer="c1",
                        timeout=1)
    async with InputDriver(plugin, auto_ack=False) as driver:
        await asyncio.sleep(0.3)  # blocked in BLMOVE on the empty list
        r.rpush("q", *payloads(20))
        await driver.wait_for(20)
        assert seqs(driver) == list(range(20))
        assert r.llen("q:processing:c1") == 0  # the woken-up item went into the batch
        assert held(r) == 20
        for batch in driver.batches:
            batch.ack()
        await until(lambda: held(r) == 0)


async def test_unreliable_list_pops_in_batches(redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.rpush("q", *payloads(300))
    plugin = RedisInput(port=redis_server.port, key="q", data_type="list", reliable=False, batch_count=125)
    async with InputDriver(plugin) as driver:
        await driver.wait_for(300)
        assert seqs(driver) == list(range(300))
        assert [len(b.events) for b in driver.batches] == [125, 125, 50]
        assert r.keys("q:processing:*") == []


async def test_malformed_payload_costs_only_itself(redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.rpush("q", b"{not json", *payloads(1))
    plugin = RedisInput(port=redis_server.port, key="q", data_type="list")
    async with InputDriver(plugin) as driver:
        events = await driver.wait_for(2)
    assert events[0].record["message"] == "{not json" and "_jsonparsefailure" in events[0].record["tags"]
    assert events[1].record["seq"] == 0


async def test_channel_and_pattern_channel(redis_server: RedisServer) -> None:
    r = redis_server.client()
    exact = RedisInput(port=redis_server.port, key="logs.app", data_type="channel")
    pattern = RedisInput(port=redis_server.port, key="logs.*", data_type="pattern_channel")
    async with InputDriver(exact) as one, InputDriver(pattern) as many:
        await until(lambda: r.pubsub_numsub("logs.app")[0][1] == 1 and r.pubsub_numpat() == 1)
        r.publish("logs.app", payloads(1)[0])
        r.publish("logs.db", payloads(1, start=1)[0])
        await many.wait_for(2)
        await one.wait_for(1)
        assert seqs(one) == [0] and sorted(seqs(many)) == [0, 1]
        assert one.batches[0].on_ack is None  # at-most-once: nothing to commit


async def test_stream_group_acks_only_after_the_ack_contract(redis_server: RedisServer) -> None:
    r = redis_server.client()
    for p in payloads(5):
        r.xadd("s", {"event": p})
    plugin = RedisInput(port=redis_server.port, key="s", data_type="stream", group="idx", consumer="a")
    async with InputDriver(plugin, auto_ack=False) as driver:
        await driver.wait_for(5)
        assert seqs(driver) == [0, 1, 2, 3, 4]
        assert r.xpending("s", "idx")["pending"] == 5
        for batch in driver.batches:
            batch.ack()
        await until(lambda: r.xpending("s", "idx")["pending"] == 0)


async def test_stream_entries_from_other_producers_are_records(redis_server: RedisServer) -> None:
    r = redis_server.client()
    entry_id = r.xadd("s", {"level": "info", "msg": "hi"})
    plugin = RedisInput(port=redis_server.port, key="s", data_type="stream")
    async with InputDriver(plugin) as driver:
        [event] = await driver.wait_for(1)
    assert event.record == {"level": "info", "msg": "hi"}
    assert event.time == int(entry_id.split(b"-")[0]) * 1_000_000


async def test_killed_indexer_entries_are_taken_over_and_every_event_delivered_once(
        redis_server: RedisServer) -> None:
    """Two indexers share one stream in a consumer group; indexer A dies holding unacknowledged
    entries. B takes them over with XAUTOCLAIM: A's acknowledged events plus B's events are
    every event, each exactly once."""
    r = redis_server.client()
    settings = dict(port=redis_server.port, key="s", data_type="stream", group="idx", batch_count=10,
                    claim_idle_time=0.3, claim_interval=0.1)
    a = InputDriver(RedisInput(consumer="a", **settings), auto_ack=False)
    await a.start()
    for p in payloads(40):
        r.xadd("s", {"event": p})
    await a.wait_for(40)  # A alone read everything
    for batch in a.batches[:2]:
        batch.ack()
    a_delivered = [ev.record["seq"] for batch in a.batches[:2] for ev in batch.events]
    await until(lambda: r.xpending("s", "idx")["pending"] == 20)
    await a.stop()  # A dies: 20 entries stay pending under its name

    async with InputDriver(RedisInput(consumer="b", **settings)) as b:
        for p in payloads(40, start=40):
            r.xadd("s", {"event": p})
        await b.wait_for(60)
        await until(lambda: r.xpending("s", "idx")["pending"] == 0)
        await asyncio.sleep(0.5)  # several more claim rounds: nothing may come twice
        b_delivered = seqs(b)
    everything = a_delivered + b_delivered
    assert sorted(everything) == list(range(80))  # every event, none twice


async def test_slow_in_flight_entries_are_not_claimed_by_another_consumer(redis_server: RedisServer) -> None:
    """A consumer whose pipeline is slow keeps its entries: it refreshes their idle time."""
    r = redis_server.client()
    settings = dict(port=redis_server.port, key="s", data_type="stream", group="idx",
                    claim_idle_time=0.4, claim_interval=0.1)
    async with InputDriver(RedisInput(consumer="slow", **settings), auto_ack=False) as slow:
        r.xadd("s", {"event": payloads(1)[0]})
        await slow.wait_for(1)
        async with InputDriver(RedisInput(consumer="other", **settings)) as other:
            await asyncio.sleep(1.2)  # three times the idle limit
            assert other.events == []
            slow.batches[0].ack()
            await until(lambda: r.xpending("s", "idx")["pending"] == 0)


async def test_committer_stops_at_shutdown_even_when_a_send_swallows_its_cancellation() -> None:
    """redis-py can absorb a cancellation that lands in its reply parser and carry on; the
    commit task must still end at shutdown (it used to wait for acks forever: a hung stop)."""
    import logging

    from logpipe_plugins.inputs.redis.commits import Committer

    sent: list[list[int]] = []
    started = asyncio.Event()

    async def commit(items: list[int]) -> None:
        started.set()
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # swallowed, as the parser may
        sent.append(items)

    async with asyncio.timeout(5):
        async with Committer(commit, logging.getLogger("test")) as committer:
            committer.on_ack([1, 2])()
            await started.wait()
            committer.on_ack([3])()
    assert sent == [[1, 2], [3]]  # what was queued at shutdown was still committed
