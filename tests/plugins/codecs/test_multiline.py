"""multiline codec: vectors from logstash-codec-multiline's spec, and the codec on stdin (a real pipe,
auto_flush_interval) and on the file input (the tail's own joiner)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from logpipe import registry
from logpipe.errors import ConfigError
from logpipe.pipeline import Pipeline
from logpipe_plugins.codecs.multiline import MultilineCodec
from tests.support.pipeline import CollectOutput


def test_previous_with_space_indented_lines() -> None:
    codec = MultilineCodec(pattern="^\\s", what="previous")
    records = codec.decode(["hello world", "   second line", "another first line"]) + codec.flush()
    assert records == [{"message": "hello world\n   second line", "tags": ["multiline"]},
                       {"message": "another first line"}]


def test_ecs_sets_event_original_and_custom_tag() -> None:
    codec = MultilineCodec(pattern="^\\s", what="previous", ecs_compatibility="v8", multiline_tag="hurray")
    first, _ = codec.decode(["hello world", "   second line", "x"])[0], None
    assert first["event"]["original"] == "hello world\n   second line"
    assert first["tags"] == ["hurray"]


def test_new_lines_and_negate_and_next() -> None:
    codec = MultilineCodec(pattern="\\D", what="previous")
    out = codec.decode(["1234567890", "A234567890", "B234567890", "0987654321"]) + codec.flush()
    assert [r["message"] for r in out] == ["1234567890\nA234567890\nB234567890", "0987654321"]
    neg = MultilineCodec(pattern="^\\d{4}-", what="previous", negate=True)
    out = neg.decode(["2024-01-01 a", "trace", "2024-01-02 b"]) + neg.flush()
    assert [r["message"] for r in out] == ["2024-01-01 a\ntrace", "2024-01-02 b"]
    nxt = MultilineCodec(pattern="\\\\$", what="next")
    out = nxt.decode(["a \\", "b \\", "c", "d"])
    assert [r["message"] for r in out] == ["a \\\nb \\\nc", "d"]


def test_grok_patterns_and_patterns_dir(tmp_path: Path) -> None:
    codec = MultilineCodec(pattern="^%{NUMBER} %{TIME}", negate=True, what="previous")
    out = codec.decode(["120913 12:04:33 first", "  stack", "120913 12:04:34 second"]) + codec.flush()
    assert [r["message"] for r in out] == ["120913 12:04:33 first\n  stack", "120913 12:04:34 second"]
    (tmp_path / "mine").write_text("MYSTART ^>>\n")
    custom = MultilineCodec(pattern="%{MYSTART}", negate=True, what="previous", patterns_dir=[str(tmp_path)])
    assert [r["message"] for r in custom.decode([">> a", "b", ">> c"])] == [">> a\nb"]


def test_max_lines_cuts_and_bad_settings() -> None:
    codec = MultilineCodec(pattern="^\\s", what="previous", max_lines=2)
    out = codec.decode(["a", " b", " c", " d"])
    assert out[0] == {"message": "a\n b", "tags": ["multiline", "multiline_codec_max_lines_reached"]}
    with pytest.raises(ConfigError) as err:
        MultilineCodec(pattern="(", what="previous")
    assert err.value.setting == "pattern"
    with pytest.raises(ConfigError, match="'previous', 'next'"):
        MultilineCodec(pattern="x", what="sideways")


async def test_stdin_flushes_the_last_event_after_auto_flush_interval(state_dir: str) -> None:
    read_fd, write_fd = os.pipe()
    codec = MultilineCodec(pattern="^\\s", what="previous", auto_flush_interval=0.2)
    sink = CollectOutput()
    stdin = registry.create("input", "stdin", fd=read_fd, codec=codec)
    pipeline = Pipeline(inputs=[stdin], outputs=[sink], state_dir=state_dir)  # type: ignore[list-item]
    task = asyncio.create_task(pipeline.run())
    os.write(write_fd, b"first\n  more\nsecond\n")
    await sink.wait_for(2, timeout=10)  # "second" can only leave by the flush: no line follows it yet
    assert [e.record["message"] for e in sink.events] == ["first\n  more", "second"]
    os.write(write_fd, b"third\n  x\n")
    os.close(write_fd)
    assert await asyncio.wait_for(task, 10) == 0
    os.close(read_fd)
    assert [e.record["message"] for e in sink.events][2:] == ["third\n  x"]


async def test_file_input_takes_the_codec_as_its_joiner(tmp_path: Path, state_dir: str) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR boom\n  at x\n  at y\nINFO ok\nINFO last\n")
    codec = MultilineCodec(pattern="^\\s", what="previous", auto_flush_interval=0.2)
    file_input = registry.create("input", "file", path=str(log), start_position="beginning", codec=codec)
    sink = CollectOutput()
    async with Pipeline(inputs=[file_input], outputs=[sink], state_dir=state_dir):  # type: ignore[list-item]
        await sink.wait_for(3, timeout=10)
    assert [e.record["message"] for e in sink.events] == ["ERROR boom\n  at x\n  at y", "INFO ok", "INFO last"]
    assert sink.events[0].record["tags"] == ["multiline"]
