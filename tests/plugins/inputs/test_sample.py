"""Fluentd's in_sample / in_dummy, and <worker N> sections."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.pipeline import Pipeline
from logpipe_plugins.inputs.sample import SampleInput


async def test_sample_records_cycle_with_a_counter_and_stop_at_count(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = f"""
<worker 0>
  <source>
    @type dummy
    tag sample.data
    dummy [{{"a": 1}}, {{"a": 2}}]
    rate 50
    auto_increment_key n
    count 5
  </source>
</worker>
<match sample.**>
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
    pipeline = Pipeline.from_string(config, state_dir=str(tmp_path / "s"))
    assert await pipeline.run() == 0
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [(r["a"], r["n"]) for r in records] == [(1, 0), (2, 1), (1, 2), (2, 3), (1, 4)]


def test_default_record_and_mistakes() -> None:
    assert SampleInput(tag="x")._records == [{"message": "sample"}]
    with pytest.raises(ConfigError) as err:
        SampleInput(tag="x", sample="{not json")
    assert err.value.setting == "sample"
    with pytest.raises(ConfigError):
        load_config_string("<worker all>\n</worker>\n")
