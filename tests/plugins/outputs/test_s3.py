"""The s3 output against the S3 stand-in (or a real endpoint: LOGPIPE_TEST_S3_ENDPOINT): a chunk
is one object, acknowledged only after PutObject succeeded; keys are deterministic, so a retry
overwrites; SlowDown / InternalError / lost connections are retried, refusals dead-lettered;
rotation by size and time; gzip; object headers; credentials from the AWS variables; both
config front-ends."""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe.build import instantiate
from logpipe.config import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe.testing import OutputDriver
from logpipe_plugins.outputs.s3 import S3Output
from tests.support.pipeline import first_plugin
from tests.support.s3 import S3Target

T0 = 1_700_000_000_123_000_000  # 2023-11-14T22:13:20.123Z


def events(n: int, start: int = 0, tag: str = "app.web", **extra: object) -> list[Event]:
    return [Event(tag, T0 + i, {"seq": i, "message": f"line {i}", **extra}) for i in range(start, start + n)]


def lines(body: bytes) -> list[dict[str, Any]]:
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return [orjson.loads(line) for line in body.splitlines()]


async def objects(target: S3Target) -> dict[str, bytes]:
    return await asyncio.to_thread(target.objects)


async def test_a_chunk_is_one_gzip_object_under_the_rendered_key(s3: S3Target) -> None:
    out = S3Output(**s3.settings(prefix=s3.prefix + "${tag[1]}/%{[host]}/", encoding="gzip",
                                 storage_class="STANDARD_IA", canned_acl="bucket-owner-full-control"))
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(100, host="web-1"), tag="app.web")
    assert delivery.delivered == 100 and delivery.dead_lettered == 0
    stored = await objects(s3)
    [(key, body)] = stored.items()
    assert key.startswith(s3.prefix + "web/web-1/2023111422_") and key.endswith(".gz")
    assert [d["seq"] for d in lines(body)] == list(range(100))
    assert lines(body)[0]["@timestamp"] == "2023-11-14T22:13:20.123Z"
    head = await asyncio.to_thread(s3.head, key)
    assert head["StorageClass"] == "STANDARD_IA" and head["ContentType"] == "application/gzip"


async def test_events_of_different_hours_in_one_chunk_become_one_object_each(s3: S3Target) -> None:
    out = S3Output(**s3.settings())
    batch = [Event("t", T0 + h * 3600 * 10**9, {"seq": h}) for h in range(3)]
    async with OutputDriver(out) as driver:
        assert (await driver.write(batch)).delivered == 3
    stored = await objects(s3)
    slices = sorted(key[len(s3.prefix):].split("_")[0] for key in stored)
    assert slices == ["2023111422", "2023111423", "2023111500"]
    assert sorted(lines(b"".join(stored.values()))[i]["seq"] for i in range(3)) == [0, 1, 2]


async def test_a_lost_answer_is_retried_to_the_same_key_and_overwrites(s3: S3Target) -> None:
    standin = s3.armed()
    standin.drop_after_store_next(1)  # S3 stored it, the answer never came
    out = S3Output(**s3.settings())
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(10))
    assert delivery.delivered == 10, standin.puts
    assert len(standin.puts) == 2 and standin.puts[0] == standin.puts[1]  # written twice, to one key
    stored = await objects(s3)
    assert len(stored) == 1 and [d["seq"] for d in lines(next(iter(stored.values())))] == list(range(10))


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
async def test_slowdown_and_internal_error_are_retried_until_stored(s3: S3Target, status: int, code: str) -> None:
    standin = s3.armed()
    standin.fail_next(2, status, code)
    out = S3Output(**s3.settings(retry_max_times=5))
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(5))
    assert delivery.delivered == 5 and delivery.retries == 2 and delivery.dead_lettered == 0
    assert len(await objects(s3)) == 1


async def test_a_dropped_connection_is_an_io_error_retried(s3: S3Target) -> None:
    standin = s3.armed()
    standin.drop_next(1)
    out = S3Output(**s3.settings())
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(5))
    # Sent again (by aiohttp itself, which resends an idempotent PUT once after a disconnect,
    # or by the buffer engine) and stored once.
    assert delivery.delivered == 5 and standin.requests == 2 and len(standin.puts) == 1


async def test_nothing_is_acknowledged_before_the_put_succeeded(s3: S3Target) -> None:
    standin = s3.armed()
    standin.fail_next(1000, 503, "SlowDown")
    out = S3Output(**s3.settings(retry_max_times=2))
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(5))
    assert delivery.delivered == 0 and delivery.dead_lettered == 5  # gave up: dead-lettered, never "delivered"
    assert standin.puts == []


async def test_a_refusal_is_dead_lettered_not_retried(s3: S3Target, tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.jsonl"
    out = S3Output(**s3.settings(secret_access_key="wrong-secret", retry_max_times=5, dead_letter_path=str(dlq)))
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(3))
    assert delivery.delivered == 0 and delivery.retries == 0 and delivery.dead_lettered == 3
    letters = [orjson.loads(line) for line in dlq.read_text().splitlines()]
    assert len(letters) == 3 and "SignatureDoesNotMatch" in letters[0]["reason"]
    assert letters[0]["item"]["line"]["seq"] == 0


async def test_missing_bucket_is_dead_lettered_with_s3s_code(s3: S3Target) -> None:
    out = S3Output(**{**s3.settings(), "bucket": "logpipe-no-such-bucket-" + s3.prefix.split("/")[1]})
    async with OutputDriver(out) as driver:
        delivery = await driver.write(events(2))
    assert delivery.dead_lettered == 2 and delivery.retries == 0


async def test_size_file_rotates_objects(s3: S3Target) -> None:
    out = S3Output(**s3.settings(size_file=4096))
    async with OutputDriver(out) as driver:
        assert (await driver.write(events(400))).delivered == 400
    stored = await objects(s3)
    assert len(stored) > 3
    assert all(len(body) <= 4096 for body in stored.values())
    assert sorted(d["seq"] for body in stored.values() for d in lines(body)) == list(range(400))


async def test_time_file_writes_the_object_without_a_flush(s3: S3Target, tmp_path: Path) -> None:
    """A Logstash-DSL pipeline: time_file (minutes) is how long an object stays open."""
    conf = (f'input {{ generator {{ lines => ["a"] count => 20 }} }}\n'
            f'output {{ s3 {{ bucket => "{s3.bucket}" region => "{s3.region}" endpoint => "{s3.endpoint}" '
            f'additional_settings => {{ "force_path_style" => true }} access_key_id => "{s3.access_key}" '
            f'secret_access_key => "{s3.secret_key}" prefix => "{s3.prefix}%{{+YYYY}}/" time_file => 0.005 }} }}\n')
    async with Pipeline.from_string(conf, state_dir=str(tmp_path)):
        async with asyncio.timeout(15):
            while not (stored := await objects(s3)):
                await asyncio.sleep(0.1)  # polling the bucket: S3 has no notification to wait on
    [(key, body)] = stored.items()
    assert key.startswith(f"{s3.prefix}{time.gmtime().tm_year}/")  # %{+YYYY}: the (generated) event's year
    assert len(lines(body)) == 20


async def test_credentials_from_the_aws_environment(s3: S3Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("AWS_REGION", s3.region)
    settings = s3.settings()
    for name in ("access_key_id", "secret_access_key", "region"):
        del settings[name]
    async with OutputDriver(S3Output(**settings)) as driver:
        assert (await driver.write(events(2))).delivered == 2
    assert len(await objects(s3)) == 1


def test_both_front_ends_spell_the_same_output() -> None:
    logstash = load_config_string(
        'output { s3 { bucket => "b" region => "eu-west-1" endpoint => "http://minio:9000" prefix => "logs/" '
        'encoding => "gzip" canned_acl => "bucket-owner-full-control" storage_class => "STANDARD_IA" '
        'access_key_id => "k" secret_access_key => "s" } }', "ls.conf")
    fluentd = load_config_string(
        "<match **>\n  @type s3\n  s3_bucket b\n  s3_region eu-west-1\n  s3_endpoint http://minio:9000\n"
        "  path logs/\n  store_as gzip\n  acl bucket-owner-full-control\n  storage_class STANDARD_IA\n"
        "  aws_key_id k\n  aws_sec_key s\n</match>\n", "fd.conf")
    a, b = (instantiate(first_plugin(cfg.outputs)) for cfg in (logstash, fluentd))
    for name in ("bucket", "region", "endpoint", "prefix", "canned_acl", "storage_class", "access_key_id",
                 "secret_access_key"):
        assert a.params[name] == b.params[name], name
    assert a.params["encoding"] == "gzip" and b.params["store_as"] == "gzip"


async def test_a_fluentd_config_writes_through(s3: S3Target, tmp_path: Path) -> None:
    conf = (f"<match app.**>\n  @type s3\n  s3_bucket {s3.bucket}\n  s3_region {s3.region}\n"
            f"  s3_endpoint {s3.endpoint}\n  force_path_style true\n  aws_key_id {s3.access_key}\n"
            f"  aws_sec_key {s3.secret_key}\n  path {s3.prefix}${{tag}}/\n  store_as gzip\n"
            "  <buffer tag>\n    flush_mode immediate\n  </buffer>\n</match>\n")
    async with Pipeline.from_string(conf, state_dir=str(tmp_path)) as pipeline:
        ack = await pipeline.emit("app.api", {"message": "hello"})
        await asyncio.wait_for(ack, 15)
    [(key, body)] = (await objects(s3)).items()
    assert key.startswith(s3.prefix + "app.api/") and key.endswith(".gz")
    assert lines(body)[0]["message"] == "hello"


def test_config_errors_are_placed() -> None:
    cfg = load_config_string('output {\n  s3 {\n    bucket => "b"\n    canned_acl => "everyone"\n  }\n}\n', "bad.conf")
    with pytest.raises(ConfigError) as exc:
        instantiate(first_plugin(cfg.outputs))
    assert exc.value.pos is not None and exc.value.pos.line == 4 and "private" in str(exc.value)
    with pytest.raises(ConfigError) as kms:
        S3Output(bucket="b", ssekms_key_id="k", server_side_encryption=True)
    assert kms.value.setting == "ssekms_key_id"


async def test_a_fluentd_format_section_writes_single_values(s3: S3Target, tmp_path: Path) -> None:
    conf = (f"<match **>\n  @type s3\n  s3_bucket {s3.bucket}\n  s3_region {s3.region}\n"
            f"  s3_endpoint {s3.endpoint}\n  force_path_style true\n  aws_key_id {s3.access_key}\n"
            f"  aws_sec_key {s3.secret_key}\n  path {s3.prefix}\n  <format>\n    @type single_value\n  </format>\n"
            "  <buffer>\n    flush_mode immediate\n  </buffer>\n</match>\n")
    async with Pipeline.from_string(conf, state_dir=str(tmp_path)) as pipeline:
        ack = await pipeline.emit_many("app", [{"message": "first"}, {"message": "second"}])
        await asyncio.wait_for(ack, 15)
    [(key, body)] = (await objects(s3)).items()
    assert body == b"first\nsecond\n" and key.endswith(".log")
