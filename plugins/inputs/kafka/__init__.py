"""`kafka` input: Logstash's kafka input (Fluentd's `kafka_group` under that name too), on aiokafka.

`consumer_threads` consumers join the consumer group `group_id` and read `topics` (or every
topic matching `topics_pattern`), up to `max_poll_records` records per batch. Each record's
value goes through the codec (`json` by default, as Fluentd's in_kafka_group parses; write
`codec => plain` for Logstash's default): a value that is not valid becomes a `message`
tagged `_jsonparsefailure`, is delivered and committed like any other, and never stalls
the partition. The tag is `tag`, or the topic name with Fluentd's `add_prefix` /
`add_suffix`. `decorate_events => basic` adds `[@metadata][kafka]` (topic,
consumer_group, partition, offset, key, timestamp); `extended` adds the headers.

Offsets are committed only for records whose events the pipeline acknowledged: per
partition, the end of the contiguous acknowledged prefix (offsets.py), every
`auto_commit_interval_ms` (or after each acknowledgement with `enable_auto_commit =>
false`), at shutdown, and when a rebalance takes partitions away: the input then waits
up to `rebalance_drain_timeout` for their batches in flight, commits what is done and
lets go. After a crash the group resumes at the committed offsets: records read but not
acknowledged are read again (duplicates possible, loss not).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from logpipe.event import Event
from logpipe.helpers.broker_message import decode_payload
from logpipe.helpers.kafka_client import KafkaConnection
from logpipe.plugin import Codec, ConfigError, Input, InputContext, Setting
from logpipe.registry import create_codec

from .offsets import Offsets

_ASSIGNORS = {"range": RangePartitionAssignor, "round_robin": RoundRobinPartitionAssignor,
              "sticky": StickyPartitionAssignor}
_RECONNECT_WAIT = 1.0
_SHUTDOWN_GRACE = 5.0
DECODE_FAILURE_TAG = "_kafkadecodefailure"


class KafkaInput(Input):
    name = "kafka"
    doc = "Kafka consumer group: offsets committed only once the events are acknowledged"
    helpers = [KafkaConnection]
    settings: ClassVar[list[Setting]] = [
        Setting("topics", "array", default=["logstash"], doc="topics to read (Fluentd: comma-separated)"),
        Setting("topics_pattern", "string", doc="read every topic matching this regex (instead of topics)"),
        Setting("group_id", "string", default="logstash", spellings=("consumer_group",),
                doc="consumer group (Logstash's default, so a migrated pipeline keeps its offsets)"),
        Setting("auto_offset_reset", "string", choices=("earliest", "latest", "none"),
                doc="where a group without a committed offset starts (default latest)"),
        Setting("start_from_beginning", "bool", doc="Fluentd: true = earliest, false = latest"),
        Setting("consumer_threads", "int", default=1, min=1, max=64, doc="consumers this input runs in the group"),
        Setting("max_poll_records", "int", default=500, min=1, doc="records per batch at most"),
        Setting("poll_timeout_ms", "int", default=100, min=1, doc="how long one poll waits for records"),
        Setting("fetch_max_wait_ms", "int", default=500, min=0, doc="how long the broker holds a fetch for data"),
        Setting("fetch_min_bytes", "int", default=1, min=1, doc="bytes the broker waits for before answering"),
        Setting("fetch_max_bytes", "int", default=52_428_800, min=1, doc="bytes one fetch answer holds at most"),
        Setting("max_partition_fetch_bytes", "int", default=1_048_576, min=1, doc="bytes per partition per fetch"),
        Setting("session_timeout_ms", "int", default=10_000, min=1, doc="the group drops a consumer silent this long"),
        Setting("heartbeat_interval_ms", "int", default=3_000, min=1, doc="heartbeat period"),
        Setting("max_poll_interval_ms", "int", default=300_000, min=1,
                doc="the group drops a consumer that does not poll this long (a stalled pipeline)"),
        Setting("partition_assignment_strategy", "string", default="range", choices=tuple(_ASSIGNORS),
                doc="how the group leader spreads partitions: range, round_robin, sticky"),
        Setting("isolation_level", "string", default="read_uncommitted",
                choices=("read_uncommitted", "read_committed"), doc="read_committed skips aborted transactions"),
        Setting("enable_auto_commit", "bool", default=True,
                doc="commit acknowledged offsets every auto_commit_interval_ms (false: after each acknowledgement)"),
        Setting("auto_commit_interval_ms", "int", default=5_000, min=1, doc="how often acknowledged offsets commit"),
        Setting("rebalance_drain_timeout", "duration", default=10.0, min=0,
                doc="on a rebalance, how long to wait for revoked partitions' batches in flight"),
        Setting("decorate_events", "string", default="none", choices=("none", "basic", "extended", "false", "true"),
                doc="add [@metadata][kafka]: basic (topic, partition, offset, key, timestamp), extended (+ headers)"),
        Setting("codec", "codec", default="json", doc="how a record value becomes events"),
        Setting("format", "string", choices=("json", "text"), doc="Fluentd: json or text (instead of codec)"),
        Setting("message_key", "string", default="message", doc="Fluentd format text: the field of the value"),
        Setting("add_prefix", "string", doc="Fluentd: tag = add_prefix.topic"),
        Setting("add_suffix", "string", doc="Fluentd: tag = topic.add_suffix"),
    ]
    topics_pattern: str | None
    group_id: str
    consumer_threads: int
    max_poll_records: int
    poll_timeout_ms: int
    enable_auto_commit: bool
    auto_commit_interval_ms: int
    rebalance_drain_timeout: float
    codec: Codec

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self.topic_list = [t.strip() for entry in p["topics"] for t in str(entry).split(",") if t.strip()]
        if not self.topic_list and not self.topics_pattern:
            raise ConfigError("no topic to read: set topics or topics_pattern", setting=self.setting_name("topics"))
        if p["format"] is not None and "codec" not in settings:
            self.codec = create_codec("json") if p["format"] == "json" else create_codec("plain")
        self._text_field = p["message_key"] if p["format"] == "text" else None
        self.decorate = {"true": "basic", "false": "none"}.get(p["decorate_events"], p["decorate_events"])
        reset = p["auto_offset_reset"]
        if reset is None and p["start_from_beginning"] is not None:
            reset = "earliest" if p["start_from_beginning"] else "latest"
        self.auto_offset_reset = reset or "latest"
        self._options = KafkaConnection.options(self)

    async def run(self, ctx: InputContext) -> None:
        await asyncio.gather(*(self._consumer_loop(ctx, n) for n in range(self.consumer_threads)))

    def _consumer(self, n: int) -> AIOKafkaConsumer:
        p = self.params
        options = dict(self._options)
        if self.consumer_threads > 1:
            options["client_id"] = f"{options['client_id']}-{n}"
        return AIOKafkaConsumer(
            **options, group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset, max_poll_records=self.max_poll_records,
            fetch_max_wait_ms=p["fetch_max_wait_ms"], fetch_min_bytes=p["fetch_min_bytes"],
            fetch_max_bytes=p["fetch_max_bytes"], max_partition_fetch_bytes=p["max_partition_fetch_bytes"],
            session_timeout_ms=p["session_timeout_ms"], heartbeat_interval_ms=p["heartbeat_interval_ms"],
            max_poll_interval_ms=p["max_poll_interval_ms"], isolation_level=p["isolation_level"],
            partition_assignment_strategy=(_ASSIGNORS[p["partition_assignment_strategy"]],),
        )

    async def _consumer_loop(self, ctx: InputContext, n: int) -> None:
        """One group member; started again after a failure to reach the brokers."""
        while True:
            consumer = self._consumer(n)
            member = _Member(self, consumer)
            if self.topics_pattern:
                consumer.subscribe(pattern=self.topics_pattern, listener=member)
            else:
                consumer.subscribe(self.topic_list, listener=member)
            try:
                await consumer.start()
            except (KafkaError, OSError) as exc:
                self.log.warning("kafka %s: cannot join group %s (%s); retrying in %ss",
                                 self.params["bootstrap_servers"], self.group_id, exc, _RECONNECT_WAIT)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await asyncio.sleep(_RECONNECT_WAIT)
                continue
            try:
                await member.consume(ctx)
            finally:
                await member.finish()

    def events_of(self, record: ConsumerRecord[Any, Any]) -> list[Event]:
        tag = self.params["tag"] or _fluentd_tag(record.topic, self.params["add_prefix"], self.params["add_suffix"])
        value = record.value if record.value is not None else b""
        try:
            events = decode_payload(value, self.codec, tag)
        except Exception as exc:  # noqa: BLE001 - a value the codec chokes on costs only itself
            self.log.warning("kafka %s/%d@%d: cannot decode: %s", record.topic, record.partition, record.offset, exc)
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            events = [Event(tag, None, {"message": text, "tags": [DECODE_FAILURE_TAG]})]
        if self._text_field is not None and self._text_field != "message":
            for ev in events:
                if "message" in ev.record:
                    ev.record[self._text_field] = ev.record.pop("message")
        if self.decorate != "none":
            self._decorate(events, record)
        return events

    def _decorate(self, events: list[Event], record: ConsumerRecord[Any, Any]) -> None:
        info: dict[str, Any] = {
            "topic": record.topic, "consumer_group": self.group_id, "partition": record.partition,
            "offset": record.offset, "key": record.key.decode("utf-8", "replace") if record.key else None,
            "timestamp": record.timestamp,
        }
        if self.decorate == "extended":
            info["headers"] = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                               for k, v in record.headers}
        for ev in events:
            if ev.meta is None:
                ev.meta = {}
            ev.meta["kafka"] = dict(info)


class _Member(ConsumerRebalanceListener):  # type: ignore[misc]
    """One consumer of the group: its batches, its acknowledged offsets and their commits."""

    def __init__(self, plugin: KafkaInput, consumer: AIOKafkaConsumer) -> None:
        self.plugin = plugin
        self.consumer = consumer
        self.log = plugin.log
        self.progress = asyncio.Event()
        self.offsets: Offsets[TopicPartition] = Offsets(self.progress.set)
        self._commit_lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None

    async def consume(self, ctx: InputContext) -> None:
        self._committer = asyncio.create_task(self._commit_loop())
        plugin = self.plugin
        while True:
            batches = await self.consumer.getmany(timeout_ms=plugin.poll_timeout_ms,
                                                  max_records=plugin.max_poll_records)
            if not batches:
                continue
            events: list[Event] = []
            stretches: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    events.extend(plugin.events_of(record))
                stretches[tp] = records[-1].offset + 1
            await ctx.emit(events, self.offsets.track(stretches))

    async def finish(self) -> None:
        """Shutdown: commit what is acknowledged (briefly), leave the group."""
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
        with contextlib.suppress(TimeoutError, KafkaError, OSError):
            async with asyncio.timeout(_SHUTDOWN_GRACE):
                await self.commit()
        with contextlib.suppress(Exception):
            await self.consumer.stop()

    async def _commit_loop(self) -> None:
        plugin = self.plugin
        interval = plugin.auto_commit_interval_ms / 1000 if plugin.enable_auto_commit else 0.0
        while True:
            await self.progress.wait()
            self.progress.clear()
            try:
                await self.commit()
            except (KafkaError, OSError) as exc:
                self.log.warning("kafka group %s: commit failed (%s); retrying", plugin.group_id, exc)
                self.progress.set()
                await asyncio.sleep(max(interval, 0.5))
                continue
            if interval:
                await asyncio.sleep(interval)

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        async with self._commit_lock:
            assigned = self.consumer.assignment()
            wanted = assigned if partitions is None else partitions & assigned
            offsets = self.offsets.committable(wanted)
            if not offsets:
                return
            try:
                await self.consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
            except (CommitFailedError, IllegalStateError) as exc:
                # The group moved on (rebalanced without us): the new owner resumes from the last commit.
                self.log.info("kafka group %s: commit refused (%s); records since are read again",
                              self.plugin.group_id, exc)
                return
            self.offsets.committed(offsets)

    # ---- rebalances (aiokafka calls these around a rejoin) ---------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        revoked = set(revoked)
        if not revoked:
            return
        deadline = asyncio.get_running_loop().time() + self.plugin.rebalance_drain_timeout
        while self.offsets.in_flight(revoked) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        try:
            await self.commit(revoked)
        except (KafkaError, OSError) as exc:
            self.log.warning("kafka group %s: commit on rebalance failed (%s)", self.plugin.group_id, exc)
        left = self.offsets.in_flight(revoked)
        if left:
            self.log.info("kafka group %s: %d batches of revoked partitions still in flight; "
                          "their records will be read again by the new owner", self.plugin.group_id, left)
        self.offsets.revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.offsets.assign(set(assigned))


def _fluentd_tag(topic: str, prefix: str | None, suffix: str | None) -> str:
    return ".".join(part for part in (prefix, topic, suffix) if part)


class KafkaGroupInput(KafkaInput):
    """The same input under Fluentd's plugin name (`<source> @type kafka_group`)."""

    name = "kafka_group"


__all__ = ["KafkaGroupInput", "KafkaInput"]
