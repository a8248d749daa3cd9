"""Fluentd's filter_parser (docs.fluentd.org/filter/parser) and the @ERROR label."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe_plugins.filters.parser import ParserFilter

S = 10**9
LINE = '192.168.0.1 - - [05/Feb/2018:12:00:00 +0900] "GET / HTTP/1.1" 200 777'
EXPR = ('/^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] "(?<method>\\S+)(?: +(?<path>[^ ]*) +\\S*)?" '
        '(?<code>[^ ]*) (?<size>[^ ]*)$/')


def regexp_filter(**extra: object) -> ParserFilter:
    return ParserFilter(key_name="log", parse={"@type": "regexp", "expression": EXPR,
                                               "time_format": "%d/%b/%Y:%H:%M:%S %z"}, **extra)


def test_docs_example_replaces_the_record_and_takes_the_time() -> None:
    (ev,) = regexp_filter().filter([Event("foo.bar", 5 * S, {"log": LINE})])
    assert ev.record == {"host": "192.168.0.1", "user": "-", "method": "GET", "path": "/", "code": "200",
                         "size": "777"}
    assert ev.time == 1517799600 * S


def test_reserve_data_remove_key_name_field_and_reserve_time() -> None:
    (ev,) = regexp_filter(reserve_data=True, remove_key_name_field=True, reserve_time=True).filter(
        [Event("t", 5 * S, {"log": LINE, "other": 1})])
    assert ev.record["other"] == 1 and "log" not in ev.record and ev.record["code"] == "200"
    assert ev.time == 5 * S


def test_inject_key_prefix_and_hash_value_field() -> None:
    f = ParserFilter(key_name="log", parse={"@type": "json"}, inject_key_prefix="data.", hash_value_field="parsed")
    (ev,) = f.filter([Event("t", 5 * S, {"log": '{"user":1}'})])
    assert ev.record == {"parsed": {"data.user": 1}} and ev.time == 5 * S  # no time in the value: kept


def test_nested_key_name() -> None:
    f = ParserFilter(key_name="$.kubernetes.log", parse={"@type": "json"})
    (ev,) = f.filter([Event("t", 1, {"kubernetes": {"log": '{"a":"b"}'}})])
    assert ev.record == {"a": "b"}


def test_failures_become_error_events_and_reserve_data_keeps_the_original() -> None:
    f = regexp_filter()
    (bad,) = f.filter([Event("t", 1, {"log": "garbage"})])
    assert bad.meta["_label"] == "@ERROR" and "pattern not matched" in bad.meta["_error"]
    (missing,) = f.filter([Event("t", 1, {"x": 1})])
    assert missing.meta["_error"] == "log does not exist"
    error, original = regexp_filter(reserve_data=True).filter([Event("t", 1, {"log": "garbage"})])
    assert error.meta["_label"] == "@ERROR" and "_label" not in original.meta
    assert original.record == {"log": "garbage"}
    assert regexp_filter(emit_invalid_record_to_error=False).filter([Event("t", 1, {"log": "garbage"})]) == []


def test_parse_section_is_required() -> None:
    with pytest.raises(ConfigError) as err:
        ParserFilter(key_name="log")
    assert "parse" in err.value.message


async def test_error_label_receives_what_the_parser_refused(tmp_path: Path) -> None:
    good, errors = tmp_path / "good.jsonl", tmp_path / "errors.jsonl"
    config = f"""
<filter app.**>
  @type parser
  key_name log
  format json
</filter>
<match app.**>
  @type file
  path {good}
  append true
  add_path_suffix false
  <format>
    @type json
  </format>
  <buffer []>
    @type memory
  </buffer>
</match>
<label @ERROR>
  <match **>
    @type file
    path {errors}
    append true
    add_path_suffix false
    <format>
      @type json
    </format>
    <buffer []>
      @type memory
    </buffer>
  </match>
</label>
"""
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "s")) as pipeline:
        await pipeline.emit("app.x", {"log": '{"ok": true}'})
        ack = await pipeline.emit("app.x", {"log": "not json"})
        await pipeline.delivered(ack)
    assert [orjson.loads(x)["ok"] for x in good.read_bytes().splitlines()] == [True]
    assert [orjson.loads(x)["log"] for x in errors.read_bytes().splitlines()] == ["not json"]


async def test_without_an_error_label_refused_events_reach_no_match(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = f"""
<filter **>
  @type parser
  key_name log
  <parse>
    @type json
  </parse>
</filter>
<match **>
  @type file
  path {out}
  append true
  add_path_suffix false
  <format>
    @type json
  </format>
  <buffer []>
    @type memory
  </buffer>
</match>
"""
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "s")) as pipeline:
        await pipeline.emit("a", {"log": "not json"})
        ack = await pipeline.emit("a", {"log": '{"n": 2}'})
        await pipeline.delivered(ack)
    assert [orjson.loads(x)["n"] for x in out.read_bytes().splitlines()] == [2]
