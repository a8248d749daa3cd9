"""configs/broker-tier: shippers → Redis Streams → two indexers in one consumer group →
Elasticsearch, as real processes against a real redis-server and the ES stand-in. An
indexer is killed (SIGKILL) mid-stream; the other takes its pending entries over and
every event is indexed exactly once (ids are deterministic, so the entries the dead one
had in flight and the survivor redelivers overwrite themselves)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import CONFIGS, REPO
from tests.standins.elasticsearch import ESStandIn
from tests.support.e2e import LogpipeProcess
from tests.support.redis_server import RedisServer

TIER = CONFIGS / "broker-tier"
EVENTS = 20_000


@pytest.mark.parametrize("name", ["shipper.conf", "indexer.conf"])
def test_broker_tier_configs_check(name: str) -> None:
    result = subprocess.run([sys.executable, "-m", "logpipe.cli", "check", "-f", str(TIER / name)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


async def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_killed_indexer_loses_nothing_and_duplicates_nothing(
        redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    es = ESStandIn()
    await es.start()
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(EVENTS)))
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("ES_HOSTS", es.url)
    monkeypatch.setenv("SHIP_LOG", str(log))
    monkeypatch.setenv("CLAIM_IDLE", "1s")
    monkeypatch.setenv("CLAIM_INTERVAL", "200ms")
    procs: list[LogpipeProcess] = []

    def start(config: str, name: str, **env: str) -> LogpipeProcess:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        state = tmp_path / f"state-{name}"
        state.mkdir()
        proc = LogpipeProcess(TIER / config, state, tmp_path / f"{name}.log")
        procs.append(proc)
        return proc

    try:
        indexer_a = start("indexer.conf", "a", INDEXER_NAME="indexer-a")
        start("shipper.conf", "shipper")
        await wait_for(lambda: es.count() >= 2_000, 60, "indexer-a indexing")
        indexer_a.kill9()  # mid-stream: some entries read, not yet acknowledged
        assert es.count() < EVENTS
        r = redis_server.client()
        left_by_a = {c["name"]: c["pending"] for c in r.xinfo_consumers("logs", "indexers")}[b"indexer-a"]
        assert left_by_a > 0  # the point: the dead indexer held entries nobody had acknowledged
        start("indexer.conf", "b", INDEXER_NAME="indexer-b")
        await wait_for(lambda: es.count() >= EVENTS, 90, "every event indexed")
        await wait_for(lambda: r.xpending("logs", "indexers")["pending"] == 0, 30, "all entries acknowledged")
        assert r.xlen("logs") == EVENTS  # the shipper sent each line once
    finally:
        for proc in procs:
            if proc.alive():
                proc.kill9()
        await es.stop()
    messages = sorted(int(d["message"].split()[1]) for d in es.docs())
    assert messages == list(range(EVENTS))  # every event, each once
    assert es.stats.items >= EVENTS
    print(f"indexer-a died with {left_by_a} entries pending; indexer-b took them over")
