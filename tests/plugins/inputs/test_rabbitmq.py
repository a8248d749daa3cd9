"""The rabbitmq input against a real RabbitMQ node: acks only when the ack contract completes
(in delivery order), prefetch bounds what is held, redelivery after a broker restart and
after the consuming process is killed, malformed bodies tagged once (never looping), the
round trip through the rabbitmq output, and both config front-ends."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest

from logpipe.build import instantiate
from logpipe.config import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe.plugin import Codec
from logpipe.testing import InputDriver, OutputDriver
from logpipe_plugins.inputs.rabbitmq import DECODE_FAILURE_TAG, RabbitMQInput
from logpipe_plugins.outputs.rabbitmq import RabbitMQOutput
from tests.support.e2e import LogpipeProcess
from tests.support.net import free_port
from tests.support.pipeline import CollectOutput, first_plugin
from tests.support.rabbitmq_server import RabbitMQServer

T0 = 1_700_000_000_123_000_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def publish(server: RabbitMQServer, queue: str, bodies: list[bytes]) -> None:
    """Persistent messages straight into a durable queue (the default exchange)."""
    async with await aio_pika.connect(server.url) as conn:
        ch = await conn.channel()
        await ch.declare_queue(queue, durable=True)
        for body in bodies:
            await ch.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue)


async def ready_count(server: RabbitMQServer, queue: str) -> int:
    """Messages waiting in the queue (not counting those delivered and unacknowledged)."""
    async with await aio_pika.connect(server.url) as conn:
        q = await (await conn.channel()).declare_queue(queue, durable=True, passive=True)
        count = q.declaration_result.message_count
        assert count is not None
        return count


async def wait_ready(server: RabbitMQServer, queue: str, expect: int, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while await ready_count(server, queue) != expect:
            await asyncio.sleep(0.05)


async def queue_declared(server: RabbitMQServer, queue: str) -> None:
    """Wait until an input has declared (and bound) its queue: it does so when it connects,
    and messages published to the exchange before that would be routed nowhere."""
    async with asyncio.timeout(15):
        while True:
            try:
                await ready_count(server, queue)
                return
            except aio_pika.exceptions.ChannelNotFoundEntity:
                await asyncio.sleep(0.05)


def bodies(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"seq": i}) for i in range(start, start + n)]


def consumer(server: RabbitMQServer, queue: str, **settings: Any) -> RabbitMQInput:
    return RabbitMQInput(port=server.port, queue=queue, durable=True, **settings)


async def test_acks_are_sent_only_when_the_contract_completes_in_delivery_order(
        rabbitmq_server: RabbitMQServer) -> None:
    queue = unique("acks")
    await publish(rabbitmq_server, queue, bodies(4))
    driver = InputDriver(consumer(rabbitmq_server, queue, batch_size=1), auto_ack=False)
    async with driver:
        await driver.wait_for(4)
        assert await ready_count(rabbitmq_server, queue) == 0  # all four delivered, none acknowledged
        driver.batches[1].ack()
        driver.batches[3].ack()  # later batches done first: nothing can be acked yet
    await wait_ready(rabbitmq_server, queue, 4)  # the connection closed: all four back in the queue

    driver = InputDriver(consumer(rabbitmq_server, queue, batch_size=1), auto_ack=False)
    async with driver:
        events = await driver.wait_for(4)
        assert sorted(ev.record["seq"] for ev in events) == [0, 1, 2, 3]
        driver.batches[1].ack()
        driver.batches[0].ack()  # 0 and 1 done: one multiple ack covers both
    await wait_ready(rabbitmq_server, queue, 2)  # 2 and 3 were never acknowledged: redelivered later

    driver = InputDriver(consumer(rabbitmq_server, queue), auto_ack=True)
    async with driver:
        events = await driver.wait_for(2)
    assert sorted(ev.record["seq"] for ev in events) == [2, 3]
    assert await ready_count(rabbitmq_server, queue) == 0


async def test_prefetch_bounds_what_the_input_holds(rabbitmq_server: RabbitMQServer) -> None:
    queue = unique("prefetch")
    await publish(rabbitmq_server, queue, bodies(20))
    driver = InputDriver(consumer(rabbitmq_server, queue, prefetch_count=5), auto_ack=False)
    async with driver:
        await driver.wait_for(5)
        assert await ready_count(rabbitmq_server, queue) == 15  # the broker stopped at the prefetch
        assert len(driver.events) == 5
        for batch in list(driver.batches):
            batch.ack()
        while len(driver.events) < 20:  # each ack lets more through
            await driver.wait_for(len(driver.events) + 1)
            for batch in list(driver.batches):
                batch.ack()
    assert sorted(ev.record["seq"] for ev in driver.events) == list(range(20))
    assert await ready_count(rabbitmq_server, queue) == 0


class ExplodingCodec(Codec):
    """A third-party codec with a bug: it raises on bodies that are not JSON."""

    name = "exploding"

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in lines]


@pytest.mark.parametrize(("codec", "tag"), [("json", "_jsonparsefailure"), (ExplodingCodec(), DECODE_FAILURE_TAG)])
async def test_a_malformed_body_is_tagged_once_and_acknowledged_not_looping(
        rabbitmq_server: RabbitMQServer, codec: Any, tag: str) -> None:
    queue = unique("bad")
    await publish(rabbitmq_server, queue, [b'{"seq": 0}', b"not json{", b'{"seq": 2}'])
    driver = InputDriver(consumer(rabbitmq_server, queue, codec=codec), auto_ack=True)
    async with driver:
        events = await driver.wait_for(3)
        await wait_ready(rabbitmq_server, queue, 0)
    assert len(events) == 3
    bad = [ev for ev in events if tag in ev.record.get("tags", [])]
    assert [ev.record["message"] for ev in bad] == ["not json{"]
    assert sorted(ev.record["seq"] for ev in events if "seq" in ev.record) == [0, 2]
    # acknowledged, not requeued: a new consumer gets nothing
    async with await aio_pika.connect(rabbitmq_server.url) as conn:
        q = await (await conn.channel()).declare_queue(queue, durable=True, passive=True)
        assert await q.get(fail=False) is None


async def test_round_trip_output_broker_input_keeps_time_and_order(rabbitmq_server: RabbitMQServer) -> None:
    exchange, queue = unique("x"), unique("q")
    inp = RabbitMQInput(port=rabbitmq_server.port, queue=queue, durable=True, exchange=exchange,
                        exchange_type="direct", key="logs", metadata_enabled="basic")
    out = RabbitMQOutput(port=rabbitmq_server.port, exchange=exchange, exchange_type="direct", key="logs")
    driver = InputDriver(inp)
    async with driver:
        await queue_declared(rabbitmq_server, queue)
        async with OutputDriver(out) as writer:
            sent = [Event("app", T0 + i * 1_000_000, {"seq": i, "text": f"line {i}"}) for i in range(500)]
            delivery = await writer.write(sent)
        assert delivery.delivered == 500
        events = await driver.wait_for(500)
    assert [ev.record["seq"] for ev in events] == list(range(500))
    assert events[7].time == T0 + 7_000_000 and events[7].record["text"] == "line 7"
    props = events[0].meta["rabbitmq_properties"]
    assert props["exchange"] == exchange and props["routing-key"] == "logs" and props["delivery-mode"] == 2
    assert props["redeliver"] is False


async def test_binary_codec_round_trip(rabbitmq_server: RabbitMQServer) -> None:
    queue = unique("mp")
    inp = consumer(rabbitmq_server, queue, codec="msgpack")
    out = RabbitMQOutput(port=rabbitmq_server.port, exchange="", exchange_type="direct", key=queue,
                         codec="msgpack")  # the default exchange: routed by queue name
    await publish(rabbitmq_server, queue, [])
    async with OutputDriver(out) as writer:
        assert (await writer.write([Event("t", T0, {"seq": 1, "blob": "é\u00ff"})])).delivered == 1
    async with InputDriver(inp) as driver:
        [event] = await driver.wait_for(1)
    assert event.record["blob"] == "é\u00ff" and event.time == T0


async def test_broker_restart_while_consuming_loses_nothing(rabbitmq_server: RabbitMQServer) -> None:
    queue = unique("restart")
    await publish(rabbitmq_server, queue, bodies(100))
    inp = consumer(rabbitmq_server, queue, subscription_retry_interval_seconds=0.2, batch_size=10)
    driver = InputDriver(inp, auto_ack=False)
    async with driver:
        await driver.wait_for(100)
        acked: set[int] = set()
        for batch in driver.batches[:3]:  # the oldest batches complete before the restart
            batch.ack()
            acked.update(ev.record["seq"] for ev in batch.events)
        await asyncio.sleep(0.2)  # the ack frame is sent by the input's sender task
        await asyncio.to_thread(rabbitmq_server.restart)
        await publish(rabbitmq_server, queue, bodies(50, start=100))  # more, after the restart
        await driver.wait_for(100 + (100 - len(acked)) + 50)  # the unacked redelivered + 50 new
        for batch in driver.batches:
            batch.ack()
        await wait_ready(rabbitmq_server, queue, 0)
    seqs = [ev.record["seq"] for ev in driver.events]
    assert set(seqs) == set(range(150))
    assert sorted(seqs[100:]) == sorted(set(range(150)) - acked)  # the unacked came again, the acked did not


async def test_unacked_messages_are_redelivered_after_the_consuming_process_is_killed(
        rabbitmq_server: RabbitMQServer, tmp_path: Path) -> None:
    queue = unique("crash")
    await publish(rabbitmq_server, queue, bodies(40))
    config = tmp_path / "indexer.conf"
    # The output never succeeds (nothing listens there), so no batch's ack contract completes.
    config.write_text(
        f'input {{ rabbitmq {{ port => {rabbitmq_server.port} queue => "{queue}" durable => true '
        f'prefetch_count => 100 }} }}\n'
        f'output {{ http {{ url => "http://127.0.0.1:{free_port()}/" retry_forever => true }} }}\n')
    process = LogpipeProcess(config, tmp_path / "state", tmp_path / "indexer.log")
    try:
        await wait_ready(rabbitmq_server, queue, 0, timeout=60)  # the process took all 40, acked none
        assert process.alive(), (tmp_path / "indexer.log").read_text()
        os.kill(process.pid, signal.SIGKILL)
        process.proc.wait(10)
    finally:
        if process.alive():
            process.proc.kill()
            process.proc.wait(10)
    await wait_ready(rabbitmq_server, queue, 40)  # the broker requeued every unacknowledged message
    driver = InputDriver(consumer(rabbitmq_server, queue, metadata_enabled="basic"))
    async with driver:
        events = await driver.wait_for(40)
    assert sorted(ev.record["seq"] for ev in events) == list(range(40))
    assert all(ev.meta["rabbitmq_properties"]["redeliver"] is True for ev in events)


async def test_both_front_ends_configure_a_tier(rabbitmq_server: RabbitMQServer, tmp_path: Path) -> None:
    """A shipper written in the Logstash DSL and an indexer written as Fluentd directives."""
    exchange, queue = unique("x"), unique("q")
    indexer_conf = (
        f"<source>\n  @type rabbitmq\n  tag mq\n  host 127.0.0.1\n  port {rabbitmq_server.port}\n"
        f"  queue {queue}\n  durable true\n  exchange {exchange}\n  exchange_type fanout\n"
        "  routing_key ignored\n  manual_ack true\n  prefetch_count 50\n</source>\n")
    shipper_conf = (
        f'input {{ generator {{ lines => ["a", "b"] count => 100 }} }}\n'
        f'output {{ rabbitmq {{ host => "127.0.0.1" port => {rabbitmq_server.port} exchange => "{exchange}" '
        'exchange_type => "fanout" persistent => false } }\n')
    collect = CollectOutput()
    async with Pipeline.from_string(indexer_conf, outputs=[collect], state_dir=str(tmp_path)):
        await queue_declared(rabbitmq_server, queue)
        shipper = Pipeline.from_string(shipper_conf, state_dir=str(tmp_path))
        assert await shipper.run() == 0
        await collect.wait_for(200)
    assert sorted(ev.record["message"] for ev in collect.events) == ["a"] * 100 + ["b"] * 100
    assert {ev.tag for ev in collect.events} == {"mq"}


def test_both_front_ends_spell_the_same_input() -> None:
    logstash = load_config_string(
        'input { rabbitmq { host => "mq" queue => "q" durable => true key => "k" exchange => "x" '
        'prefetch_count => 10 ack => false password => "p" } }', "ls.conf")
    fluentd = load_config_string(
        "<source>\n  @type rabbitmq\n  host mq\n  queue q\n  durable true\n  routing_key k\n  exchange x\n"
        "  prefetch_count 10\n  manual_ack false\n  pass p\n</source>\n", "fd.conf")
    a, b = (instantiate(first_plugin(cfg.inputs)) for cfg in (logstash, fluentd))
    for name in ("host", "queue", "durable", "key", "exchange", "prefetch_count", "ack", "password"):
        assert a.params[name] == b.params[name], name
    assert a.params["ack"] is False and a.params["prefetch_count"] == 10


def test_config_errors_are_placed() -> None:
    cfg = load_config_string('input {\n  rabbitmq {\n    queue => "q"\n    prefetch_count => 0\n  }\n}\n', "bad.conf")
    with pytest.raises(ConfigError) as exc:
        instantiate(first_plugin(cfg.inputs))
    assert exc.value.pos is not None and exc.value.pos.line == 4


async def test_acks_completed_during_shutdown_are_sent_before_the_connection_closes(
        rabbitmq_server: RabbitMQServer, tmp_path: Path) -> None:
    """The pipeline stops inputs first and closes them last: deliveries the outputs finish while
    draining must still be acknowledged, or every clean restart would redeliver them."""
    queue = unique("drain")
    await publish(rabbitmq_server, queue, bodies(30))
    collect = CollectOutput()
    collect.gate.clear()  # the output holds the events: no ack completes yet
    pipeline = Pipeline(inputs=[consumer(rabbitmq_server, queue)], outputs=[collect], state_dir=str(tmp_path))
    await pipeline.start()
    await wait_ready(rabbitmq_server, queue, 0)  # all 30 delivered to the input, none acknowledged
    stopping = asyncio.create_task(pipeline.stop(timeout=20))
    async with asyncio.timeout(10):
        while not all(task.done() for task in pipeline._input_tasks):
            await asyncio.sleep(0.01)  # the input's task is cancelled first
    collect.gate.set()  # now the output delivers, during the drain
    await stopping
    assert sorted(ev.record["seq"] for ev in collect.events) == list(range(30))
    assert await ready_count(rabbitmq_server, queue) == 0  # acknowledged: nothing was requeued
