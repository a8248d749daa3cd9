"""v0.12 flat parameters run as Fluentd 1.x converts them (compat_parameters), and <inject>."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from logpipe.build import plain
from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.pipeline import Pipeline

S = 10**9


def settings_of(config: str, index: int = 0, section: str = "inputs") -> dict:
    parsed = load_config_string(config, "compat.conf")
    nodes = getattr(parsed, section)
    node = nodes[index]
    while not hasattr(node, "settings"):  # outputs sit in the first-match-wins chain
        node = node.branches[0].body[0]
    return plain({k: v.value for k, v in node.settings.items()})


def test_flat_format_and_time_parameters_move_into_parse() -> None:
    got = settings_of("""
<source>
  @type tail
  path /var/log/a.log
  tag a
  format /^(?<time>\\S+) (?<msg>.*)$/
  time_format %Y-%m-%dT%H:%M:%S%z
  keep_time_key true
  types code:integer
</source>
""")
    assert got["parse"] == {"@type": "regexp", "expression": "/^(?<time>\\S+) (?<msg>.*)$/",
                            "time_format": "%Y-%m-%dT%H:%M:%S%z", "keep_time_key": "true", "types": "code:integer"}
    assert "format" not in got and "time_format" not in got


def test_flat_multiline_format() -> None:
    got = settings_of("""
<source>
  @type tail
  path /var/log/a.log
  tag a
  format multiline
  format_firstline /^\\d{4}/
  format1 /^(?<time>\\S+) /
  format2 /(?<msg>.*)/
</source>
""")
    assert got["parse"]["@type"] == "multiline" and got["parse"]["format2"] == "/(?<msg>.*)/"


def test_flat_buffer_parameters_become_a_buffer_section() -> None:
    got = settings_of("""
<match **>
  @type stdout
  buffer_type file
  buffer_path /tmp/buf
  buffer_chunk_limit 8m
  buffer_queue_limit 64
  flush_interval 10s
  retry_limit 5
  num_threads 2
  disable_retry_limit false
  max_retry_wait 30s
  buffer_queue_full_action exception
  time_slice_format %Y%m%d%H
</match>
""", section="outputs")
    assert got["buffer"] == {"@args": "time", "@type": "file", "chunk_limit_size": "8m", "queue_limit_length": "64",
                             "retry_max_times": "5", "flush_thread_count": "2", "retry_forever": "false",
                             "retry_max_interval": "30s", "overflow_action": "throw_exception", "timekey": "3600"}
    assert got["buffer_path"] == "/tmp/buf" and got["flush_interval"] == "10s"
    Pipeline(load_config_string("""
<match **>
  @type stdout
  buffer_type file
  buffer_path /tmp/buf
  buffer_chunk_limit 8m
  retry_limit 5
  num_threads 2
  time_slice_format %Y%m%d
</match>
"""))  # builds: every moved value is valid for the buffer engine


async def test_include_time_key_and_tag_key_inject_into_the_record(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = f"""
<match web.**>
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
  include_time_key true
  time_format %Y-%m-%dT%H:%M:%S.%L%:z
  include_tag_key true
  tag_key the_tag
  utc
</match>
"""
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "s")) as pipeline:
        ack = await pipeline.emit("web.access", {"k": "v"}, time=1362020400 * S + 5 * 10**6)
        await pipeline.delivered(ack)
    (record,) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert record["k"] == "v" and record["the_tag"] == "web.access"
    assert record["time"] == "2013-02-28T03:00:00.005+00:00"


async def test_inject_section_float_time_and_hostname(tmp_path: Path) -> None:
    import socket

    out = tmp_path / "out.jsonl"
    config = f"""
<match **>
  @type copy
  <store>
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
    <inject>
      time_key ts
      time_type float
      hostname_key host
    </inject>
  </store>
  <store>
    @type null
  </store>
</match>
"""
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "s")) as pipeline:
        original = {"k": "v"}
        ack = await pipeline.emit("a", original, time=1362020400 * S + S // 2)
        await pipeline.delivered(ack)
    (record,) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert record["ts"] == 1362020400.5 and record["host"] == socket.gethostname()
    assert original == {"k": "v"}  # injected into a copy: other outputs see the record unchanged


def test_inject_mistakes_are_positioned_config_errors() -> None:
    with pytest.raises(ConfigError) as err:
        Pipeline(load_config_string("<match **>\n  @type null\n  <inject>\n    time_kye t\n  </inject>\n</match>\n",
                                    "inj.conf"))
    assert "time_kye" in err.value.message and err.value.pos is not None and err.value.pos.line == 3


def test_log_level_gives_the_plugin_its_own_level() -> None:
    pipeline = Pipeline(load_config_string("<match **>\n  @type null\n  @id quiet\n  @log_level error\n</match>\n"))
    (output,) = pipeline.built.outputs
    assert output.log.level == logging.ERROR
    with pytest.raises(ConfigError):
        Pipeline(load_config_string("<match **>\n  @type null\n  @log_level loud\n</match>\n"))


async def test_v012_tail_config_parses_with_flat_time_format(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("2013-02-28T12:00:00+0900 ERROR boom\nnot matching\n")
    out = tmp_path / "out.jsonl"
    config = f"""
<source>
  type tail
  path {log}
  pos_file {tmp_path}/app.pos
  read_from_head true
  tag app
  format /^(?<time>\\S+) (?<level>\\w+) (?<msg>.*)$/
  time_format %Y-%m-%dT%H:%M:%S%z
</source>
<match app>
  type file
  path {out}
  format json
  append true
  add_path_suffix false
  include_time_key true
  utc
  <buffer []>
    @type memory
  </buffer>
</match>
"""
    pipeline = Pipeline.from_string(config, state_dir=str(tmp_path / "s"))
    await pipeline.start()
    import asyncio

    for _ in range(200):
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            break
        await asyncio.sleep(0.05)
    await pipeline.stop()
    (record,) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    # The event time came from the line; <inject> writes it as Fluentd does (no time_format: ISO 8601, Z in UTC).
    assert record == {"level": "ERROR", "msg": "boom", "time": "2013-02-28T03:00:00Z"}
