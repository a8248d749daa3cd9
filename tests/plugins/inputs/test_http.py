"""http input with curl and aiohttp's client: answers after the ack, 503/429 with Retry-After,
400 with a reason, both front-ends' body formats."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest

from logpipe.errors import ConfigError
from logpipe.metrics import REGISTRY
from logpipe.plugin import InputContext
from logpipe_plugins.inputs.http import EMPTY_GIF, HttpInput
from tests.support.net import Collector, make_certs, running

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl not installed")


async def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """Run curl; returns (status, lower-cased response headers, body)."""
    assert CURL is not None
    proc = await asyncio.create_subprocess_exec(
        CURL, "-s", "-D", "-", "--max-time", "20", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@needs_curl
async def test_json_array_is_one_batch_answered_after_the_ack() -> None:
    inp = HttpInput(port=0, host="127.0.0.1", response_headers={"X-Served-By": "logpipe"})
    out = Collector(auto_ack=False)
    async with running(inp, out):
        url = f"http://127.0.0.1:{inp.bound_port}/"
        request = asyncio.create_task(curl("-H", "Content-Type: application/json",
                                           "-d", '[{"a": 1}, {"a": 2}, {"a": 3}]', url))
        await out.wait_batches(1)
        await asyncio.sleep(0.2)
        assert not request.done()  # no answer before the outputs have it
        out.ack(0)
        status, headers, _ = await request
    assert status == 200 and headers["x-served-by"] == "logpipe"
    (batch,) = out.batches
    assert [e.record["a"] for e in batch] == [1, 2, 3]
    assert batch[0].record["host"] == "127.0.0.1"
    assert batch[0].record["headers"]["request_method"] == "POST"
    assert batch[0].record["headers"]["content_type"] == "application/json"


@needs_curl
async def test_plain_body_is_one_message() -> None:
    inp = HttpInput(port=0, host="127.0.0.1")
    out = Collector()
    async with running(inp, out):
        status, _, _ = await curl("-H", "Content-Type: text/plain", "--data-binary", "line one\nline two",
                                  f"http://127.0.0.1:{inp.bound_port}/")
    assert status == 200
    assert out.events[0].record["message"] == "line one\nline two"


async def test_pipeline_full_answers_503_with_retry_after() -> None:
    inp = HttpInput(port=0, host="127.0.0.1", emit_timeout=0.2, retry_after=3, id="http-full")

    async def full(events: list, on_ack: Any) -> None:
        await asyncio.Event().wait()  # the pipeline queue never has room

    await inp.start()
    task = asyncio.create_task(inp.run(InputContext(full, "/tmp", "t")))
    try:
        async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{inp.bound_port}/x",
                                                        json={"a": 1}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "3"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await inp.close()
    assert REGISTRY.value("logpipe_input_http_refused_total", input="http-full") == 1


async def test_ack_timeout_503_and_pending_limit_429() -> None:
    inp = HttpInput(port=0, host="127.0.0.1", ack_timeout=1.0, max_pending_requests=1)
    out = Collector(auto_ack=False)
    async with running(inp, out), aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{inp.bound_port}/"
        first = asyncio.create_task(s.post(url, json={"n": 1}))
        await out.wait_batches(1)
        async with s.post(url, json={"n": 2}) as r:
            assert r.status == 429 and "Retry-After" in r.headers
        resp = await first
        assert resp.status == 503 and "acknowledge" in await resp.text()
        resp.release()


async def test_stopping_answers_503() -> None:
    inp = HttpInput(port=0, host="127.0.0.1")
    out = Collector()
    await inp.start()
    task = asyncio.create_task(inp.run(out.context()))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{inp.bound_port}/", json={}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
    finally:
        await inp.close()
    assert out.events == []


@needs_curl
async def test_bad_bodies_400_with_reason_and_413() -> None:
    inp = HttpInput(port=0, host="127.0.0.1", id="http-bad", max_content_length=1000)
    out = Collector()
    async with running(inp, out):
        url = f"http://127.0.0.1:{inp.bound_port}/"
        status, _, body = await curl("-H", "Content-Type: application/json", "-d", "{not json", url)
        assert status == 400 and b"invalid JSON" in body
        status, _, body = await curl("-H", "Content-Type: application/json", "-d", "[1, 2]", url)
        assert status == 400 and b"only objects" in body
        status, _, _ = await curl("-H", "Content-Type: application/json", "-d", json.dumps({"x": "y" * 5000}), url)
        assert status == 413
        status, _, _ = await curl("-H", "Content-Type: application/json", "-d", '{"ok": true}', url)
        assert status == 200
    assert [e.record["ok"] for e in out.events] == [True]
    assert REGISTRY.value("logpipe_input_http_bad_requests_total", input="http-bad") == 3


@needs_curl
async def test_basic_auth() -> None:
    inp = HttpInput(port=0, host="127.0.0.1", user="u", password="p@ss")
    out = Collector()
    async with running(inp, out):
        url = f"http://127.0.0.1:{inp.bound_port}/"
        status, headers, _ = await curl("-d", "x", url)
        assert status == 401 and "www-authenticate" in headers
        status, _, _ = await curl("-u", "u:wrong", "-d", "x", url)
        assert status == 401
        status, _, _ = await curl("-u", "u:p@ss", "-d", "x", url)
        assert status == 200
    assert len(out.events) == 1


@needs_curl
async def test_tls_with_generated_ca(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    inp = HttpInput(port=0, host="127.0.0.1", ssl_enabled=True, ssl_certificate=cert, ssl_key=key)
    out = Collector()
    async with running(inp, out):
        status, _, _ = await curl("--cacert", cert, "-H", "Content-Type: application/json", "-d", '{"tls": 1}',
                                  f"https://localhost:{inp.bound_port}/")
    assert status == 200 and out.events[0].record["tls"] == 1


@needs_curl
async def test_fluentd_tag_from_path_forms_msgpack_ndjson_time() -> None:
    inp = HttpInput(port=0, bind="127.0.0.1", add_remote_addr=True, add_http_headers=True)
    assert inp.fluentd
    out = Collector()
    async with running(inp, out):
        base = f"http://127.0.0.1:{inp.bound_port}"
        status, _, _ = await curl("-d", 'json={"event":"form"}', f"{base}/app.access?time=1700000000.5")
        assert status == 200
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/app.mp", data=msgpack.packb([{"m": 1}, {"m": 2, "time": 1600000000}]),
                              headers={"Content-Type": "application/msgpack"}) as r:
                assert r.status == 200
            async with s.post(f"{base}/app.nd", data=b'{"l": 1}\n{"l": 2}\n',
                              headers={"Content-Type": "application/x-ndjson"}) as r:
                assert r.status == 200
        events = await out.wait_events(5)
    form, m1, m2, l1, l2 = events
    assert form.tag == "app.access" and form.record["event"] == "form"
    assert form.time == 1_700_000_000_500_000_000
    assert form.record["REMOTE_ADDR"] == "127.0.0.1" and "HTTP_USER_AGENT" in form.record
    assert m1.tag == "app.mp" and m2.time == 1_600_000_000 * 10**9 and "time" not in m2.record
    assert (l1.tag, l1.record["l"], l2.record["l"]) == ("app.nd", 1, 2)


@needs_curl
async def test_cors_empty_img_204_and_health() -> None:
    inp = HttpInput(port=0, bind="127.0.0.1", cors_allow_origins=["http://example.com"],
                    respond_with_empty_img=True)
    out = Collector()
    async with running(inp, out):
        base = f"http://127.0.0.1:{inp.bound_port}"
        status, headers, body = await curl("-H", "Origin: http://example.com", "-d", 'json={"a":1}', f"{base}/t")
        assert status == 200 and headers["content-type"] == "image/gif" and body == EMPTY_GIF
        assert headers["access-control-allow-origin"] == "http://example.com"
        status, _, body = await curl(f"{base}/")
        assert status == 200 and body == b"ok\n"
    inp = HttpInput(port=0, bind="127.0.0.1", use_204_response=True)
    async with running(inp, out):
        status, _, _ = await curl("-d", 'json={"a":2}', f"http://127.0.0.1:{inp.bound_port}/t")
        assert status == 204


async def test_keep_alive_connection_reused() -> None:
    inp = HttpInput(port=0, host="127.0.0.1")
    out = Collector()
    async with running(inp, out):
        conn = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=conn) as s:
            ports = set()
            for i in range(3):
                async with s.post(f"http://127.0.0.1:{inp.bound_port}/", json={"i": i}) as r:
                    assert r.status == 200
                    ports.add(r.connection.transport.get_extra_info("sockname")[1] if r.connection else None)
    assert len(out.events) == 3 and len(ports) == 1


def test_config_errors() -> None:
    with pytest.raises(ConfigError) as err:
        HttpInput(user="only")
    assert err.value.setting == "password"
    with pytest.raises(ConfigError) as err:
        HttpInput(additional_codecs={"text/x": "nonexistent"})
    assert err.value.setting == "additional_codecs"
    assert HttpInput().port == 8080 and HttpInput(add_remote_addr=True).port == 9880


async def test_pipeline_ack_through_a_real_output(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.net import free_port
    from tests.support.pipeline import CollectOutput

    port = free_port()
    out = CollectOutput()
    text = f'input {{ http {{ host => "127.0.0.1" port => {port} }} }}'
    async with Pipeline.from_string(text, outputs=[out], state_dir=str(tmp_path)), aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{port}/", json=[{"n": i} for i in range(10)]) as r:
            assert r.status == 200
        assert len(out.events) == 10  # answered only once the output wrote them


async def test_connection_limit() -> None:
    inp = HttpInput(port=0, host="127.0.0.1", max_connections=1, id="http-conns")
    out = Collector()
    async with running(inp, out):
        _, held = await asyncio.open_connection("127.0.0.1", inp.bound_port)  # an idle keep-alive client
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
        held.close()
        await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{inp.bound_port}/", json={"a": 1}) as r:
            assert r.status == 200  # a slot is free again
    assert REGISTRY.value("logpipe_input_protocol_errors_total", reason="max_connections", input="http-conns") == 1
