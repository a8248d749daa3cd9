"""Fluentd's out_file in Fluentd configs: path rules (vectors from Fluentd 1.14's
test/plugin/test_out_file.rb, #generate_path_template), placeholders from chunk keys and
Fluentd's configure-time errors at the path's line, append/_N, gzip, symlink, lazy timekey flush."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from logpipe.errors import ConfigError
from logpipe.pipeline import Pipeline
from logpipe_plugins.outputs.fluent_file import path_template

S = 1_000_000_000
T = 1293974055 * S  # 2011-01-02 13:14:15 UTC (test_out_file.rb)


@pytest.mark.parametrize(("timekey", "placeholder", "slice_format"), [
    (86400, "%Y%m%d", "%Y-%m-%d"), (3600, "%Y%m%d%H", "%Y-%m-%d_%H"), (60, "%Y%m%d%H%M", "%Y-%m-%d_%H%M"),
])
def test_path_template_vectors(timekey: int, placeholder: str, slice_format: str) -> None:
    g = path_template
    assert g("/path/to/file.*", timekey, False, False, "") == f"/path/to/file.{placeholder}_**"
    assert g("/path/to/file.*", timekey, False, True, "") == f"/path/to/file.{placeholder}_**.gz"
    assert g("/path/to/file.*", timekey, True, False, "") == f"/path/to/file.{placeholder}"
    assert g("/path/to/file.*", timekey, True, True, "") == f"/path/to/file.{placeholder}.gz"
    assert g("/path/to/file.*", timekey, False, False, "", slice_format) == f"/path/to/file.{slice_format}_**"
    assert g("/path/to/file.*.data", timekey, False, True, "") == f"/path/to/file.{placeholder}_**.data.gz"
    assert g("/path/to/file", timekey, False, False, ".log") == f"/path/to/file.{placeholder}_**.log"
    assert g("/path/to/file", timekey, True, True, ".log") == f"/path/to/file.{placeholder}.log.gz"
    assert g("/path/to/file", timekey, True, True, ".log", slice_format) == f"/path/to/file.{slice_format}.log.gz"
    assert g("/path/to/file", timekey, False, False, "") == f"/path/to/file.{placeholder}_**"


def test_path_template_with_its_own_placeholders() -> None:
    g = path_template
    assert g("/path/to/file.%Y%m%d", 86400, True, False, "") == "/path/to/file.%Y%m%d"
    assert g("/path/to/%Y%m%d/file", 86400, False, False, "") == "/path/to/%Y%m%d/file_**"
    assert g("/path/to/file.%Y%m%d_%H", 7200, False, True, ".log") == "/path/to/file.%Y%m%d_%H_**.log.gz"
    assert g("/path/to/${tag}/file.%Y%m%d_%H", 7200, False, True, ".log") == \
        "/path/to/${tag}/file.%Y%m%d_%H_**.log.gz"
    assert g("/path/to/%Y%m%d/file", 86400, False, False, ".log", "%Y-%m-%d_%H") == \
        "/path/to/%Y%m%d/file.%Y-%m-%d_%H_**.log"
    for path, timekey in (("/path/to/%Y%m/file", 86400), ("/path/to/file.%Y%m%d.log", 3600)):
        with pytest.raises(ConfigError, match="insufficient timestamp placeholders in path"):
            g(path, timekey, True, False, "")
    assert g("/path/to/file.log", None, True, False, "") == "/path/to/file.log"
    assert g("/path/to/file.log", None, False, False, "") == "/path/to/file.log_**"
    assert g("/path/to/file.${tag}", None, False, False, ".log") == "/path/to/file.${tag}_**.log"


async def run(config: str, tmp_path: Path, events: list[tuple[str, int, dict]]) -> None:
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "state")) as pipeline:
        ack = None
        for tag, t, record in events:
            ack = await pipeline.emit(tag, record, time=t)
        assert ack is not None
        await pipeline.delivered(ack)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.is_symlink()}


async def test_tag_time_and_key_placeholders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = f"""
<match web.**>
  @type file
  path {out}/${{tag[1]}}/${{host}}/app.%Y%m%d.%H
  add_path_suffix false
  <buffer tag,time,host>
    @type memory
    timekey 1h
    timekey_wait 0
    timekey_use_utc true
  </buffer>
</match>
"""
    await run(config, tmp_path, [("web.access", T, {"host": "a", "n": 1}), ("web.error", T + 3600 * S, {"host": "b"})])
    assert files(out) == {
        "access/a/app.20110102.13_0": b'2011-01-02T13:14:15+00:00\tweb.access\t{"host":"a","n":1}\n',
        "error/b/app.20110102.14_0": b'2011-01-02T14:14:15+00:00\tweb.error\t{"host":"b"}\n',
    }


async def test_default_naming_index_per_chunk_and_append(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for append in ("false", "true"):
        config = f"""
<match **>
  @type file
  path {out}/{append}/access
  append {append}
  <format>
    @type json
  </format>
  <buffer>
    @type memory
    timekey_wait 0
  </buffer>
</match>
"""
        await run(config, tmp_path, [("a", T, {"n": 1})])
        await run(config, tmp_path, [("a", T, {"n": 2})])
    assert files(out) == {
        "false/access.20110102_0.log": b'{"n":1}\n',
        "false/access.20110102_1.log": b'{"n":2}\n',
        "true/access.20110102.log": b'{"n":1}\n{"n":2}\n',
    }


async def test_gzip_symlink_and_inject_before_format(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = f"""
<match **>
  @type file
  path {out}/${{tag}}/log.*.txt
  compress gzip
  symlink_path {out}/current.${{tag}}
  <inject>
    tag_key the_tag
  </inject>
  <format>
    @type ltsv
  </format>
  <buffer tag,time>
    @type memory
    timekey 1d
    timekey_wait 0
  </buffer>
</match>
"""
    await run(config, tmp_path, [("app", T, {"msg": "x"})])
    written = out / "app" / "log.20110102_0.txt.gz"
    assert gzip.decompress(written.read_bytes()) == b"msg:x\tthe_tag:app\n"
    link = out / "current.app"
    assert link.is_symlink() and os.path.realpath(link) == str(written)


async def test_lazy_flush_waits_for_the_slot_and_timekey_wait(tmp_path: Path) -> None:
    """Fluentd's default for time chunks: nothing is written while the day is not over."""
    out = tmp_path / "out"
    config = f"""
<match **>
  @type file
  path {out}/today
  <buffer>
    @type memory
    flush_at_shutdown false
  </buffer>
</match>
"""
    import time

    async with Pipeline.from_string(config, state_dir=str(tmp_path / "state")) as pipeline:
        await pipeline.emit("a", {"n": 1}, time=time.time_ns())
        old = await pipeline.emit("a", {"n": 0}, time=T)
        await pipeline.delivered(old)  # a slot long past is due at once
        assert [p.name for p in out.iterdir()] == ["today.20110102_0.log"]
        (runner,) = pipeline._runners.values()
        assert runner.counts["delivered"] == 1 and runner.config.flush_mode == "lazy"


@pytest.mark.parametrize(("path", "buffer", "message"), [
    ("/tmp/x/${tag}/a", "time", "Parameter 'path: /tmp/x/${tag}/a.%Y%m%d_**.log' has tag placeholders, but chunk "
                                "key 'tag' is not configured"),
    ("/tmp/x/a", "tag,time", "Parameter 'path: /tmp/x/a.%Y%m%d_**.log' doesn't have tag placeholder"),
    ("/tmp/x/${host}/a", "time", "Parameter 'path: /tmp/x/${host}/a.%Y%m%d_**.log' has placeholders, but chunk "
                                 "keys doesn't have keys host"),
    ("/tmp/x/a", "time,host", "Parameter 'path: /tmp/x/a.%Y%m%d_**.log' doesn't have enough placeholders for keys "
                              "host"),
    ("/tmp/x/%d/${tag}", "tag", "Parameter 'path: /tmp/x/%d/${tag}_**.log' has timestamp placeholders, but "
                                "chunk key 'time' is not configured"),
    ("/tmp/x/*.log", "tag", "path including '*' must be used with buffer chunk key 'time'"),
])
def test_placeholder_without_chunk_key_is_an_error_at_the_path(path: str, buffer: str, message: str) -> None:
    config = f"""<match **>
  @type file
  path {path}
  <buffer {buffer}>
    timekey 1d
  </buffer>
</match>
"""
    with pytest.raises(ConfigError) as err:
        Pipeline.from_string(config, name="out.conf")
    assert err.value.message == message
    assert (err.value.pos.line, err.value.pos.col) == (3, 8)
    assert "out.conf:3:8" in err.value.render()


def test_year_alone_is_not_a_time_placeholder_as_in_fluentd() -> None:
    """Fluentd's check looks at second to day only: `%Y` with no time chunk key passes."""
    Pipeline.from_string("<match **>\n  @type file\n  path /tmp/x/%Y/${tag}\n  <buffer tag>\n  </buffer>\n</match>\n")


def test_v012_flat_format_parameters_become_a_format_section() -> None:
    config = """<match **>
  @type file
  path /tmp/x/y
  format ltsv
  label_delimiter =
  time_slice_format %Y%m%d%H
</match>
"""
    pipeline = Pipeline.from_string(config)
    out = pipeline.plugins[-1]
    assert out.name == "fluent_file"
    assert out.formatter.format("t", T, {"a": 1}) == b"a=1\n"
    assert out.template == "/tmp/x/y.%Y%m%d%H_**.log"


async def test_stdout_format_sections(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = """
<match a>
  @type stdout
  <format>
    @type ltsv
  </format>
</match>
<match b>
  @type stdout
  output_type hash
</match>
<match c>
  @type stdout
  <inject>
    tag_key t
  </inject>
  <format>
    @type json
  </format>
</match>
"""
    await run(config, tmp_path, [("a", T, {"k": "v"}), ("b", T, {"k": "v"}), ("c", T, {"k": "v"})])
    lines = capfd.readouterr().out.splitlines()
    assert "k:v" in lines
    assert '2011-01-02 13:14:15.000000000 +0000 b: {"k"=>"v"}' in lines  # this machine runs in UTC
    assert '{"k":"v","t":"c"}' in lines


async def test_inject_keys_in_fluentd_order_before_json(tmp_path: Path) -> None:
    """Byte for byte what Fluentd 1.14.4 wrote for this config (differential run, see the issue note)."""
    out = tmp_path / "out"
    config = f"""
<match **>
  @type file
  path {out}/${{tag}}/%Y%m%d/app
  <inject>
    tag_key t
    time_key ts
    time_type string
    utc true
  </inject>
  <format>
    @type json
  </format>
  <buffer tag,time>
    @type memory
    timekey 1d
    timekey_use_utc true
    timekey_wait 0
  </buffer>
</match>
"""
    await run(config, tmp_path, [("app.web", 1362020400 * S, {"level": "ERROR", "code": 500, "msg": 'a "q"'})])
    assert files(out) == {"app.web/20130228/app_0.log":
                          b'{"level":"ERROR","code":500,"msg":"a \\"q\\"","t":"app.web","ts":"2013-02-28T03:00:00Z"}\n'}
