"""Elasticsearch and OpenSearch outputs as real configs write them, through both front-ends:
Logstash configs with today's settings (data streams, ILM, templates, ssl_*), Fluentd configs with
fluent-plugin-elasticsearch's and fluent-plugin-opensearch's names, run into the stand-in."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from logpipe.errors import ConfigError
from logpipe.pipeline import Pipeline
from tests.standins.elasticsearch import ESStandIn

T0 = 1_700_000_000_000_000_000
TODAY = time.strftime("%Y.%m.%d", time.gmtime())


@pytest.fixture
async def es() -> AsyncIterator[ESStandIn]:
    server = ESStandIn("8.15.3", basic_auth=("elastic", "changeme"))
    await server.start()
    yield server
    await server.stop()


async def ship(config: str, state_dir: str, tag: str = "app", **record: object) -> None:
    async with Pipeline.from_string(config, state_dir=state_dir) as pipeline:
        ack = await pipeline.emit(tag, dict(record), time=T0)
        await asyncio.wait_for(pipeline.delivered(ack), 10)


async def test_logstash_data_stream_config(es: ESStandIn, state_dir: str) -> None:
    """As Elastic's docs write a data-stream output."""
    conf = f"""
    output {{
      elasticsearch {{
        hosts => ["{es.url}"]
        user => "elastic"
        password => "changeme"
        data_stream => "true"
        data_stream_type => "logs"
        data_stream_dataset => "nginx"
        data_stream_namespace => "prod"
        ssl_verification_mode => "none"
        ecs_compatibility => "v8"
      }}
    }}"""
    await ship(conf, state_dir, message="GET /")
    [doc] = es.docs("logs-nginx-prod")
    assert doc["message"] == "GET /" and doc["data_stream"]["dataset"] == "nginx"


async def test_logstash_ilm_config_with_deprecated_ssl_names(es: ESStandIn, state_dir: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """docker-elk era settings: ilm_*, the old ssl names (warned), document_type (warned)."""
    conf = f"""
    output {{
      elasticsearch {{
        hosts => "{es.url}"
        user => "elastic"
        password => "changeme"
        ilm_enabled => true
        ilm_rollover_alias => "app"
        ilm_pattern => "{{now/d}}-000001"
        ilm_policy => "logstash-policy"
        ssl => false
        ssl_certificate_verification => false
        document_type => "_doc"
        manage_template => true
        template_overwrite => true
      }}
    }}"""
    await ship(conf, state_dir, message="x")
    assert es.aliases == {"app": {f"app-{TODAY}-000001": True}}
    assert es.templates["logstash"]["template"]["settings"]["index.lifecycle.rollover_alias"] == "app"
    assert len(es.docs("app")) == 1
    assert "is deprecated" in caplog.text and "document_type is ignored" in caplog.text


async def test_fluentd_elasticsearch_config(es: ESStandIn, state_dir: str, tmp_path: Path) -> None:
    template = tmp_path / "tpl.json"
    template.write_text(json.dumps({"index_patterns": ["k8s-*"], "template": {"settings": {"number_of_shards": 3}}}))
    host, port = es.url.removeprefix("http://").split(":")
    conf = f"""
    <match kube.**>
      @type elasticsearch
      host {host}
      port {port}
      scheme http
      user elastic
      password changeme
      logstash_format true
      logstash_prefix k8s
      include_tag_key true
      tag_key @log_name
      id_key request_id
      write_operation create
      template_name k8s
      template_file {template}
      ssl_verify false
      <buffer>
        flush_interval 0
      </buffer>
    </match>"""
    await ship(conf, state_dir, tag="kube.web", request_id="r-1", log="hello")
    [doc] = es.docs("k8s-2023.11.14")
    assert doc["@log_name"] == "kube.web" and doc["log"] == "hello"
    assert es.actions[-1] == {"_index": "k8s-2023.11.14", "_id": "r-1"}
    assert es.index_settings["k8s-2023.11.14"] == {"number_of_shards": 3}


async def test_fluentd_elasticsearch_data_stream_config(es: ESStandIn, state_dir: str) -> None:
    conf = f"""
    <match **>
      @type elasticsearch_data_stream
      hosts {es.url}
      user elastic
      password changeme
      data_stream_name logs-${{tag}}-default
    </match>"""
    await ship(conf, state_dir, tag="audit", message="m")
    assert [d["message"] for d in es.docs("logs-audit-default")] == ["m"]


async def test_fluentd_opensearch_config(state_dir: str) -> None:
    server = ESStandIn("2.17.1", flavor="opensearch")
    await server.start()
    try:
        conf = f"""
        <match **>
          @type opensearch
          hosts {server.url}
          index_name fluentd-${{tag}}
          include_tag_key true
        </match>"""
        await ship(conf, state_dir, tag="web", message="m")
        assert server.docs("fluentd-web")[0]["tag"] == "web"
    finally:
        await server.stop()


def test_a_misspelt_setting_is_placed() -> None:
    conf = 'output {\n  elasticsearch {\n    hosts => ["h"]\n    data_stream_namepsace => "x"\n  }\n}\n'
    with pytest.raises(ConfigError) as err:
        Pipeline.from_string(conf, state_dir="/nonexistent")
    text = str(err.value)
    assert ":4:" in text and "data_stream_namespace" in text
