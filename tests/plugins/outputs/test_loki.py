"""The loki output against a stand-in that answers as Loki's push endpoint does."""

from __future__ import annotations

import orjson
import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.metrics import REGISTRY
from logpipe.plugin import WriteResult
from logpipe.testing import OutputDriver
from logpipe_plugins.outputs.loki import OVERFLOW, LokiOutput
from tests.standins.loki import LokiStandin

T0 = 1_700_000_000_123_456_789


def ev(i: int, **record: object) -> Event:
    return Event("app", T0 + i, {"seq": i, **record})


async def test_labels_static_from_fields_and_tenant_header() -> None:
    async with LokiStandin() as loki:
        out = LokiOutput(url=loki.url, tenant_id="team-a",
                         labels=["job=web, $kubernetes['namespace_name']"], label_keys=["[level]"],
                         remove_keys=["kubernetes"])
        try:
            batch = [ev(2, level="info", kubernetes={"namespace_name": "prod"}),
                     ev(1, level="info", kubernetes={"namespace_name": "prod"}),
                     ev(3, level="error", kubernetes={"namespace_name": "dev"})]
            assert await out.write(batch) is None
        finally:
            await out.close()
    assert loki.tenants == ["team-a"]
    prod = loki.streams[(("job", "web"), ("level", "info"), ("namespace_name", "prod"))]
    assert [t for t, _ in prod] == [T0 + 1, T0 + 2]  # ordered within the stream
    assert orjson.loads(prod[0][1]) == {"seq": 1}  # label fields and remove_keys left out of the line
    assert (("job", "web"), ("level", "error"), ("namespace_name", "dev")) in loki.streams


async def test_label_cardinality_is_bounded() -> None:
    before = REGISTRY.counter("logpipe_output_loki_label_overflow_total", output="bounded").value
    async with LokiStandin(reject_out_of_order=False) as loki:
        out = LokiOutput(id="bounded", url=loki.url, labels=["$user"], max_label_values=3)
        try:
            assert await out.write([ev(i, user=f"u{i}") for i in range(10)]) is None
        finally:
            await out.close()
    values = sorted(dict(key)["user"] for key in loki.streams)
    assert values == sorted(["u0", "u1", "u2", OVERFLOW])
    assert len(loki.streams[(("user", OVERFLOW),)]) == 7
    assert REGISTRY.counter("logpipe_output_loki_label_overflow_total", output="bounded").value - before == 7


async def test_key_value_lines_and_drop_single_key() -> None:
    async with LokiStandin() as loki:
        kv = LokiOutput(url=loki.url, labels=["job=a"], line_format="key_value")
        single = LokiOutput(url=loki.url, labels=["job=b"], drop_single_key=True, remove_keys=["seq"])
        try:
            assert await kv.write([ev(0, msg="hi", n={"x": 1})]) is None
            assert await single.write([ev(0, message="just this")]) is None
        finally:
            await kv.close()
            await single.close()
    assert loki.streams[(("job", "a"),)][0][1] == 'seq=0 msg=hi n={"x":1}'
    assert loki.streams[(("job", "b"),)][0][1] == "just this"


async def test_out_of_order_is_dead_lettered_with_lokis_text() -> None:
    async with LokiStandin() as loki:
        out = LokiOutput(url=loki.url, labels=["job=a"])
        try:
            assert await out.write([ev(5)]) is None
            result = await out.write([ev(1)])
        finally:
            await out.close()
    assert isinstance(result, WriteResult) and result.retry == []
    [(index, why)] = result.failed
    assert index == 0
    assert why.startswith("HTTP 400:") and "entry out of order" in why


async def test_rate_limit_is_retried_then_delivered() -> None:
    async with LokiStandin(rate_limited=1) as loki:
        out = LokiOutput(url=loki.url, labels=["job=a"])
        async with OutputDriver(out) as driver:
            delivery = await driver.write([ev(0), ev(1)])
        await out.close()
    assert delivery.delivered == 2 and delivery.retries == 1
    assert len(loki.streams[(("job", "a"),)]) == 2


def test_label_names_are_made_valid_and_bad_accessors_refused() -> None:
    out = LokiOutput(labels=["$http.status"])
    assert out.stream_labels(Event("t", 0, {"http.status": 200})) == {"http_status": "200"}
    with pytest.raises(ConfigError) as exc:
        LokiOutput(labels=["[a]b"])
    assert exc.value.setting == "labels"
