"""Where the Kafka tests send their records: the wire-protocol stand-in
(tests/standins/kafka), or a real broker when `LOGPIPE_TEST_KAFKA` names its bootstrap
address (`host:port`). The same scenario runs against either; what is read back is
read from the stand-in's own log, or from the real broker with a groupless aiokafka
consumer. Scenarios that arm a broker failure need the stand-in and say so when skipped.
Topic and group names are unique per test, so a real broker's earlier runs never mix in."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.standins.kafka import KafkaStandin

REAL_BROKER = os.environ.get("LOGPIPE_TEST_KAFKA") or os.environ.get("LOGPIPE_TEST_KAFKA_BOOTSTRAP")


@dataclass
class KafkaTarget:
    bootstrap: str
    standin: KafkaStandin | None
    partitions: int = 3
    _suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def name(self, base: str) -> str:
        return f"{base}-{self._suffix}"

    def needs_standin(self) -> KafkaStandin:
        if self.standin is None:
            pytest.skip("arms a broker failure: runs against the stand-in only")
        return self.standin

    async def create_topic(self, topic: str) -> None:
        if self.standin is not None:
            self.standin.create_topic(topic, self.partitions)
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, self.partitions, 1)])
        finally:
            await admin.close()

    async def records(self, topic: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
        """(partition, offset, key, value) of every record of the topic."""
        if self.standin is not None:
            return [(p, r.offset, r.key, r.value) for p, r in self.standin.records(topic)]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
            if not parts:
                return []
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            await consumer.seek_to_beginning(*parts)
            out = []
            while any(await consumer.position(tp) < ends[tp] for tp in parts):
                for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                    out += [(tp.partition, m.offset, m.key, m.value) for m in batch]
            return sorted(out)
        finally:
            await consumer.stop()

    async def values(self, topic: str) -> list[bytes | None]:
        return [value for _, _, _, value in await self.records(topic)]

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """partition → committed offset of the group."""
        if self.standin is not None:
            found = self.standin.groups.get(group)
            return {p: o for (t, p), (o, _) in (found.offsets.items() if found else []) if t == topic}
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            out = {}
            for p in consumer.partitions_for_topic(topic) or set():
                offset = await consumer.committed(TopicPartition(topic, p))
                if offset is not None:
                    out[p] = offset
            return out
        finally:
            await consumer.stop()

    async def end_offsets(self, topic: str) -> dict[int, int]:
        if self.standin is not None:
            return {n: log.end_offset for n, log in enumerate(self.standin.topics.get(topic, []))}
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
            return {tp.partition: o for tp, o in (await consumer.end_offsets(parts)).items()}
        finally:
            await consumer.stop()
