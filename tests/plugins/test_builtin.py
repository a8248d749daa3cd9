"""stdin, generator, stdout with its codecs, file output: behaviour of each setting."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from logpipe import registry
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from tests.support.pipeline import CollectOutput

EVENT_TIME = 1_700_000_000_123_456_789


def event(**record: object) -> Event:
    return Event("t", EVENT_TIME, dict(record), {"secret": 1})


def test_json_lines_codec_writes_timestamp_and_record_not_metadata() -> None:
    codec = registry.create("codec", "json_lines")
    data = codec.encode([event(message="a", n=1), event(message="b")])  # type: ignore[attr-defined]
    lines = data.splitlines()
    assert [orjson.loads(x) for x in lines] == [
        {"@timestamp": "2023-11-14T22:13:20.123Z", "message": "a", "n": 1},
        {"@timestamp": "2023-11-14T22:13:20.123Z", "message": "b"},
    ]


def test_json_codec_decode_keeps_invalid_input_tagged() -> None:
    codec = registry.create("codec", "json")
    records = codec.decode(['{"a": 1}', "not json", "[1]"])  # type: ignore[attr-defined]
    assert records[0] == {"a": 1}
    assert records[1] == {"message": "not json", "tags": ["_jsonparsefailure"]}
    assert records[2] == {"message": "[1]", "tags": ["_jsonparsefailure"]}


def test_line_codec_format_uses_sprintf() -> None:
    codec = registry.create("codec", "line", format="%{[http][status]} %{message} %{+YYYY}")
    assert codec.encode([event(message="m", http={"status": 200})]) == b"200 m 2023\n"  # type: ignore[attr-defined]


def test_rubydebug_pretty_print() -> None:
    codec = registry.create("codec", "rubydebug", metadata=True)
    text = codec.encode([event(message="hi", nested={"k": [1, None, True]})]).decode()  # type: ignore[attr-defined]
    assert text.startswith("{\n")
    assert '       "message" => "hi",' in text
    assert '"@metadata" => {' in text
    assert "[1] nil" in text and "[2] true" in text


async def test_stdout_writes_to_a_file_descriptor(tmp_path: Path, state_dir: str) -> None:
    target = tmp_path / "stdout.txt"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        out = registry.create("output", "stdout", fd=fd, codec="line")
        async with Pipeline(outputs=[out], state_dir=state_dir) as pipeline:  # type: ignore[list-item]
            ack = await pipeline.emit("t", {"message": "printed"})
            await pipeline.delivered(ack)
    finally:
        os.close(fd)
    assert target.read_text() == "printed\n"


async def test_stdin_reads_a_pipe_to_eof_including_an_unterminated_last_line(state_dir: str) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, "first\nsecond\r\nlast without newline \xff".encode("latin-1"))
    os.close(write_fd)
    sink = CollectOutput()
    pipeline = Pipeline(inputs=[registry.create("input", "stdin", fd=read_fd)],  # type: ignore[list-item]
                        outputs=[sink], state_dir=state_dir)
    assert await pipeline.run() == 0
    os.close(read_fd)
    assert [ev.record["message"] for ev in sink.events] == ["first", "second", "last without newline \ufffd"]
    assert {ev.tag for ev in sink.events} == {"stdin"}


async def test_generator_lines_count_and_codec(state_dir: str) -> None:
    sink = CollectOutput()
    gen = registry.create("input", "generator", lines=['{"a": 1}', '{"a": 2}'], count=3, codec="json",
                          tag="gen.x", batch_size=2)
    assert await Pipeline(inputs=[gen], outputs=[sink], state_dir=state_dir).run() == 0  # type: ignore[list-item]
    assert [ev.record["a"] for ev in sink.events] == [1, 2, 1, 2, 1, 2]  # count rounds of every line
    assert {ev.tag for ev in sink.events} == {"gen.x"}


async def test_file_output_sprintf_paths_and_reopen_after_delete(tmp_path: Path, state_dir: str) -> None:
    out = registry.create("output", "file", path=str(tmp_path / "%{kind}" / "%{+YYYY-MM-dd}.log"),
                          flush_interval=0)  # each delivered() would otherwise wait out the 1s default
    async with Pipeline(outputs=[out], state_dir=state_dir) as pipeline:  # type: ignore[list-item]
        for kind in ("a", "b", "a"):
            await pipeline.delivered(await pipeline.emit("t", {"kind": kind}, time=EVENT_TIME))
        (tmp_path / "a" / "2023-11-14.log").unlink()
        await pipeline.delivered(await pipeline.emit("t", {"kind": "a", "n": 4}, time=EVENT_TIME))
    assert len((tmp_path / "b" / "2023-11-14.log").read_text().splitlines()) == 1
    reopened = (tmp_path / "a" / "2023-11-14.log").read_text().splitlines()
    assert [orjson.loads(x).get("n") for x in reopened] == [4]


def test_file_output_requires_path_and_rejects_parent_traversal() -> None:
    with pytest.raises(ConfigError, match="requires setting 'path'"):
        registry.create("output", "file")
    with pytest.raises(ConfigError, match=r"\.\."):
        registry.create("output", "file", path="/var/log/../etc/x")


async def test_file_output_write_error_names_the_file_and_drops_the_handle() -> None:
    from logpipe.plugin import RetryableError

    out = registry.create("output", "file", path="/dev/full")
    with pytest.raises(RetryableError, match="cannot write /dev/full: No space left on device"):
        await out.write(out.format([Event("t", EVENT_TIME, {"n": 1})]))  # type: ignore[attr-defined]
    assert not out._files  # type: ignore[attr-defined]  # the retry opens the file afresh


async def test_stdin_cuts_input_without_newlines_into_bounded_events(state_dir: str) -> None:
    from logpipe_plugins.inputs.stdin import MAX_LINE

    read_fd, write_fd = os.pipe()
    data = b"x" * (2 * MAX_LINE + 10)

    def writer() -> None:
        with os.fdopen(write_fd, "wb") as f:
            f.write(data)

    import threading

    thread = threading.Thread(target=writer)
    thread.start()
    sink = CollectOutput()
    pipeline = Pipeline(inputs=[registry.create("input", "stdin", fd=read_fd)],  # type: ignore[list-item]
                        outputs=[sink], state_dir=state_dir)
    assert await pipeline.run() == 0
    thread.join()
    os.close(read_fd)
    sizes = [len(ev.record["message"]) for ev in sink.events]
    assert sum(sizes) == len(data) and max(sizes) < MAX_LINE + (1 << 16)
