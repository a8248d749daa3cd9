"""The http output against a real aiohttp server: bodies per format, sprintf URLs, auth
headers, gzip, and the reply rules (2xx delivered, 429/5xx retried after Retry-After,
other 4xx dead-lettered with the body) through the real buffer engine."""

from __future__ import annotations

import base64
import time

import msgpack
import orjson
import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import RetryableError, WriteResult
from logpipe.testing import OutputDriver
from logpipe_plugins.outputs.http import HttpOutput
from tests.standins.http_sink import HttpSink
from tests.support.net import free_port

T0 = 1_700_000_000_123_000_000


def events(n: int) -> list[Event]:
    return [Event("app", T0, {"seq": i, "svc": "a" if i % 2 else "b"}) for i in range(n)]


async def test_json_is_one_request_per_event_with_sprintf_url() -> None:
    async with HttpSink() as sink:
        out = HttpOutput(url=sink.url + "/in/%{svc}", user="u", password="p", headers={"X-Env": "prod"})
        try:
            assert await out.write(events(3)) is None
        finally:
            await out.close()
    assert sorted(r.path for r in sink.received) == ["/in/a", "/in/b", "/in/b"]
    first = sink.received[0]
    assert first.method == "POST" and first.headers["Content-Type"] == "application/json"
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert first.headers["X-Env"] == "prod"
    assert orjson.loads(first.body)["@timestamp"] == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize("settings", [{"format": "json_batch"}, {"format": "json", "json_array": True}])
async def test_json_batch_is_one_array(settings: dict[str, object]) -> None:
    async with HttpSink() as sink:
        out = HttpOutput(url=sink.url, bearer_token="t0k", http_compression=True, **settings)
        try:
            assert await out.write(events(4)) is None
        finally:
            await out.close()
    [req] = sink.received
    assert [d["seq"] for d in orjson.loads(req.body)] == [0, 1, 2, 3]
    assert req.headers["Authorization"] == "Bearer t0k" and req.headers["Content-Encoding"] == "gzip"


async def test_ndjson_and_msgpack_bodies() -> None:
    async with HttpSink() as sink:
        lines = HttpOutput(url=sink.url, format="json_lines", http_method="put")
        packed = HttpOutput(url=sink.url, format="msgpack")
        try:
            assert await lines.write(events(2)) is None
            assert await packed.write(events(2)) is None
        finally:
            await lines.close()
            await packed.close()
    ndjson, mp = sink.received
    assert ndjson.method == "PUT" and ndjson.headers["Content-Type"] == "application/x-ndjson"
    assert [orjson.loads(line)["seq"] for line in ndjson.body.splitlines()] == [0, 1]
    unpacker = msgpack.Unpacker()
    unpacker.feed(mp.body)
    assert [d["seq"] for d in unpacker] == [0, 1] and mp.headers["Content-Type"] == "application/msgpack"


async def test_429_is_retried_after_retry_after_then_delivered() -> None:
    async with HttpSink(script=[(429, {"Retry-After": "1"}, "slow down")]) as sink:
        out = HttpOutput(url=sink.url, format="json_batch")
        async with OutputDriver(out) as driver:
            started = time.monotonic()
            delivery = await driver.write(events(3))
            elapsed = time.monotonic() - started
        await out.close()
    assert delivery.delivered == 3 and delivery.retries == 1 and delivery.dead_lettered == 0
    assert elapsed >= 1.0  # the server's Retry-After was honoured
    assert len(sink.received) == 2 and sink.received[0].body == sink.received[1].body


async def test_400_is_dead_lettered_with_the_body_and_5xx_retried() -> None:
    async with HttpSink(script=[(503, {}, "busy"), (400, {}, "field [x] is malformed" + "!" * 2000)]) as sink:
        out = HttpOutput(url=sink.url)
        try:
            first = await out.write(events(1))
            second = await out.write(events(1))
        finally:
            await out.close()
    assert first == WriteResult(retry=[0])
    assert isinstance(second, WriteResult) and second.retry == []
    [(index, why)] = second.failed
    assert index == 0 and why.startswith("HTTP 400: field [x] is malformed") and len(why) < 600


async def test_connection_refused_is_retryable() -> None:
    out = HttpOutput(url=f"http://127.0.0.1:{free_port()}/", connect_timeout=1)
    try:
        with pytest.raises(RetryableError):
            await out.write(events(1))
    finally:
        await out.close()


def test_bad_format_names_the_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        HttpOutput(url="http://x", format="xml")
    assert exc.value.setting == "format"
