"""The seed's example configs for the Elasticsearch and MongoDB outputs load through the
real front-ends and run: events emitted into the pipeline arrive at the default
endpoints (localhost:9200, localhost:27017), served here by the ES stand-in and a
mockupdb peer when those ports are free on this machine."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from logpipe import registry
from logpipe.pipeline import Pipeline
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput
from logpipe_plugins.outputs.mongo import MongodbOutput, MongoOutput
from tests.paths import REPO
from tests.standins.elasticsearch import ESStandIn
from tests.standins.mongo import MongoPeer

SEED_MONGO = """
<match **>
  type mongo
  database fluent
  collection test
</match>
"""
CONFIGS = REPO / "configs"
SEED_ES = 'output { elasticsearch { host => ["localhost:9200"] } }'


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    for cls in (ElasticsearchOutput, MongoOutput, MongodbOutput):
        registry.register(cls)
    yield


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def outputs_of(pipeline: Pipeline) -> list[object]:
    return [p for p in pipeline.plugins if p.kind == "output"]


def test_seed_configs_load() -> None:
    [mongo] = outputs_of(Pipeline.from_string(SEED_MONGO, state_dir="/nonexistent"))
    assert isinstance(mongo, MongoOutput)
    assert mongo._uri == "mongodb://localhost:27017/" and mongo._database == "fluent"
    [es] = outputs_of(Pipeline.from_string(SEED_ES, state_dir="/nonexistent"))
    assert isinstance(es, ElasticsearchOutput) and es._hosts == ["http://localhost:9200"]


async def test_seed_mongo_example_runs(state_dir: str) -> None:
    if not port_free(27017):
        pytest.skip("port 27017 is in use on this machine")
    peer = MongoPeer(port=27017)
    await asyncio.to_thread(peer.server.run)
    try:
        async with Pipeline.from_string(SEED_MONGO, state_dir=state_dir) as pipeline:
            ack = await pipeline.emit("web.access", {"path": "/"})
            await asyncio.wait_for(pipeline.delivered(ack), 10)
        [doc] = peer.docs("fluent", "test")
        assert doc["path"] == "/"
    finally:
        threading.Thread(target=peer.server.stop, daemon=True).start()


async def test_seed_es_example_runs(state_dir: str) -> None:
    if not port_free(9200):
        pytest.skip("port 9200 is in use on this machine")
    es = ESStandIn()
    es.port = 9200
    await es.start()
    try:
        async with Pipeline.from_string(SEED_ES, state_dir=state_dir) as pipeline:
            ack = await pipeline.emit("app", {"message": "hello"}, time=1_700_000_000_000_000_000)
            await asyncio.wait_for(pipeline.delivered(ack), 10)
        [doc] = es.docs("logstash-2023.11.14")
        assert doc["message"] == "hello"
    finally:
        await es.stop()


@pytest.mark.parametrize("name", ["tail-grok-es.conf", "forward-mongo.fluentd.conf"])
def test_example_configs_load(name: str, tmp_path: Path) -> None:
    pipeline = Pipeline.from_paths([str(CONFIGS / name)], state_dir=str(tmp_path))
    kinds = {type(p) for p in outputs_of(pipeline)}
    assert kinds & {ElasticsearchOutput, MongoOutput}
