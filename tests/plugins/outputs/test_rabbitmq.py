"""The rabbitmq output against a real RabbitMQ node: confirmed publishing, routing keys,
properties, a broker restart retried by the buffer engine, and positioned config errors."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import msgpack
import orjson
import pytest

from logpipe.build import instantiate
from logpipe.config import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.routed import unpack_routed
from logpipe.plugin import RetryableError
from logpipe.testing import OutputDriver
from logpipe_plugins.outputs.rabbitmq import RabbitMQOutput
from tests.support.net import free_port
from tests.support.pipeline import first_plugin
from tests.support.rabbitmq_server import RabbitMQServer

T0 = 1_700_000_000_123_000_000


def events(n: int, start: int = 0, **extra: object) -> list[Event]:
    return [Event("app", T0 + i, {"seq": i, **extra}) for i in range(start, start + n)]


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"x-{tag}", f"q-{tag}"


async def bound_queue(server: RabbitMQServer, exchange: str, queue: str, key: str = "#",
                      kind: str = "topic") -> None:
    """A durable queue bound to the exchange (declared as the output declares it)."""
    async with await aio_pika.connect(server.url) as conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange(exchange, kind, durable=True)
        q = await ch.declare_queue(queue, durable=True)
        await q.bind(ex, routing_key=key)


async def drain(server: RabbitMQServer, queue: str, expect: int, timeout: float = 10.0) -> list[aio_pika.Message]:
    """Everything in the queue, once at least `expect` messages have arrived."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with await aio_pika.connect(server.url) as conn:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, durable=True, passive=True)
        async with asyncio.timeout(timeout):
            while len(got) < expect:
                message = await q.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.02)
                    continue
                got.append(message)
            while (message := await q.get(no_ack=True, fail=False)) is not None:
                got.append(message)  # more than expected: the caller tells duplicates from errors
    return got  # type: ignore[return-value]


async def test_publishes_confirmed_persistent_messages_with_sprintf_keys(rabbitmq_server: RabbitMQServer) -> None:
    exchange, queue = names()
    await bound_queue(rabbitmq_server, exchange, queue, key="logs.a")
    out = RabbitMQOutput(host=[f"127.0.0.1:{rabbitmq_server.port}"], exchange=exchange, exchange_type="topic",
                         key="logs.%{app}", message_properties={"content_type": "application/json", "app_id": "lp"})
    try:
        batch = [Event("t", T0 + i, {"seq": i, "app": "a" if i % 2 else "b"}) for i in range(10)]
        assert await out.write(out.format(batch)) is None
    finally:
        await out.close()
    got = await drain(rabbitmq_server, queue, 5)  # only logs.a is bound: logs.b is unroutable
    assert len(got) == 5
    assert [orjson.loads(m.body)["seq"] for m in got] == [1, 3, 5, 7, 9]
    first = got[0]
    assert orjson.loads(first.body)["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.content_type == "application/json" and first.app_id == "lp"
    assert first.routing_key == "logs.a"


async def test_unreachable_broker_is_a_retryable_io_error() -> None:
    out = RabbitMQOutput(port=free_port(), exchange="x", exchange_type="fanout", connection_timeout=1)
    try:
        with pytest.raises(RetryableError, match="rabbitmq"):
            await out.write(out.format(events(1)))
    finally:
        await out.close()


async def test_exchange_declared_differently_is_retried_with_the_brokers_words(
        rabbitmq_server: RabbitMQServer) -> None:
    exchange, _ = names()
    async with await aio_pika.connect(rabbitmq_server.url) as conn:
        await (await conn.channel()).declare_exchange(exchange, "fanout", durable=True)
    out = RabbitMQOutput(port=rabbitmq_server.port, exchange=exchange, exchange_type="direct")
    try:
        with pytest.raises(RetryableError, match="PRECONDITION_FAILED"):
            await out.write(out.format(events(1)))
    finally:
        await out.close()


async def test_broker_restart_mid_stream_is_retried_and_loses_nothing(rabbitmq_server: RabbitMQServer) -> None:
    exchange, queue = names()
    await bound_queue(rabbitmq_server, exchange, queue)
    out = RabbitMQOutput(port=rabbitmq_server.port, exchange=exchange, exchange_type="topic", key="k",
                         retry_max_times=400, retry_wait=0.05, retry_max_interval=0.5)
    async with OutputDriver(out) as driver:
        assert (await driver.write(events(50))).delivered == 50
        restart = asyncio.create_task(asyncio.to_thread(rabbitmq_server.restart))
        deliveries = []
        for chunk in range(1, 6):  # written while the node stops and boots again
            deliveries.append(await driver.write(events(50, start=chunk * 50), timeout=120))
        await restart
        deliveries.append(await driver.write(events(50, start=300), timeout=60))
    assert sum(d.delivered for d in deliveries) == 300
    assert sum(d.dead_lettered for d in deliveries) == 0
    assert sum(d.retries for d in deliveries) >= 1, "the restart was not noticed"
    got = await drain(rabbitmq_server, queue, 350)  # durable queue + persistent messages survive the restart
    seqs = [orjson.loads(m.body)["seq"] for m in got]
    assert set(seqs) == set(range(350))  # nothing lost
    assert len(seqs) - 350 <= 250, "duplicates beyond the chunks in flight at the restart"


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        RabbitMQOutput(exchange="x", exchange_type="queue")
    assert exc.value.setting == "exchange_type"
    with pytest.raises(ConfigError) as exc:
        RabbitMQOutput(exchange="x", exchange_type="direct", host=["h:port"])
    assert exc.value.setting == "host"
    with pytest.raises(ConfigError) as exc:
        RabbitMQOutput(exchange="x", exchange_type="direct", message_properties={"colour": "red"})
    assert exc.value.setting == "message_properties"


def test_both_front_ends_spell_the_same_output() -> None:
    logstash = load_config_string(
        'output { rabbitmq { host => ["mq1:5673"] exchange => "logs" exchange_type => "topic" '
        'key => "%{app}" persistent => false user => "u" password => "p" vhost => "v" } }', "ls.conf")
    fluentd = load_config_string(
        "<match **>\n  @type rabbitmq\n  hosts mq1:5673\n  exchange logs\n  exchange_type topic\n"
        "  routing_key %{app}\n  persistent false\n  user u\n  pass p\n  vhost v\n</match>\n", "fd.conf")
    a, b = (instantiate(first_plugin(cfg.outputs)) for cfg in (logstash, fluentd))
    for name in ("host", "exchange", "exchange_type", "key", "persistent", "user", "password", "vhost"):
        assert a.params[name] == b.params[name], name
    assert a.params["host"] == ["mq1:5673"] and a.params["persistent"] is False


def test_a_bad_value_in_a_config_is_placed() -> None:
    with pytest.raises(ConfigError) as exc:
        cfg = load_config_string('output {\n  rabbitmq {\n    exchange => "x"\n    exchange_type => "queue"\n  }\n}\n',
                                 "bad.conf")
        instantiate(cfg.outputs[0])
    assert exc.value.pos is not None and exc.value.pos.line == 4
    assert "direct" in str(exc.value)


async def test_every_message_has_its_own_message_id(rabbitmq_server: RabbitMQServer) -> None:
    exchange, queue = names()
    await bound_queue(rabbitmq_server, exchange, queue, key="k")
    out = RabbitMQOutput(port=rabbitmq_server.port, exchange=exchange, exchange_type="topic", key="k")
    try:
        assert await out.write(out.format(events(5))) is None
    finally:
        await out.close()
    got = await drain(rabbitmq_server, queue, 5)
    assert len({m.message_id for m in got}) == 5


def test_a_fluentd_format_section_picks_the_codec() -> None:
    cfg = load_config_string("<match **>\n  @type rabbitmq\n  exchange logs\n  exchange_type fanout\n"
                             "  <format>\n    @type msgpack\n  </format>\n</match>\n", "fd.conf")
    out = instantiate(first_plugin(cfg.outputs))
    assert isinstance(out, RabbitMQOutput)
    [item] = out.format([Event("t", T0, {"seq": 1})])
    assert msgpack.unpackb(unpack_routed(item)[1]) == {"seq": 1}  # Fluentd's msgpack formatter: the record
    assert RabbitMQOutput(exchange="x", exchange_type="direct").codec.name == "json"
