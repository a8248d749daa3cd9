"""relabel re-routes into a label (its filters and matches); Fluentd's stdout output and filter lines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.fluentd_format import stdout_line
from logpipe.pipeline import Pipeline


async def test_relabel_sends_events_through_the_labels_filters_and_matches(tmp_path: Path) -> None:
    staged, rest = tmp_path / "staged.jsonl", tmp_path / "rest.jsonl"
    config = f"""
<match app.**>
  @type relabel
  @label @STAGING
</match>
<filter **>
  @type record_transformer
  <record>
    top true
  </record>
</filter>
<match **>
  @type file
  path {rest}
  append true
  add_path_suffix false
  <format>
    @type json
  </format>
  <buffer []>
    @type memory
  </buffer>
</match>
<label @STAGING>
  <filter app.**>
    @type record_transformer
    <record>
      staged yes
    </record>
  </filter>
  <match **>
    @type file
    path {staged}
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
        await pipeline.emit("app.web", {"n": 1})
        ack = await pipeline.emit("other", {"n": 2})
        await pipeline.delivered(ack)
    staged_records = [orjson.loads(x) for x in staged.read_bytes().splitlines()]
    rest_records = [orjson.loads(x) for x in rest.read_bytes().splitlines()]
    assert [(r["n"], r["staged"], "top" in r) for r in staged_records] == [(1, "yes", False)]
    assert [(r["n"], r["top"]) for r in rest_records] == [(2, "true")]


def test_relabel_to_an_unknown_label_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_config_string("<match **>\n  @type relabel\n  @label @NOPE\n</match>\n<label @X>\n</label>\n")
    assert "@NOPE" in err.value.message


def test_fluentd_stdout_line_and_default_codec() -> None:
    ev = Event("web.access", 1431857103 * 10**9, {"k": "v"})
    assert stdout_line(ev) == b'2015-05-17 10:05:03.000000000 +0000 web.access: {"k":"v"}\n'
    pipeline = Pipeline(load_config_string("<match **>\n  @type stdout\n</match>\n"))
    (out,) = pipeline.built.outputs
    assert out.params["codec"].name == "fluentd_stdout"
    logstash = Pipeline(load_config_string("input { stdin {} } output { stdout {} }"))
    assert logstash.built.outputs[0].params["codec"] is None  # Logstash keeps rubydebug


def test_stdout_filter_prints_and_passes_events(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from logpipe_plugins.filters.stdout import StdoutFilter

    events = [Event("t", 0, {"a": 1})]
    assert StdoutFilter().filter(events) == events
    assert capsysbinary.readouterr().out == b'1970-01-01 00:00:00.000000000 +0000 t: {"a":1}\n'
