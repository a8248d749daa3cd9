"""The kafka output through the real buffer engine into a Kafka broker (the wire-protocol
stand-in, or a real broker with LOGPIPE_TEST_KAFKA): records, keys, headers and topics as
written; a chunk acknowledged only after the broker acknowledged it; broker failures
mid-produce retried with nothing lost; a record the broker refuses dead-lettered alone."""

from __future__ import annotations

import asyncio

import msgpack
import orjson
import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe.testing import OutputDriver
from logpipe_plugins.outputs.kafka import KafkaOutput
from tests.standins.kafka import KafkaStandin
from tests.standins.kafka import apis as E
from tests.support.kafka import KafkaTarget
from tests.support.net import free_port

T0 = 1_700_000_000_123_000_000


def events(n: int, **extra: object) -> list[Event]:
    return [Event("app.web", T0 + i, {"seq": i, **extra}) for i in range(n)]


def seqs(values: list[bytes | None]) -> list[int]:
    return sorted(orjson.loads(v or b"{}")["seq"] for v in values)


async def test_round_trip_topic_key_headers_and_json_values(kafka: KafkaTarget) -> None:
    topic = kafka.name("logs")
    await kafka.create_topic(f"{topic}-a")
    await kafka.create_topic(f"{topic}-b")
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=f"{topic}-%{{app}}", message_key="%{host}",
                      message_headers={"origin": "%{host}"}, compression_type="gzip")
    batch = [Event("t", T0 + i, {"seq": i, "app": "a" if i % 2 else "b", "host": f"h{i % 3}"}) for i in range(30)]
    async with OutputDriver(out) as driver:
        delivery = await driver.write(batch)
    assert delivery.delivered == 30 and delivery.dead_lettered == 0
    a = await kafka.records(f"{topic}-a")
    b = await kafka.records(f"{topic}-b")
    assert seqs([v for *_, v in a]) == list(range(1, 30, 2)) and seqs([v for *_, v in b]) == list(range(0, 30, 2))
    doc = orjson.loads(a[0][3] or b"")
    assert doc["@timestamp"].startswith("2023-11-14T22:13:20.")
    by_key: dict[bytes | None, set[int]] = {}
    for partition, _, key, _ in a + b:
        by_key.setdefault(key, set()).add(partition)
    assert set(by_key) == {b"h0", b"h1", b"h2"}
    assert all(len(parts) == 1 for parts in by_key.values())  # one key, one partition (murmur2)
    if kafka.standin is not None:
        headers = [r.headers for _, r in kafka.standin.records(f"{topic}-a")]
        assert all(h and h[0][0] == "origin" and h[0][1].startswith(b"h") for h in headers)


async def test_chunk_is_acknowledged_only_after_the_broker_answers(kafka: KafkaTarget) -> None:
    standin = kafka.needs_standin()
    topic = kafka.name("slow")
    standin.create_topic(topic)
    standin.delay(E.PRODUCE, 0.5)
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=topic)
    async with OutputDriver(out) as driver:
        writing = asyncio.create_task(driver.write(events(5)))
        await asyncio.sleep(0.3)
        assert not writing.done()  # the broker has not answered: the chunk is still held
        assert (await writing).delivered == 5
    assert seqs(standin.values(topic)) == list(range(5))


async def test_not_leader_once_is_retried_and_nothing_is_lost_or_doubled(kafka: KafkaTarget) -> None:
    standin = kafka.needs_standin()
    topic = kafka.name("leader")
    standin.create_topic(topic)
    standin.fail_produce(E.NOT_LEADER_OR_FOLLOWER, times=1)
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=topic, message_key="%{seq}")
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(40))
    assert delivery.delivered == 40 and delivery.dead_lettered == 0
    assert seqs(standin.values(topic)) == list(range(40))
    assert standin.requests[E.METADATA] >= 2  # the client refreshed where the leader is


async def test_connection_dropped_mid_produce_idempotent_producer_stores_once(kafka: KafkaTarget) -> None:
    standin = kafka.needs_standin()
    topic = kafka.name("dropped")
    standin.create_topic(topic, 1)
    standin.drop_after_produce()  # stored, then the answer is lost with the connection
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=topic)
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(20))
    assert delivery.delivered == 20
    assert seqs(standin.values(topic)) == list(range(20))  # resent, recognised, stored once
    assert standin.requests[E.PRODUCE] >= 2 and standin.requests[E.INIT_PRODUCER_ID] == 1


async def test_connection_dropped_mid_produce_without_idempotence_duplicates_never_loses(
        kafka: KafkaTarget) -> None:
    standin = kafka.needs_standin()
    topic = kafka.name("dropped-plain")
    standin.create_topic(topic, 1)
    standin.drop_after_produce()
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=topic, acks="1")
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(20))
    assert delivery.delivered == 20
    stored = seqs(standin.values(topic))
    assert sorted(set(stored)) == list(range(20)) and len(stored) == 40  # at least once: the batch twice


async def test_request_timeout_is_retried(kafka: KafkaTarget) -> None:
    standin = kafka.needs_standin()
    topic = kafka.name("timeout")
    standin.create_topic(topic, 1)
    standin.delay(E.PRODUCE, 1.5)
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=topic, request_timeout_ms=400)
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(10), timeout=20)
    assert delivery.delivered == 10
    assert seqs(standin.values(topic)) == list(range(10))  # the late first attempt was recognised
    assert standin.requests[E.PRODUCE] >= 2


async def test_record_the_broker_refuses_is_dead_lettered_alone(kafka: KafkaTarget) -> None:
    standin = kafka.needs_standin()
    standin.message_max_bytes = 2_000
    topic = kafka.name("large")
    standin.create_topic(topic, 1)
    out = KafkaOutput(bootstrap_servers=kafka.bootstrap, topic_id=topic, partitioner="round_robin")
    batch = events(3) + [Event("app", T0, {"seq": 99, "blob": "x" * 5_000})]
    async with OutputDriver(out) as driver:
        delivery = await driver.write(batch, timeout=20)
    assert delivery.dead_lettered == 1 and delivery.delivered == 3
    assert seqs(standin.values(topic)) == [0, 1, 2]


async def test_broker_down_at_first_is_retried_by_the_buffer_engine() -> None:
    port = free_port()
    standin = KafkaStandin(partitions=1)
    standin.port = port
    out = KafkaOutput(bootstrap_servers=f"127.0.0.1:{port}", topic_id="late", retry_max_times=100, retry_wait=0.1,
                      request_timeout_ms=1_000)
    async with OutputDriver(out) as driver:
        async def bring_up() -> None:
            await asyncio.sleep(0.5)
            await standin.start()

        up = asyncio.create_task(bring_up())
        delivery = await driver.write(events(4), timeout=30)
        await up
    try:
        assert delivery.delivered == 4 and delivery.retries >= 1
        assert seqs(standin.values("late")) == [0, 1, 2, 3]
    finally:
        await standin.stop()


def test_fluentd_kafka2_names_topic_key_and_single_value_format() -> None:
    pipeline = Pipeline(load_config_string(
        "<match app.**>\n  @type kafka2\n  brokers 127.0.0.1:9092,127.0.0.1:9093\n  default_topic fallback\n"
        "  required_acks -1\n  compression_codec gzip\n  exclude_topic_key true\n"
        "  <format>\n    @type single_value\n    add_newline false\n  </format>\n</match>\n"))
    (out,) = pipeline.built.outputs
    assert isinstance(out, KafkaOutput) and out.acks == "all" and out.idempotent
    assert out._options["bootstrap_servers"] == ["127.0.0.1:9092", "127.0.0.1:9093"]
    items = out.format([Event("app.web", T0, {"message": "hello", "topic": "chosen"}),
                        Event("app.web", T0, {"message": "other"})])
    assert [msgpack.unpackb(i)[0] for i in items] == ["chosen", "fallback"]
    assert [msgpack.unpackb(i)[3] for i in items] == [b"hello", b"other"]


def test_logstash_settings_and_tag_fallback() -> None:
    pipeline = Pipeline(load_config_string(
        'input { stdin {} } output { kafka { bootstrap_servers => "k1:9092" acks => "1" codec => plain '
        'topic_id => "t-%{type}" message_key => "%{host}" compression_type => "zstd" } }'))
    (out,) = pipeline.built.outputs
    assert isinstance(out, KafkaOutput) and out.acks == 1 and not out.idempotent
    topic, key, headers, value = msgpack.unpackb(out.format([Event("x", T0, {"type": "syslog", "host": "h",
                                                                             "message": "m"})])[0])
    assert (topic, key, headers, value) == ("t-syslog", b"h", [], b"m")
    untitled = KafkaOutput()
    assert msgpack.unpackb(untitled.format([Event("web.access", T0, {})])[0])[0] == "web.access"


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        KafkaOutput(topic_id="t", acks="2")
    assert exc.value.setting == "acks"
    with pytest.raises(ConfigError) as exc:
        KafkaOutput(topic_id="t", acks="1", enable_idempotence=True)
    assert exc.value.setting == "enable_idempotence"
    with pytest.raises(ConfigError) as exc:
        KafkaOutput(topic_id="t", security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN")
    assert exc.value.setting == "sasl_username"
    with pytest.raises(ConfigError) as exc:
        KafkaOutput(topic_id="t", security_protocol="SSL", ssl_truststore_type="JKS")
    assert exc.value.setting == "ssl_truststore_type" and "PEM" in exc.value.message


def test_sasl_from_a_jaas_line_and_from_fluentd_names() -> None:
    jaas = KafkaOutput(topic_id="t", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                       sasl_jaas_config="org.apache.kafka.common.security.scram.ScramLoginModule required "
                                        "username='alice' password=\"s3cret\";")
    assert jaas._options["sasl_plain_username"] == "alice" and jaas._options["sasl_plain_password"] == "s3cret"
    assert jaas._options["ssl_context"] is not None
    fluentd = KafkaOutput(topic_id="t", username="bob", password="pw", scram_mechanism="sha256",
                          sasl_over_ssl=False)
    assert fluentd._options["security_protocol"] == "SASL_PLAINTEXT"
    assert fluentd._options["sasl_mechanism"] == "SCRAM-SHA-256"


async def test_sasl_plain_round_trip_with_a_jaas_line_and_fluentd_names() -> None:
    from logpipe.testing import InputDriver
    from logpipe_plugins.inputs.kafka import KafkaInput

    async with KafkaStandin(partitions=1, sasl_users={"alice": "s3cret"}) as standin:
        out = KafkaOutput(bootstrap_servers=standin.bootstrap, topic_id="sec", security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism="PLAIN", sasl_jaas_config="org.apache.kafka.common.security.plain."
                          "PlainLoginModule required username='alice' password='s3cret';")
        async with OutputDriver(out) as driver:
            assert (await driver.write(events(3))).delivered == 3
        reader = KafkaInput(brokers=standin.bootstrap, topics=["sec"], consumer_group="g", username="alice",
                            password="s3cret", sasl_over_ssl=False, start_from_beginning=True)
        async with InputDriver(reader) as driver:
            await driver.wait_for(3)
        assert sorted(ev.record["seq"] for ev in driver.events) == [0, 1, 2]
