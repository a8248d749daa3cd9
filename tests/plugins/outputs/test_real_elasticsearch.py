"""The stand-in scenarios against a real Elasticsearch 8.x/9.x cluster.

Skipped unless LOGPIPE_TEST_ES_URL is set (e.g. http://elastic:changeme@127.0.0.1:9200).
Each test works in its own index (logpipe-test-<random>) and deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from elasticsearch import AsyncElasticsearch

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.event import Event
from logpipe.plugin import WriteResult
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput

URL = os.environ.get("LOGPIPE_TEST_ES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="LOGPIPE_TEST_ES_URL is not set")
T0 = 1_700_000_000_000_000_000


def output_settings() -> dict[str, object]:
    assert URL is not None
    parts = urlsplit(URL)
    host = f"{parts.scheme}://{parts.hostname}:{parts.port or 9200}"
    settings: dict[str, object] = {"hosts": [host], "ssl_verification_mode": "none"}
    if parts.username:
        settings["user"] = parts.username
        settings["password"] = parts.password or ""
    return settings


@pytest.fixture
async def admin() -> AsyncIterator[AsyncElasticsearch]:
    settings = output_settings()
    auth = (settings["user"], settings["password"]) if "user" in settings else None
    client = AsyncElasticsearch(settings["hosts"], basic_auth=auth, verify_certs=False)  # type: ignore[arg-type]
    yield client
    await client.close()


@pytest.fixture
async def index(admin: AsyncElasticsearch) -> AsyncIterator[str]:
    name = f"logpipe-test-{uuid.uuid4().hex[:12]}"
    await admin.indices.create(index=name, mappings={"properties": {"seq": {"type": "long"}}})
    yield name
    await admin.indices.delete(index=name, ignore_unavailable=True)


async def count(admin: AsyncElasticsearch, index: str) -> int:
    await admin.indices.refresh(index=index)
    return int((await admin.count(index=index))["count"])


def events(n: int, start: int = 0) -> list[Event]:
    return [Event("app", T0 + i * 1000, {"seq": i, "message": f"m{i}"}) for i in range(start, start + n)]


async def test_index_then_rewrite_is_idempotent(admin: AsyncElasticsearch, index: str) -> None:
    out = ElasticsearchOutput(index=index, **output_settings())
    try:
        assert await out.write(out.format(events(20))) is None
        assert await out.write(out.format(events(20))) is None
    finally:
        await out.close()
    assert await count(admin, index) == 20
    hit = (await admin.search(index=index, query={"term": {"seq": 3}}))["hits"]["hits"][0]["_source"]
    assert hit["@timestamp"].endswith("Z") and hit["message"] == "m3"


async def test_create_conflicts_are_delivered(admin: AsyncElasticsearch, index: str) -> None:
    out = ElasticsearchOutput(index=index, action="create", **output_settings())
    try:
        assert await out.write(out.format(events(5))) is None
        assert await out.write(out.format(events(5))) is None
    finally:
        await out.close()
    assert await count(admin, index) == 5


async def test_mapping_error_reason_from_the_server(admin: AsyncElasticsearch, index: str) -> None:
    out = ElasticsearchOutput(index=index, **output_settings())
    try:
        result = await out.write(out.format([Event("a", T0, {"seq": 1}), Event("a", T0, {"seq": "not a number"})]))
    finally:
        await out.close()
    assert isinstance(result, WriteResult) and result.retry == []
    [(i, reason)] = result.failed
    assert i == 1 and reason.startswith("400 ") and "seq" in reason


async def test_no_loss_no_duplicates_through_the_engine(admin: AsyncElasticsearch, index: str,
                                                          state_dir: str) -> None:
    out = ElasticsearchOutput(index=index, bulk_max_docs=200, flush_interval=0, retry_wait=0.05,
                              retry_forever=True, **output_settings())
    runner = OutputRunner(out, state_dir=state_dir)
    await runner.start()
    for start in range(0, 2000, 250):
        ack = Ack()
        await runner.put(events(250, start), ack)
        ack.release()
    # the same events again, as a replay after a crash would send them
    await runner.put(events(500, 0), Ack())
    await asyncio.wait_for(runner.flush(), 60)
    await runner.stop(10)
    assert await count(admin, index) == 2000


# ---- templates, ILM, data streams: the stand-in scenarios of test_elasticsearch_setup.py ----


async def test_data_stream_on_a_real_cluster(admin: AsyncElasticsearch) -> None:
    dataset = f"logpipetest{uuid.uuid4().hex[:8]}"
    name = f"logs-{dataset}-default"
    out = ElasticsearchOutput(data_stream="true", data_stream_dataset=dataset, **output_settings())
    try:
        assert await out.write(out.format(events(3))) is None
        assert await out.write(out.format(events(3))) is None  # 409s: delivered
        index_into = ElasticsearchOutput(index=name, **output_settings())
        result = await index_into.write(index_into.format(events(1, 9)))
        await index_into.close()
        assert isinstance(result, WriteResult) and "op_type of create" in result.failed[0][1]
        stream = (await admin.indices.get_data_stream(name=name))["data_streams"][0]
        assert stream["indices"][0]["index_name"].startswith(f".ds-{name}-")
        await admin.indices.refresh(index=name)
        assert (await admin.count(index=name))["count"] == 3
    finally:
        await out.close()
        await admin.indices.delete_data_stream(name=name)


async def test_ilm_bootstrap_on_a_real_cluster(admin: AsyncElasticsearch) -> None:
    alias = f"logpipetest-{uuid.uuid4().hex[:8]}"
    out = ElasticsearchOutput(ilm_enabled="true", ilm_rollover_alias=alias, template_name=alias,
                              **output_settings())
    try:
        assert await out.write(out.format(events(2))) is None
        aliases = (await admin.indices.get_alias(name=alias)).body
        [(first, spec)] = aliases.items()
        assert first.startswith(alias + "-") and spec["aliases"][alias]["is_write_index"] is True
        settings = (await admin.indices.get_settings(index=first)).body[first]["settings"]["index"]
        assert settings["lifecycle"]["name"] == "logstash-policy"
        template = (await admin.indices.get_index_template(name=alias))["index_templates"][0]
        assert template["index_template"]["index_patterns"] == [f"{alias}-*"]
    finally:
        await out.close()
        await admin.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        await admin.indices.delete_index_template(name=alias)
