"""out_secondary_file as the <secondary> of a failing output: the chunk as Fluentd dumps it."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgpack
import pytest

from logpipe.errors import ConfigError
from logpipe.helpers.forward_protocol import ext_hook, time_to_ns
from logpipe.pipeline import Pipeline
from tests.support.net import free_port

S = 1_000_000_000
T = 1293974055 * S


def failing_forward(port: int, secondary: str, buffer_args: str = "tag") -> str:
    return f"""
<match app.**>
  @type forward
  heartbeat_type none
  <server>
    host 127.0.0.1
    port {port}
  </server>
  <buffer {buffer_args}>
    @type memory
    flush_mode immediate
    retry_max_times 0
  </buffer>
  <secondary>
{secondary}
  </secondary>
</match>
"""


async def test_failed_forward_chunk_is_dumped_as_fluentd_standard_msgpack(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    config = failing_forward(free_port(), f"    @type secondary_file\n    directory {dump}\n"
                                          "    basename ${tag}.bin\n    compress gzip")
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "s")) as pipeline:
        ack = await pipeline.emit("app.web", {"k": "v"}, time=T)
        await pipeline.delivered(ack)
    (written,) = dump.iterdir()
    assert written.name == "app.web.bin.0.gz"
    entries = _entries(gzip.decompress(written.read_bytes()))
    assert [(time_to_ns(t), r) for t, r in entries] == [(T, {"k": "v"})]


def _entries(data: bytes) -> list:
    unpacker = msgpack.Unpacker(raw=False, ext_hook=ext_hook)
    unpacker.feed(data)
    return list(unpacker)


async def test_failed_out_file_lines_are_dumped_as_written(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")  # the primary cannot create its directory under a file
    config = f"""
<match **>
  @type file
  path {blocked}/sub/out
  <buffer []>
    @type memory
    flush_mode immediate
    retry_max_times 0
  </buffer>
  <secondary>
    @type secondary_file
    directory {dump}
    append true
  </secondary>
</match>
"""
    pipeline = Pipeline.from_string(config, state_dir=str(tmp_path / "s"))
    out = pipeline.built.outputs[0]
    out.start = _no_probe  # the writability probe would refuse the path before the failure we want
    async with pipeline:
        ack = await pipeline.emit("a.b", {"n": 1}, time=T)
        await pipeline.delivered(ack)
    assert (dump / "dump.bin").read_bytes().endswith(b'\ta.b\t{"n":1}\n')


async def _no_probe() -> None:
    return None


def test_secondary_file_mistakes() -> None:
    with pytest.raises(ConfigError, match="only be used in the <secondary> section"):
        Pipeline.from_string("<match **>\n  @type secondary_file\n  directory /tmp/x\n</match>\n")
    with pytest.raises(ConfigError, match="basename should not include") as err:
        Pipeline.from_string(failing_forward(1, "    @type secondary_file\n    directory /tmp\n    basename a/b"))
    assert err.value.pos is not None and err.value.pos.line == 17  # the basename line, as `check` shows it
    with pytest.raises(ConfigError, match=r"incompatible placeholder tag, remove tag placeholder"):
        Pipeline.from_string(failing_forward(1, "    @type secondary_file\n    directory /tmp/${tag}", "[]"))
