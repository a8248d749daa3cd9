"""The Kafka stand-in is faithful to the protocol as two independent clients speak it:
aiokafka (pure Python) and librdkafka (C, through confluent-kafka). Each produces (with
compression, keys, headers) and consumes in a group with commits; records one client
wrote are read by the other; each failure mode shows the client behaviour a real broker
causes (NOT_LEADER_OR_FOLLOWER retried after a metadata refresh, a dropped connection
resent, a request timeout given up on by the client); a corrupt batch is refused."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError, RequestTimedOutError

from tests.standins.kafka import KafkaStandin
from tests.standins.kafka import apis as E
from tests.standins.kafka.wire import Reader, to_bytes

confluent_kafka = pytest.importorskip("confluent_kafka", reason="confluent-kafka is a test dependency")


@pytest.fixture
async def broker():  # type: ignore[no-untyped-def]
    standin = await KafkaStandin(partitions=3).start()
    yield standin
    await standin.stop()


async def aiokafka_produce(broker: KafkaStandin, topic: str, n: int, **options: object) -> list[int]:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, **options)  # type: ignore[arg-type]
    await producer.start()
    try:
        sent = [await producer.send(topic, f"a{i}".encode(), key=f"k{i}".encode(), headers=[("h", b"1")])
                for i in range(n)]
        return [m.offset for m in await asyncio.gather(*sent)]
    finally:
        await producer.stop()


def rdkafka_produce(bootstrap: str, topic: str, n: int, **config: object) -> list[object]:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **config})
    errors: list[object] = []
    for i in range(n):
        producer.produce(topic, f"r{i}".encode(), key=f"k{i}".encode(), headers=[("h", b"2")],
                         on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(20) == 0
    return errors


def rdkafka_consume(bootstrap: str, topic: str, group: str, n: int) -> list[bytes]:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < n and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append(message.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


async def aiokafka_consume(broker: KafkaStandin, topic: str, group: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < n:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got += [r.value for r in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


def committed(broker: KafkaStandin, group: str, topic: str) -> dict[int, int]:
    return {p: o for (t, p), (o, _) in broker.groups[group].offsets.items() if t == topic and o}


def ends(broker: KafkaStandin, topic: str) -> dict[int, int]:
    return {n: log.end_offset for n, log in enumerate(broker.topics[topic]) if log.end_offset}


@pytest.mark.parametrize("compression", [None, "gzip", "lz4", "zstd", "snappy"])
async def test_aiokafka_produces_and_consumes_in_a_group(broker: KafkaStandin, compression: str | None) -> None:
    await aiokafka_produce(broker, "t", 40, compression_type=compression)
    assert broker.requests[E.API_VERSIONS] >= 1 and broker.requests[E.PRODUCE] >= 1
    stored = broker.records("t")  # decoded by the stand-in itself
    assert sorted(r.value for _, r in stored) == sorted(f"a{i}".encode() for i in range(40))
    assert all(r.headers == [("h", b"1")] for _, r in stored)
    got = await aiokafka_consume(broker, "t", "g", 40)
    assert sorted(got) == sorted(f"a{i}".encode() for i in range(40))
    assert committed(broker, "g", "t") == ends(broker, "t")


@pytest.mark.parametrize("compression", ["none", "gzip", "lz4", "zstd", "snappy"])
async def test_librdkafka_produces_and_consumes_in_a_group(broker: KafkaStandin, compression: str) -> None:
    errors = await asyncio.to_thread(rdkafka_produce, broker.bootstrap, "r", 40, **{"compression.type": compression})
    assert errors == [None] * 40
    assert sorted(broker.values("r")) == sorted(f"r{i}".encode() for i in range(40))
    codecs = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
    attributes = {struct.unpack_from(">h", b.data, 21)[0] & 7 for log in broker.topics["r"] for b in log.batches}
    assert attributes == {codecs[compression]}
    got = await asyncio.to_thread(rdkafka_consume, broker.bootstrap, "r", "rg", 40)
    assert sorted(got) == sorted(f"r{i}".encode() for i in range(40))
    assert committed(broker, "rg", "r") == ends(broker, "r")


async def test_records_one_client_wrote_the_other_reads(broker: KafkaStandin) -> None:
    await aiokafka_produce(broker, "x", 20, compression_type="gzip")
    java_hash = {"compression.type": "gzip", "partitioner": "murmur2_random"}  # the Java client's partitioner
    assert await asyncio.to_thread(rdkafka_produce, broker.bootstrap, "x", 20, **java_hash) == [None] * 20
    by_rdkafka = await asyncio.to_thread(rdkafka_consume, broker.bootstrap, "x", "rd", 40)
    by_aiokafka = await aiokafka_consume(broker, "x", "ai", 40)
    expected = sorted([f"a{i}".encode() for i in range(20)] + [f"r{i}".encode() for i in range(20)])
    assert sorted(by_rdkafka) == sorted(by_aiokafka) == expected
    # aiokafka's default and librdkafka's murmur2_random hash keys alike: the same key, the same partition
    placed: dict[bytes | None, set[int]] = {}
    for partition, record in broker.records("x"):
        placed.setdefault(record.key, set()).add(partition)
    assert all(len(parts) == 1 for parts in placed.values())


async def test_two_members_share_the_partitions(broker: KafkaStandin) -> None:
    await aiokafka_produce(broker, "s", 60)
    a = AIOKafkaConsumer("s", bootstrap_servers=broker.bootstrap, group_id="share", auto_offset_reset="earliest",
                         enable_auto_commit=False)
    b = AIOKafkaConsumer("s", bootstrap_servers=broker.bootstrap, group_id="share", auto_offset_reset="earliest",
                         enable_auto_commit=False)
    await a.start()
    await b.start()
    try:
        async with asyncio.timeout(20):
            while len(a.assignment()) + len(b.assignment()) != 3 or not a.assignment() or not b.assignment():
                await asyncio.sleep(0.05)
        assert not {tp.partition for tp in a.assignment()} & {tp.partition for tp in b.assignment()}
        assert broker.groups["share"].generation >= 2 and len(broker.groups["share"].members) == 2
    finally:
        await a.stop()
        await b.stop()
    assert broker.groups["share"].members == {}  # both left (LeaveGroup)


async def test_not_leader_once_aiokafka_refreshes_metadata_and_retries(broker: KafkaStandin) -> None:
    broker.create_topic("n", 1)
    broker.fail_produce(E.NOT_LEADER_OR_FOLLOWER)
    offsets = await aiokafka_produce(broker, "n", 5)
    assert offsets == [0, 1, 2, 3, 4] and broker.values("n") == [f"a{i}".encode() for i in range(5)]
    assert broker.requests[E.PRODUCE] >= 2 and broker.requests[E.METADATA] >= 2


async def test_not_leader_once_librdkafka_retries(broker: KafkaStandin) -> None:
    broker.create_topic("n", 1)
    broker.fail_produce(E.NOT_LEADER_OR_FOLLOWER)
    assert await asyncio.to_thread(rdkafka_produce, broker.bootstrap, "n", 5) == [None] * 5
    assert sorted(broker.values("n")) == [f"r{i}".encode() for i in range(5)]
    assert broker.requests[E.PRODUCE] >= 2


async def test_dropped_connection_resend_is_stored_twice_unless_idempotent(broker: KafkaStandin) -> None:
    broker.create_topic("d", 1)
    broker.create_topic("i", 1)
    broker.drop_after_produce()
    await aiokafka_produce(broker, "d", 3, acks=1)
    assert broker.values("d") == [b"a0", b"a1", b"a2"] * 2  # stored, answer lost, sent again
    broker.drop_after_produce()
    await aiokafka_produce(broker, "i", 3, enable_idempotence=True)
    assert broker.values("i") == [b"a0", b"a1", b"a2"]  # same producer id and sequence: stored once
    errors = await asyncio.to_thread(rdkafka_produce, broker.bootstrap, "i", 3, **{"enable.idempotence": True})
    assert errors == [None] * 3 and broker.requests[E.INIT_PRODUCER_ID] == 2


async def test_request_timeout_is_a_client_side_give_up(broker: KafkaStandin) -> None:
    broker.create_topic("slow", 1)
    broker.delay(E.PRODUCE, 2.0, times=10)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=300, acks=1)
    await producer.start()
    try:
        with pytest.raises((KafkaTimeoutError, RequestTimedOutError)):
            await (await producer.send("slow", b"late"))
    finally:
        await producer.stop()


def _produce_frame(records: bytes) -> bytes:
    _, request, _ = E.APIS[E.PRODUCE]
    body = to_bytes(request, {"transactional_id": None, "acks": -1, "timeout_ms": 1000,
                              "topics": [{"name": "c", "partitions": [{"index": 0, "records": records}]}]})
    header = struct.pack(">hhih", E.PRODUCE, 7, 42, 4) + b"test"
    frame = header + body
    return struct.pack(">i", len(frame)) + frame


async def test_corrupt_batch_is_refused(broker: KafkaStandin) -> None:
    broker.create_topic("c", 1)
    await aiokafka_produce(broker, "c", 1, acks=1)
    good = broker.topics["c"][0].batches[0].data if broker.topics["c"][0].batches else None
    assert good is not None
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])  # one flipped bit: the CRC no longer matches

    def ask() -> bytes:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
            sock.sendall(_produce_frame(bad))
            size = struct.unpack(">i", sock.recv(4))[0]
            data = b""
            while len(data) < size:
                data += sock.recv(size - len(data))
            return data

    answer = await asyncio.to_thread(ask)
    reader = Reader(answer, 4)
    response = reader.read(E.APIS[E.PRODUCE][2])
    assert struct.unpack(">i", answer[:4])[0] == 42
    assert response["topics"][0]["partitions"][0]["error_code"] == E.CORRUPT_MESSAGE
    assert broker.topics["c"][0].end_offset == 1


async def test_sasl_plain_both_clients_and_wrong_credentials_refused() -> None:
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

    async with KafkaStandin(partitions=1, sasl_users={"alice": "s3cret"}) as broker:
        sasl = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "alice"}
        assert await aiokafka_produce(broker, "sec", 2, sasl_plain_password="s3cret", **sasl) == [0, 1]
        rd = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "alice",
              "sasl.password": "s3cret"}
        assert await asyncio.to_thread(rdkafka_produce, broker.bootstrap, "sec", 2, **rd) == [None] * 2
        assert sorted(broker.values("sec")) == [b"a0", b"a1", b"r0", b"r1"]
        with pytest.raises((SaslAuthenticationFailed, KafkaConnectionError)):
            await aiokafka_produce(broker, "sec", 1, sasl_plain_password="wrong", **sasl)
        plain = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)  # no SASL at all: the broker hangs up
        with pytest.raises(KafkaConnectionError):
            await plain.start()
        await plain.stop()
        assert len(broker.values("sec")) == 4
