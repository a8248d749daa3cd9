"""configs/rabbitmq-tier: shippers → a RabbitMQ topic exchange → indexers on one durable queue →
Elasticsearch, as real processes against a real rabbitmq-server and the ES stand-in. The first
indexer is killed (SIGKILL) mid-stream holding unacknowledged messages; the broker redelivers
them to the second, and every line is indexed exactly once (the deterministic _id absorbs the
redelivered duplicates)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aio_pika
import pytest

from tests.paths import CONFIGS, REPO
from tests.standins.elasticsearch import ESStandIn
from tests.support.e2e import LogpipeProcess
from tests.support.rabbitmq_server import RabbitMQServer

TIER = CONFIGS / "rabbitmq-tier"
EVENTS = 20_000


@pytest.mark.parametrize("name", ["shipper.conf", "indexer.conf"])
def test_rabbitmq_tier_configs_check(name: str) -> None:
    result = subprocess.run([sys.executable, "-m", "logpipe.cli", "check", "-f", str(TIER / name)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


async def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def queue_depth(server: RabbitMQServer) -> int:
    async with await aio_pika.connect(server.url) as conn:
        q = await (await conn.channel()).declare_queue("indexers", durable=True, passive=True)
        return q.declaration_result.message_count or 0


async def test_killed_indexer_loses_nothing_and_duplicates_nothing(
        rabbitmq_server: RabbitMQServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    es = ESStandIn()
    await es.start()
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(EVENTS)))
    monkeypatch.setenv("AMQP_PORT", str(rabbitmq_server.port))
    monkeypatch.setenv("ES_HOSTS", es.url)
    monkeypatch.setenv("SHIP_LOG", str(log))
    procs: list[LogpipeProcess] = []

    def start(config: str, name: str) -> LogpipeProcess:
        state = tmp_path / f"state-{name}"
        state.mkdir()
        proc = LogpipeProcess(TIER / config, state, tmp_path / f"{name}.log")
        procs.append(proc)
        return proc

    try:
        indexer_a = start("indexer.conf", "a")
        async with asyncio.timeout(60):  # the indexer declares and binds the queue when it connects
            while True:
                try:
                    await queue_depth(rabbitmq_server)
                    break
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    assert indexer_a.alive(), (tmp_path / "a.log").read_text()
                    await asyncio.sleep(0.1)
        start("shipper.conf", "shipper")
        await wait_for(lambda: es.count() >= 2_000, 90, "indexer-a indexing")
        held = await asyncio.to_thread(rabbitmq_server.unacknowledged, "indexers")
        indexer_a.kill9()  # mid-stream: messages delivered to it and not yet acknowledged
        assert held > 0  # the point: the dead indexer held messages nobody had acknowledged
        assert es.count() < EVENTS
        start("indexer.conf", "b")
        await wait_for(lambda: es.count() >= EVENTS, 120, "every event indexed")
        async with asyncio.timeout(30):
            while await queue_depth(rabbitmq_server) != 0:
                await asyncio.sleep(0.1)
    finally:
        for proc in procs:
            if proc.alive():
                proc.kill9()
        await es.stop()
    messages = sorted(int(d["message"].split()[1]) for d in es.docs())
    assert messages == list(range(EVENTS))  # every event, each once
    print(f"indexer-a was killed holding {held} unacknowledged messages; {es.stats.items - EVENTS} items "
          "were written twice and overwrote themselves")
