"""Elasticsearch output against the wire-level stand-in (tests/es_standin.py): settings,
documents as indexed, per-item outcomes, whole-request failures, compatibility headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from logpipe import settings as settings_module
from logpipe.buffer.runner import format_events
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import RetryableError, WriteResult
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput, parse_hosts
from tests.standins.elasticsearch import ESStandIn

T0 = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


async def send(out: ElasticsearchOutput, batch: list[Event]) -> WriteResult | None:
    """What the buffer engine does: format (pure), then write the items."""
    return await out.write(out.format(batch))


def events(n: int, tag: str = "app", start: int = 0, **extra: object) -> list[Event]:
    return [Event(tag, T0 + i, {"seq": i, "message": f"line {i}", **extra}, {"source": "test"})
            for i in range(start, start + n)]


@pytest.fixture
async def es() -> AsyncIterator[ESStandIn]:
    server = ESStandIn("9.1.3")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_output(es: ESStandIn) -> AsyncIterator[object]:
    made: list[ElasticsearchOutput] = []

    async def make(**settings: object) -> ElasticsearchOutput:
        settings.setdefault("hosts", [es.url])
        out = ElasticsearchOutput(**settings)
        await out.start()
        made.append(out)
        return out

    yield make
    for out in made:
        await out.close()


# ---- settings ----------------------------------------------------------------------------


def test_host_alias_without_scheme_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "_warned", set())  # warned once per process: start afresh
    with caplog.at_level(logging.WARNING):
        out = ElasticsearchOutput(host=["localhost:9200"])
    assert out._hosts == ["http://localhost:9200"]
    assert any("'host'" in r.getMessage() and "deprecated" in r.getMessage() for r in caplog.records)


def test_host_forms() -> None:
    assert parse_hosts(["es1", "es2:9201,https://es3"], 9200, "http") == [
        "http://es1:9200", "http://es2:9201", "https://es3:9200"]
    assert parse_hosts(["[::1]:9300"], 9200, "https") == ["https://[::1]:9300"]
    assert ElasticsearchOutput(hosts="h", ssl=True)._hosts == ["https://h:9200"]


@pytest.mark.parametrize("settings, setting", [
    ({"hosts": ["ftp://x"]}, "hosts"),
    ({"hosts": ["h:notaport"]}, "hosts"),
    ({"user": "elastic"}, "password"),
    ({"user": "u", "password": "p", "api_key": "id:key"}, "api_key"),
    ({"action": "upsert"}, "action"),
    ({"time_precision": 12}, "time_precision"),
    ({"http_compression": True, "compression_level": 0}, "compression_level"),
    ({"index": "logs-%{[unclosed}"}, "index"),
])
def test_bad_settings_are_config_errors(settings: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        ElasticsearchOutput(**settings)
    assert err.value.setting == setting


# ---- documents as indexed ----------------------------------------------------------------


async def test_documents_get_timestamp_and_default_daily_index_without_meta(es: ESStandIn, make_output) -> None:
    out = await make_output()
    assert await send(out, events(3)) is None
    docs = es.docs("logstash-2023.11.14")
    assert [d["seq"] for d in docs] == [0, 1, 2]
    assert docs[0] == {"@timestamp": "2023-11-14T22:13:20.123Z", "seq": 0, "message": "line 0"}
    assert all("source" not in d for d in docs)  # meta is not written


async def test_record_timestamp_is_kept_and_precision_is_configurable(es: ESStandIn, make_output) -> None:
    out = await make_output(index="t", time_precision=9)
    ev = [Event("a", T0, {"x": 1}), Event("a", T0, {"@timestamp": "given", "x": 2}), Event("a", T0, {})]
    assert await send(out, ev) is None
    by_x = {d.get("x"): d for d in es.docs("t")}
    assert by_x[1]["@timestamp"] == "2023-11-14T22:13:20.123456789Z"
    assert by_x[2]["@timestamp"] == "given"
    assert by_x[None] == {"@timestamp": "2023-11-14T22:13:20.123456789Z"}


async def test_index_sprintf_and_fluentd_naming(es: ESStandIn, make_output) -> None:
    ev = [Event("web.access", T0, {"service": "api", "n": 1})]
    await send((await make_output(index="app-%{service}-%{+YYYY.MM}")), ev)
    await send((await make_output(logstash_format=True, logstash_prefix="fd-${tag}",
                             logstash_dateformat="%Y%m%d")), ev)
    await send((await make_output(index_name="idx-${tag_parts[1]}")), ev)
    assert set(es.indices) == {"app-api-2023.11", "fd-web.access-20231114", "idx-access"}


async def test_routing_pipeline_and_action_go_in_the_action_line(es: ESStandIn, make_output) -> None:
    out = await make_output(index="r", action="create", routing="%{user}", pipeline="p-%{kind}")
    await send(out, [Event("a", T0, {"user": "bob", "kind": "web"}), Event("a", T0 + 1, {})])
    first, second = es.actions
    assert first["routing"] == "bob" and first["pipeline"] == "p-web"
    assert "routing" not in second and "pipeline" not in second  # unresolved references are left out
    assert es.stats.item_statuses[201] == 2


async def test_document_id_id_key_and_fallback(es: ESStandIn, make_output) -> None:
    out = await make_output(index="d", document_id="doc-%{key}")
    await send(out, [Event("a", T0, {"key": "k1"}), Event("a", T0, {"other": 1})])
    ids = [a["_id"] for a in es.actions]
    assert ids[0] == "doc-k1"
    assert len(ids[1]) == 20 and "%{" not in ids[1]  # generated, not the literal template
    out2 = await make_output(index="d2", id_key="key")
    await send(out2, [Event("a", T0, {"key": 42})])
    assert es.actions[-1]["_id"] == "42"


async def test_same_event_same_id_across_instances_so_retries_overwrite(es: ESStandIn, make_output) -> None:
    batch = events(5)
    await send((await make_output(index="i")), batch)
    rebuilt = [Event(e.tag, e.time, dict(e.record), {"source": "test"}) for e in batch]
    await send((await make_output(index="i")), rebuilt)  # a new process replaying the same events
    assert es.count() == 5
    assert es.stats.item_statuses == {201: 5, 200: 5}


async def test_identical_events_in_one_chunk_stay_distinct(es: ESStandIn, make_output) -> None:
    twins = [Event("a", T0, {"m": "same"}) for _ in range(3)]
    out = await make_output(index="twins")
    assert await send(out, twins) is None
    assert es.count() == 3
    await send(out, twins)  # retried: same three ids again
    assert es.count() == 3


async def test_server_assigned_ids_when_deterministic_id_is_off(es: ESStandIn, make_output) -> None:
    out = await make_output(index="auto", deterministic_id=False)
    await send(out, events(2))
    await send(out, events(2))
    assert es.count() == 4
    assert all("_id" not in a for a in es.actions)


async def test_bulk_limits_split_a_chunk(es: ESStandIn, make_output) -> None:
    out = await make_output(index="s", bulk_max_docs=4)
    assert await send(out, events(10)) is None
    assert es.stats.bulk_requests == 3
    out2 = await make_output(index="s2", bulk_max_bytes=400)
    assert await send(out2, events(10)) is None
    assert es.stats.bulk_requests > 5 and es.count() == 20


async def test_gzip_compression(es: ESStandIn, make_output) -> None:
    out = await make_output(index="gz", http_compression=True)
    assert await send(out, events(50)) is None
    assert es.stats.gzip_requests == 1 and es.count() == 50


# ---- per-item outcomes -------------------------------------------------------------------


async def test_mapping_error_fails_only_its_item_with_the_reason(es: ESStandIn, make_output) -> None:
    out = await make_output(index="m")
    await send(out, [Event("a", T0, {"status": 200})])
    result = await send(out, [Event("a", T0 + 1, {"status": 201}), Event("a", T0 + 2, {"status": "oops"}),
                              Event("a", T0 + 3, {"status": 204})])
    assert isinstance(result, WriteResult)
    assert result.retry == []
    [(index, reason)] = result.failed
    assert index == 1
    assert reason.startswith("400 document_parsing_exception: [1:2] failed to parse field [status] of type [long]")
    assert 'For input string: "oops"' in reason
    assert es.count() == 3


async def test_item_statuses_map_to_retry_failed_delivered(es: ESStandIn, make_output) -> None:
    out = await make_output(index="st")
    es.item_failures.extend([429, 503, 400, 404, 500])
    result = await send(out, events(7))
    assert isinstance(result, WriteResult)
    assert result.retry == [0, 1, 4]
    assert [i for i, _ in result.failed] == [2, 3]
    assert result.failed[1][1].startswith("404 index_not_found_exception")
    assert es.count() == 2


async def test_create_conflict_counts_as_delivered_but_index_conflict_does_not(es: ESStandIn, make_output) -> None:
    out = await make_output(index="c", action="create")
    batch = events(3)
    assert await send(out, batch) is None
    assert await send(out, batch) is None  # 409 x3: already there
    assert es.stats.item_statuses[409] == 3 and es.count() == 3
    idx = await make_output(index="c")
    es.item_failures.append(409)
    result = await send(idx, events(1))
    assert isinstance(result, WriteResult) and result.failed[0][1].startswith("409 version_conflict")


async def test_invalid_index_name_and_id_field_are_permanent(es: ESStandIn, make_output) -> None:
    out = await make_output(index="%{name}")
    result = await send(out, [Event("a", T0, {"name": "UPPER"}), Event("a", T0, {"name": "ok", "_id": "x"}),
                              Event("a", T0, {"name": "fine"})])
    assert isinstance(result, WriteResult)
    assert [i for i, _ in result.failed] == [0, 1]
    assert "invalid_index_name_exception" in result.failed[0][1]
    assert "metadata field" in result.failed[1][1]
    assert es.docs("fine")


async def test_unserialisable_event_fails_alone(es: ESStandIn, make_output) -> None:
    """format raises for the batch; the core formats event by event and keeps the rest."""
    out = await make_output(index="u")
    bad = Event("a", T0, {"big": 2**70})
    items, failures = format_events(out, [bad, Event("a", T0, {"ok": 1})])
    assert [ev for ev, _ in failures] == [bad] and "cannot serialise the event as JSON" in failures[0][1]
    assert await out.write(items) is None
    assert es.count() == 1


# ---- whole-request failures --------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503, 500])
async def test_request_level_errors_retry_the_chunk(es: ESStandIn, make_output, status: int) -> None:
    out = await make_output(index="r")
    await send(out, events(1))
    es.request_failures.append(status)
    with pytest.raises(RetryableError, match=str(status)):
        await send(out, events(3))
    assert await send(out, events(3)) is None


async def test_connection_refused_and_reset_are_retryable(es: ESStandIn, make_output) -> None:
    out = await make_output(index="r", request_timeout=5)
    await send(out, events(1))
    es.reset_before = 2  # aiohttp resends an idempotent PUT once when a reused connection drops
    with pytest.raises(RetryableError):
        await send(out, events(2))
    assert es.stats.resets == 2 and es.count() == 1
    await es.stop()
    with pytest.raises(RetryableError):
        await send(out, events(2))
    await es.start()
    assert await send(out, events(2)) is None


async def test_slow_server_times_out_as_retryable(es: ESStandIn, make_output) -> None:
    out = await make_output(index="slow", request_timeout=0.2)
    await send(out, events(1))
    es.delay = 1.0
    with pytest.raises(RetryableError):
        await send(out, events(1, start=5))


async def test_failure_after_some_requests_retries_only_the_rest(es: ESStandIn, make_output) -> None:
    out = await make_output(index="p", bulk_max_docs=3)
    await send(out, events(1))

    es.request_failures.extend([None, 503])  # the chunk's second bulk request is refused
    result = await send(out, events(8, start=10))
    assert isinstance(result, WriteResult)
    assert result.retry == [3, 4, 5, 6, 7] and result.failed == []


async def test_too_large_request_is_split_until_it_fits(es: ESStandIn, make_output) -> None:
    out = await make_output(index="big")
    await send(out, events(1))
    es.max_content_length = 1500
    result = await send(out, events(8, start=10) + [Event("a", T0, {"blob": "x" * 4000})])
    assert isinstance(result, WriteResult)
    assert result.failed and result.failed[0][0] == 8 and result.failed[0][1].startswith("413")
    assert es.count() == 9


# ---- compatibility and product check -----------------------------------------------------


@pytest.mark.parametrize("version", ["8.15.3", "9.1.3"])
async def test_client_talks_to_es8_and_es9(version: str) -> None:
    server = ESStandIn(version)
    await server.start()
    out = ElasticsearchOutput(hosts=[server.url], index="v")
    try:
        assert await send(out, events(2)) is None
        assert server.count() == 2
        sent = server.headers_seen[-1]
        assert "compatible-with=8" in sent["Accept"] and "compatible-with=8" in sent["Content-Type"]
    finally:
        await out.close()
        await server.stop()


@pytest.mark.parametrize("version, compat, ok", [("8.15.3", 9, False), ("8.15.3", 7, True),
                                                 ("9.1.3", 9, True), ("9.1.3", 8, True), ("9.1.3", 7, False)])
async def test_standin_checks_compatibility_like_es(version: str, compat: int, ok: bool) -> None:
    """What the 9.x client sends (compatible-with=9) is refused by ES 8, as by the real server."""
    server = ESStandIn(version)
    await server.start()
    headers = {"Accept": f"application/vnd.elasticsearch+json; compatible-with={compat}",
               "Content-Type": f"application/vnd.elasticsearch+x-ndjson; compatible-with={compat}"}
    body = b'{"index":{"_index":"x"}}\n{"a":1}\n'
    try:
        async with aiohttp.ClientSession() as session, \
                session.post(server.url + "/_bulk", data=body, headers=headers) as resp:
            payload = await resp.json(content_type=None)
        if ok:
            assert resp.status == 200 and payload["items"][0]["index"]["status"] == 201
        else:
            assert resp.status == 400
            assert payload["error"]["type"] == "media_type_header_exception"
            assert f"but found {compat}" in payload["error"]["caused_by"]["reason"]
    finally:
        await server.stop()


async def test_missing_product_header_is_refused() -> None:
    server = ESStandIn(product_header=False)
    await server.start()
    out = ElasticsearchOutput(hosts=[server.url])
    try:
        with pytest.raises(RetryableError, match="not Elasticsearch"):
            await send(out, events(1))
        assert server.count() == 0
    finally:
        await out.close()
        await server.stop()


async def test_basic_auth_and_api_key() -> None:
    server = ESStandIn(basic_auth=("elastic", "s3cret"), api_key=("kid", "kval"))
    await server.start()
    outs = [ElasticsearchOutput(hosts=[server.url], index="a", user="elastic", password="s3cret"),
            ElasticsearchOutput(hosts=[server.url], index="a", api_key="kid:kval"),
            ElasticsearchOutput(hosts=[server.url], index="a", user="elastic", password="wrong")]
    try:
        assert await send(outs[0], events(1)) is None
        assert await send(outs[1], events(1, start=1)) is None
        with pytest.raises(RetryableError, match="401"):
            await send(outs[2], events(1, start=2))
        assert server.count() == 2
    finally:
        for out in outs:
            await out.close()
        await server.stop()
