"""The example configs run as whole pipelines: forward-aggregator.conf receives from
logpipe's own forward output (handshake + acks after the file buffer stored the
events), beats-receiver.conf from pylogbeat through grok to stdout."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pylogbeat
import pytest

from logpipe import registry
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe_plugins.inputs.beats import BeatsInput
from logpipe_plugins.inputs.forward import ForwardInput
from logpipe_plugins.outputs.forward import ForwardOutput
from tests.paths import REPO
from tests.support.net import free_port

CONFIGS = REPO / "configs"


@pytest.fixture(autouse=True)
def _registered() -> None:
    """Until the entry points are installed, make the plugins known in-process."""
    for cls in (ForwardInput, BeatsInput, ForwardOutput):
        registry.register(cls)


async def test_forward_aggregator_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARD_SHARED_KEY", "agg-key")
    port = free_port()
    text = (CONFIGS / "forward-aggregator.conf").read_text()
    text = text.replace("port 24224", f"port {port}").replace("bind 0.0.0.0", "bind 127.0.0.1")
    text = text.replace('path "aggregated/', f'path "{tmp_path}/aggregated/')
    sent = [Event("web.access", 1_700_000_000_000_000_000 + i, {"i": i}) for i in range(50)]
    async with Pipeline.from_string(text, state_dir=str(tmp_path / "state")):
        out = ForwardOutput(port=port, shared_key="agg-key", self_hostname="agent", require_ack_response=True,
                            heartbeat_type="none")
        await out.start()
        assert await out.write(out.format(sent)) is None  # acked: durable in the aggregator's file buffer
        await out.close()
        target = tmp_path / "aggregated" / "forward.2023-11-14.log"
        async with asyncio.timeout(10):  # the buffer flushes after flush_interval (1s)
            while not target.exists() or len(target.read_text().splitlines()) < 50:
                await asyncio.sleep(0.05)
    written = target.read_text().splitlines()
    assert sorted(json.loads(line)["i"] for line in written) == list(range(50))


async def test_beats_receiver_config(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    text = (CONFIGS / "beats-receiver.conf").read_text().replace("port => 5044", f"port => {port}")
    doc = {
        "@timestamp": "2024-05-06T07:08:09.123Z",
        "@metadata": {"beat": "filebeat", "version": "8.13.0"},
        "event": {"dataset": "nginx.access"},
        "message": '203.0.113.9 - - [06/May/2024:07:08:09 +0000] "GET /a HTTP/1.1" 200 12 "-" "curl/8"',
        "log": {"file": {"path": "/var/log/nginx/access.log"}},
    }
    async with Pipeline.from_string(text, state_dir=str(tmp_path / "state")):
        def send() -> None:
            with pylogbeat.PyLogBeatClient("127.0.0.1", port, timeout=10) as client:
                client.send([doc])

        await asyncio.to_thread(send)  # returns after the ACK: the event reached stdout
    line = next(ln for ln in capfd.readouterr().out.splitlines() if "nginx.access" in ln)
    event = json.loads(line)
    assert event["log"] == {"file": {"path": "/var/log/nginx/access.log"}}
    assert event["@timestamp"].startswith("2024-05-06T07:08:09.123")
    assert "@metadata" not in event
    assert any(v == "GET" for v in _leaves(event))  # grok parsed the nginx line


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    return [value]
