"""Index templates, ILM, data streams and the update action, against the ES stand-in; the
stand-in's new endpoints shown faithful with the real elasticsearch-py client first."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import elasticsearch
import pytest
from elasticsearch import AsyncElasticsearch

from logpipe import settings as settings_module
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers import search_connection
from logpipe.plugin import WriteResult
from logpipe_plugins.outputs.elasticsearch import ElasticsearchDataStreamOutput, ElasticsearchOutput
from tests.standins.elasticsearch import ESStandIn

T0 = 1_700_000_000_123_456_789
TODAY = time.strftime("%Y.%m.%d", time.gmtime())


@pytest.fixture
async def es() -> AsyncIterator[ESStandIn]:
    server = ESStandIn("8.15.3")
    await server.start()
    yield server
    await server.stop()


async def send(out: ElasticsearchOutput, batch: list[Event]) -> WriteResult | None:
    try:
        return await out.write(out.format(batch))
    finally:
        await out.close()


# ---- the stand-in, as the real client sees it ----------------------------------------------


async def test_standin_templates_policies_aliases_and_streams_with_the_real_client(es: ESStandIn) -> None:
    client = AsyncElasticsearch(es.url)
    try:
        await client.indices.put_index_template(name="t1", index_patterns=["app-*"], priority=300,
                                                template={"settings": {"number_of_shards": 2}})
        assert (await client.indices.exists_index_template(name="t1")).body is True
        assert (await client.indices.exists_index_template(name="nope")).body is False
        got = await client.indices.get_index_template(name="t1")
        assert got["index_templates"][0]["index_template"]["priority"] == 300
        with pytest.raises(elasticsearch.BadRequestError, match="already exists"):
            await client.indices.put_index_template(name="t1", index_patterns=["app-*"], create=True)
        with pytest.raises(elasticsearch.NotFoundError, match="Lifecycle policy not found"):
            await client.ilm.get_lifecycle(name="p1")
        await client.ilm.put_lifecycle(name="p1", policy={"phases": {"hot": {"actions": {}}}})
        assert (await client.ilm.get_lifecycle(name="p1"))["p1"]["version"] == 1

        made = await client.indices.create(index="<app-{now/d}-000001>", aliases={"app": {"is_write_index": True}})
        assert made["index"] == f"app-{TODAY}-000001"
        assert es.index_settings[made["index"]] == {"number_of_shards": 2}  # the template applied
        assert (await client.indices.exists_alias(name="app")).body is True
        with pytest.raises(elasticsearch.BadRequestError, match="resource_already_exists_exception"):
            await client.indices.create(index="<app-{now/d}-000001>")
        reply = await client.bulk(operations=[{"index": {"_index": "app"}}, {"@timestamp": "2026-01-01", "n": 1},
                                              {"create": {"_index": "logs-web-prod"}}, {"@timestamp": "x", "n": 2},
                                              {"index": {"_index": "logs-web-prod"}}, {"@timestamp": "x", "n": 3},
                                              {"create": {"_index": "logs-web-prod"}}, {"n": 4}])
        statuses = [next(iter(i.values()))["status"] for i in reply["items"]]
        assert statuses == [201, 201, 400, 400]
        assert reply["items"][0]["index"]["_index"] == f"app-{TODAY}-000001"  # through the write alias
        assert "op_type of create" in reply["items"][2]["index"]["error"]["reason"]
        assert "timestamp field [@timestamp] is missing" in reply["items"][3]["create"]["error"]["reason"]
        stream = (await client.indices.get_data_stream(name="logs-web-prod"))["data_streams"][0]
        assert stream["template"] == "logs" and stream["indices"][0]["index_name"].startswith(".ds-logs-web-prod-")
        assert [d["n"] for d in es.docs("logs-web-prod")] == [2]
    finally:
        await client.close()


# ---- templates ------------------------------------------------------------------------------


async def test_default_template_is_installed_once_and_kept(es: ESStandIn) -> None:
    assert await send(ElasticsearchOutput(hosts=[es.url]), [Event("a", T0, {"m": 1})]) is None
    template = es.templates["logstash"]
    assert template["index_patterns"] == ["logstash-*"]
    assert template["template"]["mappings"]["properties"]["@timestamp"] == {"type": "date"}
    es.templates["logstash"]["priority"] = 7  # an operator's change survives a restart
    await send(ElasticsearchOutput(hosts=[es.url]), [Event("a", T0, {"m": 2})])
    assert es.templates["logstash"]["priority"] == 7
    await send(ElasticsearchOutput(hosts=[es.url], template_overwrite=True), [Event("a", T0, {"m": 3})])
    assert es.templates["logstash"]["priority"] == 200


async def test_no_template_for_other_indices_or_when_not_managed(es: ESStandIn) -> None:
    await send(ElasticsearchOutput(hosts=[es.url], index="app"), [Event("a", T0, {})])
    await send(ElasticsearchOutput(hosts=[es.url], manage_template=False), [Event("a", T0, {})])
    assert set(es.templates) == {"logs"}


async def test_template_file_legacy_api_and_fluentd_names(es: ESStandIn, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"index_patterns": ["app-*"], "template": {"settings": {"number_of_replicas": 0}},
                                "priority": 50}))
    await send(ElasticsearchOutput(hosts=[es.url], index="app-x", template=str(path), template_name="app",
                                   template_api="legacy"), [Event("a", T0, {})])
    assert es.legacy_templates["app"] == {"index_patterns": ["app-*"], "order": 50,
                                          "settings": {"number_of_replicas": 0}}
    fluentd = ElasticsearchOutput(hosts=[es.url], index_name="app-y", template_file=str(path), template_name="app2")
    await send(fluentd, [Event("a", T0, {})])
    assert es.templates["app2"]["priority"] == 50
    assert es.index_settings["app-y"] == {"number_of_replicas": 0}


def test_a_bad_template_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not JSON") as err:
        ElasticsearchOutput(template=str(bad))
    assert err.value.setting == "template"
    with pytest.raises(ConfigError, match="cannot read template"):
        ElasticsearchOutput(template=str(tmp_path / "missing.json"))


async def test_refused_template_is_logged_and_indexing_goes_on(es: ESStandIn, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"index_patterns": ["app-*"], "settings": {}}))  # legacy body, composable API
    with caplog.at_level(logging.ERROR):
        assert await send(ElasticsearchOutput(hosts=[es.url], index="app-z", template=str(path)),
                          [Event("a", T0, {"n": 1})]) is None
    assert "unknown field [settings]" in caplog.text and es.docs("app-z")


# ---- ILM ------------------------------------------------------------------------------------


async def test_ilm_bootstraps_policy_template_and_write_alias(es: ESStandIn) -> None:
    out = ElasticsearchOutput(hosts=[es.url], ilm_enabled="true")
    assert await send(out, [Event("a", T0, {"n": 1})]) is None
    assert es.policies["logstash-policy"]["policy"]["phases"]["hot"]["actions"]["rollover"]["max_size"] == "50gb"
    settings = es.templates["logstash"]["template"]["settings"]
    assert settings["index.lifecycle.name"] == "logstash-policy"
    assert settings["index.lifecycle.rollover_alias"] == "logstash"
    first = f"logstash-{TODAY}-000001"
    assert es.aliases == {"logstash": {first: True}}
    assert es.index_settings[first]["index.lifecycle.name"] == "logstash-policy"
    assert [a["_index"] for a in es.actions] == ["logstash"] and es.docs(first)
    again = ElasticsearchOutput(hosts=[es.url], ilm_enabled="true")  # a restart: nothing made twice
    assert await send(again, [Event("a", T0, {"n": 2})]) is None
    assert len(es.indices) == 1 and len(es.docs("logstash")) == 2


async def test_ilm_custom_alias_pattern_and_fluentd_policy_id(es: ESStandIn, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        await send(ElasticsearchOutput(hosts=[es.url], ilm_rollover_alias="web", ilm_pattern="000001",
                                       ilm_policy_id="mine"), [Event("a", T0, {})])
    assert "ILM policy 'mine' does not exist" in caplog.text  # only the default policy is created
    assert es.aliases == {"web": {"web-000001": True}}
    assert es.templates["logstash"]["index_patterns"] == ["web-*"]


def test_ilm_alias_cannot_be_dynamic() -> None:
    with pytest.raises(ConfigError, match="field references") as err:
        ElasticsearchOutput(ilm_enabled="true", ilm_rollover_alias="logs-%{app}")
    assert err.value.setting == "ilm_rollover_alias"


# ---- data streams ---------------------------------------------------------------------------


async def test_data_stream_naming_create_action_and_synced_fields(es: ESStandIn) -> None:
    out = ElasticsearchOutput(hosts=[es.url], data_stream="true", data_stream_dataset="nginx")
    batch = [Event("a", T0, {"m": 1}),
             Event("a", T0, {"m": 2, "data_stream": {"dataset": "Web-Access", "namespace": "prod"}})]
    assert await send(out, batch) is None
    assert [(a["_index"]) for a in es.actions] == ["logs-nginx-default", "logs-web_access-prod"]
    assert set(es.data_streams) == {"logs-nginx-default", "logs-web_access-prod"}
    [doc] = es.docs("logs-web_access-prod")
    assert doc["data_stream"] == {"type": "logs", "dataset": "web_access", "namespace": "prod"}
    assert batch[1].record["data_stream"]["dataset"] == "Web-Access"  # format never touches the event
    assert es.stats.item_statuses == {201: 2} and "logstash" not in es.templates
    assert await send(ElasticsearchOutput(hosts=[es.url], data_stream="true"), batch[:1]) is None  # retried: 409


async def test_fluentd_data_stream_output(es: ESStandIn) -> None:
    out = ElasticsearchDataStreamOutput(hosts=[es.url], data_stream_name="logs-${tag}-default",
                                        include_tag_key=True)
    assert await send(out, [Event("k8s", T0, {"log": "x"})]) is None
    [doc] = es.docs("logs-k8s-default")
    assert doc["tag"] == "k8s" and "data_stream" not in doc


@pytest.mark.parametrize("settings, setting", [
    ({"data_stream": "true", "index": "x"}, "index"),
    ({"data_stream": "true", "action": "index"}, "action"),
    ({"data_stream": "true", "write_operation": "update"}, "write_operation"),
    ({"action": "update", "scripted_upsert": True}, "scripted_upsert"),
    ({"action": "update", "upsert": "[1]"}, "upsert"),
])
def test_settings_that_do_not_go_together(settings: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        ElasticsearchOutput(**settings)
    assert err.value.setting == setting


# ---- update, deprecated names -----------------------------------------------------------------


async def test_update_with_doc_as_upsert_and_upsert(es: ESStandIn) -> None:
    out = ElasticsearchOutput(hosts=[es.url], index="u", action="update", document_id="%{k}", doc_as_upsert=True)
    assert await send(out, [Event("a", T0, {"k": "1", "a": 1})]) is None
    out = ElasticsearchOutput(hosts=[es.url], index="u", action="update", document_id="%{k}", doc_as_upsert=True)
    assert await send(out, [Event("a", T0, {"k": "1", "b": 2})]) is None
    assert es.docs("u") == [{"@timestamp": "2023-11-14T22:13:20.123Z", "k": "1", "a": 1, "b": 2}]
    assert es.actions[0]["retry_on_conflict"] == 1
    plain = ElasticsearchOutput(hosts=[es.url], index="u", action="update", document_id="%{k}")
    result = await send(plain, [Event("a", T0, {"k": "2"})])
    assert isinstance(result, WriteResult) and result.failed[0][1].startswith("404 document_missing_exception")
    assert "[update u/2]" in result.failed[0][1]
    seeded = ElasticsearchOutput(hosts=[es.url], index="u", action="update", document_id="%{k}",
                                 upsert='{"seeded": true}')
    assert await send(seeded, [Event("a", T0, {"k": "3"})]) is None
    assert {"seeded": True} in es.docs("u")


def test_dead_letter_of_an_update_is_its_document() -> None:
    out = ElasticsearchOutput(index="u", action="update", document_id="d1", doc_as_upsert=True)
    [item] = out.format([Event("a", T0, {"x": 1})])
    assert out.describe(item) == {"x": 1, "@timestamp": "2023-11-14T22:13:20.123Z",
                                  "@metadata": {"action": "update", "_index": "u", "_docid": "d1"}}


def test_deprecated_names_warn_and_still_work(caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Deprecations are warned once per process: start from a process that has warned none.
    monkeypatch.setattr(settings_module, "_warned", set())
    monkeypatch.setattr(search_connection, "_warned", set())
    with caplog.at_level(logging.WARNING):
        out = ElasticsearchOutput(hosts=["h"], ssl=True, cacert="/nonexistent.pem",
                                  ssl_certificate_verification=False, document_type="doc")
    text = caplog.text
    assert "setting 'ssl' of output 'elasticsearch' is deprecated" in text
    assert "setting 'cacert' of output 'elasticsearch' is deprecated" in text
    assert "ssl_certificate_verification' is deprecated" in text and "document_type is ignored" in text
    assert out._hosts == ["https://h:9200"]


def test_fluentd_tls_names_reach_the_context(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load CA file") as err:
        ElasticsearchOutput(hosts=["https://h"], ca_file=str(tmp_path / "none.pem"))
    assert err.value.setting == "ca_file"


async def test_custom_headers_api_key_and_cloud_id() -> None:
    server = ESStandIn("9.1.3", api_key=("kid", "kval"))
    await server.start()
    try:
        out = ElasticsearchOutput(hosts=[server.url], index="h", api_key="kid:kval",
                                  custom_headers={"X-Tenant": "blue"})
        assert await send(out, [Event("a", T0, {})]) is None
        assert {k.lower(): v for k, v in server.headers_seen[-1].items()}["x-tenant"] == "blue"
    finally:
        await server.stop()
    cloud = ElasticsearchOutput(cloud_id="deploy:" + __import__("base64").b64encode(b"es.example.io$abc$def")
                                .decode(), cloud_auth="elastic:pw")
    assert cloud._client_options()["cloud_id"].startswith("deploy:")
    assert cloud._client_options()["basic_auth"] == ("elastic", "pw")
