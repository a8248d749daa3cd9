"""configs/kafka-tier: a shipper (file → Kafka) and indexers in one consumer group (Kafka →
Elasticsearch), as real processes against the Kafka wire-protocol stand-in (or a real broker
with LOGPIPE_TEST_KAFKA) and the ES stand-in. The indexer is killed (SIGKILL) mid-stream,
holding records it read and had not committed; a new one resumes at the committed offsets:
the topic holds each line once (idempotent producer), and every event is indexed once
(the records read again overwrite themselves: deterministic ids)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.paths import CONFIGS, REPO
from tests.standins.elasticsearch import ESStandIn
from tests.support.e2e import LogpipeProcess
from tests.support.kafka import KafkaTarget

TIER = CONFIGS / "kafka-tier"
EVENTS = 20_000


@pytest.mark.parametrize("name", ["shipper.conf", "indexer.conf"])
def test_kafka_tier_configs_check(name: str) -> None:
    result = subprocess.run([sys.executable, "-m", "logpipe.cli", "check", "-f", str(TIER / name)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr


async def wait_for(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


async def test_killed_indexer_resumes_at_the_committed_offset_nothing_lost(
        kafka: KafkaTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if kafka.standin is None:
        pytest.skip("the topic name is fixed by the config: runs against the stand-in")
    kafka.standin.create_topic("logs", 3)
    es = ESStandIn()
    await es.start()
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(EVENTS)))
    for key, value in {"KAFKA": kafka.bootstrap, "ES_HOSTS": es.url, "SHIP_LOG": str(log),
                       "SESSION_TIMEOUT_MS": "2000", "HEARTBEAT_MS": "300", "COMMIT_INTERVAL_MS": "300"}.items():
        monkeypatch.setenv(key, value)
    procs: list[LogpipeProcess] = []

    def start(config: str, name: str) -> LogpipeProcess:
        state = tmp_path / f"state-{name}"
        state.mkdir()
        proc = LogpipeProcess(TIER / config, state, tmp_path / f"{name}.log")
        procs.append(proc)
        return proc

    async def committed() -> int:
        return sum((await kafka.committed("indexers", "logs")).values())

    try:
        first = start("indexer.conf", "first")
        start("shipper.conf", "shipper")

        async def indexing() -> bool:
            return es.count() >= 3_000 and await committed() > 0
        await wait_for(indexing, 90)
        first.kill9()  # mid-stream: records read, some indexed, not all of them committed
        at_kill = await committed()
        assert at_kill <= es.count() < EVENTS  # nothing is committed before Elasticsearch has it
        start("indexer.conf", "second")

        async def all_indexed() -> bool:
            return es.count() >= EVENTS and await committed() == EVENTS
        await wait_for(all_indexed, 120)
    finally:
        for proc in procs:
            if proc.alive():
                proc.kill9()
        await es.stop()
    assert len(kafka.standin.values("logs")) == EVENTS  # the shipper stored each line once
    messages = sorted(int(d["message"].split()[1]) for d in es.docs())
    assert messages == list(range(EVENTS))  # every event, each once
    assert orjson.loads(kafka.standin.values("logs")[0] or b"{}")["host"]["name"]
