"""The redis output against a real redis-server: list, channel and stream writes, failover,
refusals dead-lettered, congestion backpressure, and the error taxonomy."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import RetryableError, WriteResult
from logpipe.testing import OutputDriver
from logpipe_plugins.outputs.redis import RedisOutput
from tests.support.net import free_port
from tests.support.redis_server import RedisServer

T0 = 1_700_000_000_123_000_000


def events(n: int, **extra: object) -> list[Event]:
    return [Event("app", T0 + i, {"seq": i, **extra}) for i in range(n)]


async def test_list_rpush_keeps_order_and_sprintf_keys(redis_server: RedisServer) -> None:
    out = RedisOutput(host=[f"127.0.0.1:{redis_server.port}"], key="logs-%{app}", data_type="list")
    try:
        batch = [Event("t", T0 + i, {"seq": i, "app": "a" if i % 2 else "b"}) for i in range(10)]
        assert await out.write(batch) is None
    finally:
        await out.close()
    r = redis_server.client()
    a = [orjson.loads(x) for x in r.lrange("logs-a", 0, -1)]
    b = [orjson.loads(x) for x in r.lrange("logs-b", 0, -1)]
    assert [d["seq"] for d in a] == [1, 3, 5, 7, 9] and [d["seq"] for d in b] == [0, 2, 4, 6, 8]
    assert a[0]["@timestamp"] == "2023-11-14T22:13:20.123Z"


async def test_stream_xadd_is_bounded_by_maxlen(redis_server: RedisServer) -> None:
    out = RedisOutput(port=redis_server.port, key="s", data_type="stream", stream_maxlen=5,
                      stream_maxlen_approximate=False)
    try:
        assert await out.write(events(20)) is None
    finally:
        await out.close()
    entries = redis_server.client().xrange("s")
    assert len(entries) == 5
    assert [orjson.loads(f[b"event"])["seq"] for _, f in entries] == [15, 16, 17, 18, 19]


async def test_channel_publishes_to_subscribers(redis_server: RedisServer) -> None:
    r = redis_server.client()
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("news")
    out = RedisOutput(port=redis_server.port, key="news", data_type="channel")
    try:
        assert await out.write(events(3)) is None
    finally:
        await out.close()
    got = []
    deadline = asyncio.get_running_loop().time() + 5
    while len(got) < 3 and asyncio.get_running_loop().time() < deadline:
        msg = await asyncio.to_thread(sub.get_message, timeout=1)
        if msg is not None:  # None: the subscribe confirmation, or nothing yet
            got.append(orjson.loads(msg["data"])["seq"])
    assert got == [0, 1, 2]


async def test_wrongtype_dead_letters_only_that_keys_events(redis_server: RedisServer) -> None:
    redis_server.client().set("taken", "a string")
    out = RedisOutput(port=redis_server.port, key="%{k}", data_type="list")
    try:
        result = await out.write([Event("t", T0, {"k": "taken"}), Event("t", T0, {"k": "free"})])
    finally:
        await out.close()
    assert isinstance(result, WriteResult) and result.retry == []
    [(index, reason)] = result.failed
    assert index == 0 and "WRONGTYPE" in reason
    assert redis_server.client().llen("free") == 1


async def test_unreachable_hosts_are_retryable_and_failover_uses_the_live_one(redis_server: RedisServer) -> None:
    dead = f"127.0.0.1:{free_port()}"
    out = RedisOutput(host=[dead], key="k", data_type="list", timeout=1)
    with pytest.raises(RetryableError, match="no redis host"):
        await out.write(events(1))
    await out.close()
    out = RedisOutput(host=[dead, f"127.0.0.1:{redis_server.port}"], key="k", data_type="list", timeout=1)
    try:
        for _ in range(4):  # shuffled order: the live host must take every chunk
            assert await out.write(events(1)) is None
    finally:
        await out.close()
    assert redis_server.client().llen("k") == 4


async def test_redis_restart_is_retried_by_the_buffer_engine(redis_server: RedisServer) -> None:
    out = RedisOutput(port=redis_server.port, key="k", data_type="list", retry_max_times=50, retry_wait=0.05)
    async with OutputDriver(out) as driver:
        assert (await driver.write(events(2))).delivered == 2
        redis_server.stop()
        from tests.support.redis_server import start_redis

        restarted: list[RedisServer] = []

        async def bring_back() -> None:
            await asyncio.sleep(0.3)
            restarted.append(await asyncio.to_thread(start_redis, redis_server.directory, redis_server.port))

        back = asyncio.create_task(bring_back())
        delivery = await driver.write(events(3), timeout=20)
        await back
    try:
        assert delivery.delivered == 3 and delivery.retries >= 1 and delivery.dead_lettered == 0
        assert restarted[0].client().llen("k") == 3  # the restarted server has no persistence
    finally:
        restarted[0].stop()


async def test_congestion_threshold_waits_until_the_list_drains(redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.rpush("q", *[b"x"] * 10)
    out = RedisOutput(port=redis_server.port, key="q", data_type="list", congestion_threshold=5,
                      congestion_interval=0.02)
    try:
        write = asyncio.create_task(out.write(events(1)))
        await asyncio.sleep(0.2)
        assert not write.done() and r.llen("q") == 10
        r.ltrim("q", 0, 2)
        assert await asyncio.wait_for(write, 5) is None
    finally:
        await out.close()
    assert r.llen("q") == 4


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        RedisOutput(key="k", data_type="queue")
    assert exc.value.setting == "data_type"
    with pytest.raises(ConfigError) as exc:
        RedisOutput(key="k", data_type="list", host=["h:port"])
    assert exc.value.setting == "host"
