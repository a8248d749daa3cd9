"""The kafka input against a Kafka broker (the wire-protocol stand-in, or a real broker
with LOGPIPE_TEST_KAFKA): offsets committed only for acknowledged batches (the contiguous
acknowledged prefix per partition), a restarted consumer resuming at the committed offset,
a malformed value tagged and committed past (never read again), a rebalance committing
what is done, Fluentd's names."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaProducer

from logpipe.config.loader import load_config_string
from logpipe.pipeline import Pipeline
from logpipe.testing import InputDriver
from logpipe_plugins.inputs.kafka import KafkaInput
from tests.support.kafka import KafkaTarget

T0_ISO = "2023-11-14T22:13:20.123Z"
T0 = 1_700_000_000_123_000_000


async def produce(kafka: KafkaTarget, topic: str, values: list[bytes], partition: int | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send(topic, value, key=str(i).encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def payloads(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"@timestamp": T0_ISO, "seq": i}) for i in range(start, start + n)]


def seqs(driver: InputDriver) -> list[int]:
    return [ev.record["seq"] for ev in driver.events]


async def until(condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


def consumer(kafka: KafkaTarget, topic: str, group: str, **settings: object) -> KafkaInput:
    defaults: dict[str, object] = {"auto_offset_reset": "earliest", "enable_auto_commit": False,
                                   "heartbeat_interval_ms": 200, "session_timeout_ms": 6000}
    return KafkaInput(bootstrap_servers=kafka.bootstrap, topics=[topic], group_id=group, **{**defaults, **settings})


async def test_round_trip_events_time_tag_and_metadata(kafka: KafkaTarget) -> None:
    topic, group = kafka.name("in"), kafka.name("g")
    await kafka.create_topic(topic)
    await produce(kafka, topic, payloads(50))
    plugin = consumer(kafka, topic, group, decorate_events="basic")
    async with InputDriver(plugin) as driver:
        await driver.wait_for(50)
        assert sorted(seqs(driver)) == list(range(50))
        ev = driver.events[0]
        assert ev.time == T0 and "@timestamp" not in ev.record and ev.tag == topic
        meta = ev.meta["kafka"]
        assert meta["topic"] == topic and meta["consumer_group"] == group and meta["key"] is not None
        assert {"partition", "offset", "timestamp"} <= set(meta)
        ends = await kafka.end_offsets(topic)
        await until(lambda: _equal(kafka.committed(group, topic), ends))


async def _equal(committed, expected: dict[int, int]) -> bool:  # type: ignore[no-untyped-def]
    return {p: o for p, o in (await committed).items() if expected.get(p)} == {
        p: o for p, o in expected.items() if o}


async def test_commits_only_the_contiguous_acknowledged_prefix(kafka: KafkaTarget) -> None:
    topic, group = kafka.name("acks"), kafka.name("g")
    await kafka.create_topic(topic)
    for start in range(0, 30, 10):  # three produce calls: three batches on partition 0
        await produce(kafka, topic, payloads(10, start), partition=0)
    plugin = consumer(kafka, topic, group, max_poll_records=10)
    async with InputDriver(plugin, auto_ack=False) as driver:
        await driver.wait_for(30)
        assert [len(b.events) for b in driver.batches] == [10, 10, 10]
        driver.batches[1].ack()  # out of order: nothing before it is done
        await asyncio.sleep(0.5)
        assert (await kafka.committed(group, topic)).get(0) is None
        driver.batches[0].ack()
        await until(lambda: _equal(kafka.committed(group, topic), {0: 20}))
        driver.batches[2].ack()
        await until(lambda: _equal(kafka.committed(group, topic), {0: 30}))


async def test_restart_resumes_at_the_committed_offset(kafka: KafkaTarget) -> None:
    topic, group = kafka.name("crash"), kafka.name("g")
    await kafka.create_topic(topic)
    await produce(kafka, topic, payloads(30), partition=1)
    first = consumer(kafka, topic, group, max_poll_records=10)
    async with InputDriver(first, auto_ack=False) as driver:
        await driver.wait_for(30)
        driver.batches[0].ack()
        await until(lambda: _equal(kafka.committed(group, topic), {1: 10}))
    # stopped with two batches read and never acknowledged: they are read again, nothing is lost
    assert (await kafka.committed(group, topic)) == {1: 10}
    again = consumer(kafka, topic, group, max_poll_records=10)
    async with InputDriver(again) as driver:
        await driver.wait_for(20)
        assert seqs(driver) == list(range(10, 30))
        await until(lambda: _equal(kafka.committed(group, topic), {1: 30}))


async def test_malformed_value_is_tagged_delivered_and_committed_past(kafka: KafkaTarget) -> None:
    topic, group = kafka.name("bad"), kafka.name("g")
    await kafka.create_topic(topic)
    await produce(kafka, topic, [*payloads(2), b"{not json", *payloads(2, 2)], partition=0)
    async with InputDriver(consumer(kafka, topic, group)) as driver:
        await driver.wait_for(5)
        bad = [ev for ev in driver.events if "seq" not in ev.record]
        assert len(bad) == 1 and bad[0].record["message"] == "{not json"
        assert "_jsonparsefailure" in bad[0].record["tags"]
        await until(lambda: _equal(kafka.committed(group, topic), {0: 5}))
    async with InputDriver(consumer(kafka, topic, group)) as driver:
        await produce(kafka, topic, payloads(1, 9), partition=0)
        await driver.wait_for(1)
        assert seqs(driver) == [9]  # the bad record is not read again: no loop


async def test_rebalance_commits_what_is_done_and_loses_nothing(kafka: KafkaTarget) -> None:
    topic, group = kafka.name("rebalance"), kafka.name("g")
    await kafka.create_topic(topic)
    await produce(kafka, topic, payloads(30))
    settings = {"max_poll_records": 5, "partition_assignment_strategy": "round_robin"}
    sent = 30
    async with InputDriver(consumer(kafka, topic, group, **settings)) as one:
        await one.wait_for(30)
        async with InputDriver(consumer(kafka, topic, group, **settings)) as two:
            async with asyncio.timeout(30):
                while not two.events:  # keep records coming until the group has rebalanced
                    await produce(kafka, topic, payloads(10, sent))
                    sent += 10
                    await asyncio.sleep(0.1)

            async def all_read() -> bool:
                return set(seqs(one)) | set(seqs(two)) == set(range(sent))
            await until(all_read, 30)
            ends = await kafka.end_offsets(topic)
            await until(lambda: _equal(kafka.committed(group, topic), ends))
    if kafka.standin is not None:
        assert kafka.standin.groups[group].generation >= 2  # a rebalance happened
    # duplicates possible (a revoked batch in flight), loss not
    assert set(seqs(one)) | set(seqs(two)) == set(range(sent))


async def test_revoked_partitions_commit_their_acknowledged_prefix(kafka: KafkaTarget) -> None:
    topic, group = kafka.name("revoke"), kafka.name("g")
    await kafka.create_topic(topic)
    for partition in range(3):
        await produce(kafka, topic, payloads(10, partition * 10), partition=partition)
    first = consumer(kafka, topic, group, max_poll_records=10, enable_auto_commit=True,
                     auto_commit_interval_ms=60_000, rebalance_drain_timeout=0.3)
    async with InputDriver(first, auto_ack=False) as one:
        await one.wait_for(30)
        stretch = {b.events[0].record["seq"] // 10: b for b in one.batches}
        assert all(len(b.events) == 10 for b in one.batches) and sorted(stretch) == [0, 1, 2]
        stretch[0].ack()
        await until(lambda: _equal(kafka.committed(group, topic), {0: 10}))
        stretch[1].ack()  # acknowledged, but the next periodic commit is a minute away
        await asyncio.sleep(0.3)
        assert (await kafka.committed(group, topic)) == {0: 10}
        async with InputDriver(consumer(kafka, topic, group)) as two:
            # the rebalance revokes everything from the first member: it commits what is done
            await until(lambda: _equal(kafka.committed(group, topic), {0: 10, 1: 10}))
            # partition 2's batch was never acknowledged: whoever owns it now reads it again

            async def reread() -> bool:
                again = [s for s in seqs(one)[30:] + seqs(two) if s >= 20]
                return sorted(again) == list(range(20, 30))
            await until(reread, 30)
            assert not [s for s in seqs(one)[30:] + seqs(two) if s < 20]  # committed ones are not


async def test_topics_pattern(kafka: KafkaTarget) -> None:
    base = kafka.name("pat")
    for name in (f"{base}-a", f"{base}-b", f"other-{base}"):
        await kafka.create_topic(name)
        await produce(kafka, name, [orjson.dumps({"seq": 1, "t": name})])
    plugin = KafkaInput(bootstrap_servers=kafka.bootstrap, topics_pattern=f"{base}-.*", group_id=kafka.name("g"),
                        auto_offset_reset="earliest", metadata_max_age_ms=500)
    async with InputDriver(plugin) as driver:
        await driver.wait_for(2)
        await asyncio.sleep(0.5)
        assert sorted(ev.record["t"] for ev in driver.events) == [f"{base}-a", f"{base}-b"]


def test_fluentd_kafka_group_names() -> None:
    pipeline = Pipeline(load_config_string(
        "<source>\n  @type kafka_group\n  brokers 127.0.0.1:9092\n  consumer_group indexers\n"
        "  topics app,web\n  format text\n  message_key log\n  add_prefix kafka\n  start_from_beginning true\n"
        "</source>\n<match **>\n  @type null\n</match>\n"))
    (plugin,) = pipeline.built.inputs
    assert isinstance(plugin, KafkaInput)
    assert plugin.topic_list == ["app", "web"] and plugin.group_id == "indexers"
    assert plugin.auto_offset_reset == "earliest"

    class Record:
        topic, partition, offset, key, value, timestamp, headers = "app", 0, 7, None, b"plain line", 0, []

    (ev,) = plugin.events_of(Record())  # type: ignore[arg-type]
    assert ev.tag == "kafka.app" and ev.record == {"log": "plain line"}


def test_logstash_settings() -> None:
    pipeline = Pipeline(load_config_string(
        'input { kafka { bootstrap_servers => "k:9092" topics => ["a"] group_id => "ls" consumer_threads => 2 '
        'codec => plain decorate_events => "extended" auto_offset_reset => "earliest" } } output { null {} }'))
    (plugin,) = pipeline.built.inputs
    assert isinstance(plugin, KafkaInput) and plugin.consumer_threads == 2 and plugin.decorate == "extended"

    class Record:
        topic, partition, offset, key, value, timestamp, headers = "a", 2, 9, b"k", b'{"x":1}', 5, [("h", b"v")]

    (ev,) = plugin.events_of(Record())  # type: ignore[arg-type]
    assert ev.record == {"message": '{"x":1}'} and ev.meta["kafka"]["headers"] == {"h": "v"}
    assert ev.meta["kafka"]["offset"] == 9 and ev.meta["kafka"]["key"] == "k"
