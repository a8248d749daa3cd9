"""OpenSearch output against the stand-in answering as OpenSearch 2.x (no X-Elastic-Product
header, its version body), shown with the real opensearch-py client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opensearchpy import AsyncOpenSearch

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import WriteResult
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput
from logpipe_plugins.outputs.opensearch import OpensearchOutput
from tests.standins.elasticsearch import ESStandIn

T0 = 1_700_000_000_123_456_789


@pytest.fixture
async def os_server() -> AsyncIterator[ESStandIn]:
    server = ESStandIn("2.17.1", flavor="opensearch", basic_auth=("admin", "S3cret!x"))
    await server.start()
    yield server
    await server.stop()


async def send(out: ElasticsearchOutput | OpensearchOutput, batch: list[Event]) -> WriteResult | None:
    try:
        return await out.write(out.format(batch))
    finally:
        await out.close()


async def test_standin_answers_as_opensearch_to_opensearch_py(os_server: ESStandIn) -> None:
    client = AsyncOpenSearch([os_server.url], http_auth=("admin", "S3cret!x"))
    try:
        info = await client.info()
        assert info["version"]["distribution"] == "opensearch"
        reply = await client.bulk(body=[{"index": {"_index": "x"}}, {"a": 1}])
        assert reply["items"][0]["index"]["status"] == 201
        assert "X-Elastic-Product" not in os_server.headers_seen[-1]
    finally:
        await client.close()


async def test_opensearch_output_indexes_with_template_and_outcomes(os_server: ESStandIn) -> None:
    out = OpensearchOutput(hosts=[os_server.url], user="admin", password="S3cret!x")
    assert await send(out, [Event("a", T0, {"status": 200})]) is None
    assert os_server.docs("logstash-2023.11.14")[0]["status"] == 200
    assert "logstash" in os_server.templates
    out = OpensearchOutput(hosts=[os_server.url], auth_type={"type": "basic", "user": "admin",
                                                             "password": "S3cret!x"})
    result = await send(out, [Event("a", T0 + 1, {"status": "oops"})])
    assert isinstance(result, WriteResult) and "document_parsing_exception" in result.failed[0][1]


async def test_fluentd_opensearch_names_and_data_streams(os_server: ESStandIn) -> None:
    out = OpensearchOutput(host=os_server.url, user="admin", password="S3cret!x", logstash_format=True,
                           logstash_prefix="fd", id_key="rid", include_tag_key=True)
    assert await send(out, [Event("app", T0, {"rid": "r1"})]) is None
    assert os_server.actions[-1]["_id"] == "r1" and os_server.docs("fd-2023.11.14")[0]["tag"] == "app"
    stream = OpensearchOutput(hosts=[os_server.url], user="admin", password="S3cret!x", data_stream="true")
    assert await send(stream, [Event("app", T0, {"m": 1})]) is None
    assert os_server.docs("logs-generic-default")


async def test_elasticsearch_client_refuses_opensearch(os_server: ESStandIn) -> None:
    """Why the opensearch output exists: elasticsearch-py refuses the server."""
    out = ElasticsearchOutput(hosts=[os_server.url], user="admin", password="S3cret!x")
    with pytest.raises(Exception, match="not Elasticsearch"):
        await send(out, [Event("a", T0, {})])


def test_ilm_is_refused_on_opensearch() -> None:
    with pytest.raises(ConfigError, match="ISM") as err:
        OpensearchOutput(ilm_enabled="true")
    assert err.value.setting == "ilm_enabled"
