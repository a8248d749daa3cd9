"""`kafka` output (Logstash's kafka output; Fluentd's `kafka2` under that name too), on aiokafka.

Each event becomes one Kafka record: the codec's bytes (`json` by default, as Fluentd's
kafka2 formats; Logstash's default is `plain`, write `codec => plain` for that), a topic, a
key and headers. The topic is `topic_id` (sprintf; Fluentd's `topic`), else the record's
`topic_key` field (Fluentd, default `topic`), else `default_topic`, else the event's tag,
in kafka2's order. The key is `message_key` (sprintf), else the record's `message_key_key`
field, else `default_message_key`, else none (the partitioner spreads keyless records).

Delivery: a chunk counts as delivered only when the broker acknowledged every record
with the requested `acks` (`all` by default, as Logstash and Kafka clients since 3.0: the
record is on every in-sync replica). With `acks => all` the producer is idempotent by
default (Kafka 3.0's choice): a batch the client resends after a lost answer is stored
once. aiokafka retries retriable errors itself (NOT_LEADER_OR_FOLLOWER, a dropped
connection, a request timeout) within `request_timeout_ms`; after that the records still
unacknowledged are retried by the buffer engine and records the broker refuses for
what they are (too large, invalid topic) are dead-lettered with the broker's error.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any, ClassVar

import msgpack
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter
from logpipe.helpers.broker_message import encode_event
from logpipe.helpers.format_section import FormatSection, codec_from_format
from logpipe.helpers.kafka_client import KafkaConnection
from logpipe.plugin import Codec, Output, RetryableError, Setting, WriteResult, compile_sprintf


class KafkaOutput(Output):
    name = "kafka"
    doc = "Kafka producer: one record per event, acknowledged by the broker (acks => all)"
    helpers = [KafkaConnection, FormatSection]
    settings: ClassVar[list[Setting]] = [
        Setting("topic_id", "string", spellings=("topic",),
                doc="topic (sprintf); unset: the topic_key field, default_topic, the tag"),
        Setting("default_topic", "string", doc="Fluentd: topic when the record has no topic_key field"),
        Setting("topic_key", "string", default="topic", doc="Fluentd: record field naming the topic"),
        Setting("exclude_topic_key", "bool", default=False, doc="Fluentd: leave topic_key out of the message"),
        Setting("message_key", "string", doc="record key (sprintf); same key, same partition"),
        Setting("message_key_key", "string", default="message_key", doc="Fluentd: record field holding the key"),
        Setting("default_message_key", "string", doc="Fluentd: key when the record has no message_key_key field"),
        Setting("message_headers", "hash", default={}, doc="record headers: name => value (sprintf)"),
        Setting("acks", "string", default="all", choices=("0", "1", "all", "-1"), spellings=("required_acks",),
                doc="all (-1): every in-sync replica has it; 1: the leader; 0: no answer (may lose records)"),
        Setting("enable_idempotence", "bool", doc="de-duplicated resends (default: true with acks => all)"),
        Setting("compression_type", "string", default="none", choices=("none", "gzip", "snappy", "lz4", "zstd"),
                spellings=("compression_codec",), doc="record batch compression"),
        Setting("partitioner", "string", default="default", choices=("default", "round_robin", "uniform_sticky"),
                doc="default: murmur2 of the key (Java-compatible), keyless spread; round_robin; "
                    "uniform_sticky: keyless records of a chunk go to one partition"),
        Setting("batch_size", "int", default=16_384, min=1, spellings=("max_send_limit_bytes",),
                doc="bytes per partition batch"),
        Setting("linger_ms", "int", default=0, min=0, doc="wait this long for more records to batch"),
        Setting("max_request_size", "int", default=1_048_576, min=1, doc="largest request (and record) sent"),
        Setting("codec", "codec", default="json", doc="how an event becomes a record value"),
    ]
    topic_id: str | None
    default_topic: str | None
    topic_key: str
    exclude_topic_key: bool
    message_key_key: str
    default_message_key: str | None
    message_headers: dict[str, Any]
    compression_type: str
    partitioner: str
    batch_size: int
    linger_ms: int
    max_request_size: int
    codec: Codec

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.codec = codec_from_format(self, settings, "json") or self.codec
        self.acks: int | str = "all" if self.params["acks"] in ("all", "-1") else int(self.params["acks"])
        idempotent = self.params["enable_idempotence"]
        self.idempotent = self.acks == "all" if idempotent is None else idempotent
        if self.idempotent and self.acks != "all":
            raise ConfigError("enable_idempotence needs acks => all", setting=self.setting_name("enable_idempotence"))
        self._topic = compile_sprintf(self.topic_id) if self.topic_id else None
        self._topic_field = compile_getter(self.topic_key)
        key = self.params["message_key"]
        self._key = compile_sprintf(key) if key else None
        self._key_field = compile_getter(self.message_key_key)
        self._headers = [(name, compile_sprintf(str(value))) for name, value in self.message_headers.items()]
        self._options = KafkaConnection.options(self)  # ConfigError now, not at the first write
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._sticky = _StickyPartitioner() if self.partitioner == "uniform_sticky" else None

    # ---- format (pure) ---------------------------------------------------------------

    def format(self, events: list[Event]) -> list[bytes]:
        """One item per event: msgpack of [topic, key, headers, value]."""
        pack = msgpack.packb
        items = []
        for ev in events:
            topic = self._topic_of(ev)
            if self.exclude_topic_key and self._topic is None and self.topic_key in ev.record:
                record = {k: v for k, v in ev.record.items() if k != self.topic_key}
                value = encode_event(Event(ev.tag, ev.time, record, ev.meta), self.codec)
            else:
                value = encode_event(ev, self.codec)
            headers = [(name, render(ev).encode()) for name, render in self._headers]
            items.append(pack([topic, self._key_of(ev), headers, value], use_bin_type=True))
        return items

    def _topic_of(self, ev: Event) -> str:
        if self._topic is not None:
            return self._topic(ev)
        found = self._topic_field(ev)
        if found is not MISSING and found is not None:
            return str(found)
        return self.default_topic or ev.tag

    def _key_of(self, ev: Event) -> bytes | None:
        if self._key is not None:
            return self._key(ev).encode()
        found = self._key_field(ev)
        if found is not MISSING and found is not None:
            return str(found).encode()
        return self.default_message_key.encode() if self.default_message_key else None

    def describe(self, item: bytes) -> Any:
        topic, key, headers, value = msgpack.unpackb(item, raw=False)
        shown = super().describe(value)
        return {"topic": topic, "key": key.decode("utf-8", "replace") if key else None,
                "headers": {k: v.decode("utf-8", "replace") for k, v in headers}, "value": shown}

    # ---- write (I/O) -----------------------------------------------------------------

    async def _producer_started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self._options, acks=self.acks, enable_idempotence=self.idempotent,
                    compression_type=None if self.compression_type == "none" else self.compression_type,
                    max_batch_size=self.batch_size, linger_ms=self.linger_ms,
                    max_request_size=self.max_request_size, partitioner=self._partitioner(),
                )
                try:
                    await producer.start()
                except (KafkaError, OSError) as exc:
                    await producer.stop()
                    raise RetryableError(f"cannot reach the Kafka brokers {self.params['bootstrap_servers']}: "
                                         f"{exc}") from exc
                self._producer = producer
            return self._producer

    def _partitioner(self) -> Any:
        if self.partitioner == "round_robin":
            return _RoundRobinPartitioner()
        if self._sticky is not None:
            return self._sticky
        return DefaultPartitioner()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def write(self, items: list[bytes]) -> WriteResult | None:
        if not items:
            return None
        producer = await self._producer_started()
        if self._sticky is not None:
            self._sticky.next_chunk()
        unpack = msgpack.unpackb
        sent: list[Any] = []
        for item in items:
            topic, key, headers, value = unpack(item, raw=False)
            try:
                headers = [(k, v) for k, v in headers] or None  # aiokafka wants tuples
                sent.append(await producer.send(topic, value, key=key, headers=headers))
            except Exception as exc:  # noqa: BLE001 - classified below, per record
                sent.append(exc)
        pending = [s for s in sent if not isinstance(s, BaseException)]
        outcomes = iter(await asyncio.gather(*pending, return_exceptions=True))
        retry: list[int] = []
        failed: list[tuple[int, str]] = []
        reason = ""
        for index, entry in enumerate(sent):
            outcome = entry if isinstance(entry, BaseException) else next(outcomes)
            if not isinstance(outcome, BaseException):
                continue
            if _retriable(outcome):
                retry.append(index)
                reason = reason or f"{type(outcome).__name__}: {outcome}"
            else:
                failed.append((index, f"kafka refused the record: {type(outcome).__name__}: {outcome}"))
        if retry and len(retry) == len(items):
            raise RetryableError(f"kafka did not acknowledge the chunk: {reason}")
        return WriteResult(retry=retry, failed=failed) if retry or failed else None


def _retriable(exc: BaseException) -> bool:
    """I/O and the broker's passing conditions are retried; the rest is the record's own fault."""
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError, OSError, TimeoutError)):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


class _RoundRobinPartitioner:
    """Every record to the next partition, key or not (Logstash's round_robin)."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        choices = available or all_partitions
        return choices[next(self._next) % len(choices)]


class _StickyPartitioner:
    """Keyed records by murmur2 (as the default partitioner); keyless ones of one chunk
    to one partition, a new one per chunk (uniform_sticky: fewer, larger batches)."""

    def __init__(self) -> None:
        self._pick = random.random()

    def next_chunk(self) -> None:
        self._pick = random.random()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is not None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        choices = available or all_partitions
        return choices[int(self._pick * len(choices))]


class Kafka2Output(KafkaOutput):
    """The same output under Fluentd's plugin name (`<match> @type kafka2`)."""

    name = "kafka2"
