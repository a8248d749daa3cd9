"""The tail/file inputs against real files: rotation, truncation, restarts, limits.

The harness (tests/support/tail.py) hands the input an InputContext whose `emit`
collects events, can be blocked (a full pipeline) and leaves acknowledgement to the
test. Tests wait on conditions with timeouts, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe.errors import ConfigError
from logpipe.helpers.multiline import MultilineSpec
from logpipe.helpers.multiline_presets import PresetSpec
from logpipe.plugin import InputContext
from logpipe_plugins.inputs.tail import FileInput, TailInput
from tests.support.tail import (
    Collector,
    Running,
    append,
    expect_exact,
    numbered,
    open_fds_to,
    rename_while_writing,
    saved_offsets,
    sentinel,
    start,
    wait_until,
    write_lines,
)

# ---- basics ------------------------------------------------------------------------


async def test_reads_from_head_with_tag_and_path_key(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 5000)
    run = start(tmp_path, path=str(log), read_from_head=True, tag="app.*", path_key="file", batch_size=1000)
    events = await run.collector.wait_for(5000)
    await sentinel(run, log, 5000)
    await run.stop()
    expect_exact(run.collector.messages(), 0, 5000)
    assert [e.record["message"] for e in events[:3]] == ["line 0", "line 1", "line 2"]
    assert events[0].tag == "app." + str(log).strip("/").replace("/", ".")
    assert events[0].record == {"message": "line 0", "file": str(log)}
    assert max(len(b) for b, _ in run.collector.batches) == 1000


async def test_starts_at_end_by_default_and_new_lines_arrive_within_a_second(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 100)
    run = Running(TailInput(path=str(log)), Collector(), tmp_path / "state")  # default intervals
    await wait_until(lambda: bool(list((tmp_path / "state").glob("tail-*.pos"))))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    write_lines(log, 100, 1)
    await run.collector.wait_for(1, timeout=1.0)
    assert loop.time() - t0 < 1.0
    await run.stop()
    assert run.collector.messages() == ["line 100"]


async def test_file_input_logstash_settings_and_fields(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"one\n")
    (tmp_path / "b.gz").write_bytes(b"zip\n")
    run = start(tmp_path, FileInput, path=[str(tmp_path / "*")], exclude="*.gz", start_position="beginning",
                sincedb_path=str(tmp_path / "since.db"))
    (event,) = await run.collector.wait_for(1)
    await run.stop()
    assert event.tag == "file"
    assert event.record["message"] == "one"
    # The pipeline-wide default (disabled, as grok's): Logstash's legacy `path` and `host`.
    assert event.record["path"] == str(tmp_path / "a.log") and isinstance(event.record["host"], str)
    assert (tmp_path / "since.db").exists()
    ecs = FileInput(path="/x", ecs_compatibility="v8").decorator()
    assert ecs is not None
    records: list[dict[str, Any]] = [{"message": "m"}]
    ecs(records, "/x")
    assert records[0]["log"] == {"file": {"path": "/x"}} and isinstance(records[0]["host"]["name"], str)


def test_the_pipeline_wide_ecs_default_reaches_inputs_and_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    from logpipe.helpers import ecs
    from logpipe_plugins.filters.grok import GrokFilter

    monkeypatch.setattr(ecs, "DEFAULT_MODE", "v8")
    assert FileInput(path="/x").params["ecs_compatibility"] == "v8"
    assert GrokFilter(match={"message": "%{COMMONAPACHELOG}"}).params["ecs_compatibility"] == "v8"
    assert FileInput(path="/x", ecs_compatibility="disabled").params["ecs_compatibility"] == "disabled"


def test_config_mistakes_are_config_errors() -> None:
    with pytest.raises(ConfigError) as err:
        FileInput(path="/x", mode="read")
    assert err.value.setting == "mode"
    with pytest.raises(ConfigError) as err:
        TailInput(path="/x", encoding="utf-16")
    assert err.value.setting == "encoding"
    with pytest.raises(ConfigError) as err:
        TailInput(path="/x", multiline={"pattern": "^\\s", "what": "sideways"})
    assert err.value.setting == "multiline.what"  # the section's own setting, so the caret lands on it
    with pytest.raises(ConfigError) as err:
        TailInput(path="/x", max_line_action="explode")
    assert err.value.setting == "max_line_action"
    FileInput(path="/var/log/kern.log")  # the seed config's input loads as written


async def test_json_format_drops_and_counts_lines_it_cannot_parse(tmp_path: Path) -> None:
    """Fluentd's in_tail: a line the parser refuses is warned about and dropped ("pattern not matched")."""
    from logpipe.metrics import REGISTRY

    log = tmp_path / "j.log"
    log.write_bytes(b'{"a": 1}\nnot json\n{"b": [2]}\n{"c": 3}\n')
    run = start(tmp_path, path=str(log), read_from_head=True, format="json", id="jsontail")
    events = await run.collector.wait_for(3)
    await run.stop()
    assert [e.record for e in events] == [{"a": 1}, {"b": [2]}, {"c": 3}]
    assert REGISTRY.value("logpipe_input_parse_failures_total", input="jsontail", format="json") == 1


# ---- rotation ----------------------------------------------------------------------


async def test_rename_rotation_reads_old_file_to_the_end_then_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 1000)
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(1000)
    rename_while_writing(log, tmp_path / "app.log.1", numbered(1000, 500))
    write_lines(log, 1500, 700)
    await run.collector.wait_for(2200)
    await sentinel(run, log, 2200)
    expect_exact(run.collector.messages(), 0, 2200)
    await wait_until(lambda: open_fds_to(str(tmp_path / "app.log.1")) == 0)
    await run.stop()


async def test_rotation_while_the_pipeline_is_blocked(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    collector = Collector()
    collector.open.clear()
    write_lines(log, 0, 3000)
    run = start(tmp_path, collector=collector, path=str(log), read_from_head=True, batch_size=500)
    await asyncio.wait_for(collector.blocked.wait(), 5)
    write_lines(log, 3000, 2000)
    os.rename(log, tmp_path / "app.log.1")
    write_lines(log, 5000, 1000)
    collector.open.set()
    await collector.wait_for(6000)
    await sentinel(run, log, 6000)
    await run.stop()
    expect_exact(collector.messages(), 0, 6000)


async def test_copytruncate_without_the_copy_in_the_glob(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 1000)
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(1000)
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write_lines(log, 1000, 10)
    await run.collector.wait_for(1010)
    await sentinel(run, log, 1010)
    await run.stop()
    expect_exact(run.collector.messages(), 0, 1010)


async def test_copytruncate_with_the_copy_in_the_glob_and_unread_lines(tmp_path: Path) -> None:
    """The copy holds lines the tailer had not read yet when the original was
    truncated: they come from the copy, and nothing is read twice."""
    log = tmp_path / "app.log"
    collector = Collector()
    collector.open.clear()
    write_lines(log, 0, 40000)  # > 1 MiB, so the first read stops mid-file
    run = start(tmp_path, collector=collector, path=str(tmp_path / "app.log*"), read_from_head=True)
    await asyncio.wait_for(collector.blocked.wait(), 5)
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write_lines(log, 40000, 100)
    collector.open.set()
    await collector.wait_for(40100)
    await sentinel(run, log, 40100)
    await run.stop()
    expect_exact(collector.messages(), 0, 40100)


async def test_a_new_file_that_merely_starts_like_another_is_read_whole(tmp_path: Path) -> None:
    banner = b"=" * 300 + b"\n"  # longer than the fingerprint
    (tmp_path / "a.log").write_bytes(banner + b"".join(f"line {i}\n".encode() for i in range(100)))
    run = start(tmp_path, path=str(tmp_path / "*.log"), read_from_head=True)
    await run.collector.wait_for(101)
    (tmp_path / "b.log").write_bytes(banner + b"".join(f"line {i}\n".encode() for i in range(100, 150)))
    await run.collector.wait_for(152)
    await run.stop()
    expect_exact([m for m in run.collector.messages() if m != banner[:-1].decode()], 0, 150)


async def test_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 50, prefix="old")
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(50)
    os.truncate(log, 0)
    write_lines(log, 0, 5, prefix="new")
    await run.collector.wait_for(55)
    await run.stop()
    assert run.collector.messages()[50:] == [f"new {i}" for i in range(5)]


async def test_deleted_file_is_closed_and_forgotten(tmp_path: Path) -> None:
    log = tmp_path / "gone.log"
    write_lines(log, 0, 10)
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(10)
    assert open_fds_to(str(log)) == 1
    os.unlink(log)
    await wait_until(lambda: open_fds_to(str(log)) == 0)
    await wait_until(lambda: str(log) not in saved_offsets(tmp_path / "state"))
    await run.stop()
    assert len(run.collector.events) == 10


async def test_ignore_older_skips_old_files_until_they_are_written_again(tmp_path: Path) -> None:
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    write_lines(old, 0, 10, prefix="stale")
    os.utime(old, (1_000_000, 1_000_000))
    write_lines(new, 0, 3)
    run = start(tmp_path, path=str(tmp_path / "*.log"), read_from_head=True, ignore_older=3600)
    await run.collector.wait_for(3)
    write_lines(old, 10, 2, prefix="stale")  # written again: read from where it was ignored
    await run.collector.wait_for(5)
    await sentinel(run, new, 5)
    await run.stop()
    assert sorted(run.collector.messages()) == ["line 0", "line 1", "line 2", "stale 10", "stale 11"]


# ---- restarts and identity -----------------------------------------------------------


async def test_restart_resumes_exactly_at_the_acknowledged_position(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 10000)
    collector = Collector(auto_ack=False)
    run = start(tmp_path, collector=collector, path=str(log), read_from_head=True, batch_size=1000)
    await collector.wait_for(10000)
    acks = [cb for _, cb in collector.batches]
    assert len(acks) == 10
    for cb in acks[:3] + acks[4:6]:  # batch 4 never acknowledged: 5 and 6 cannot commit
        assert cb is not None
        cb()
    await run.stop()
    assert saved_offsets(tmp_path / "state")[str(log)] == len(b"".join(f"line {i}\n".encode() for i in range(3000)))

    second = start(tmp_path, path=str(log), read_from_head=True, batch_size=1000)
    await second.collector.wait_for(7000)
    await sentinel(second, log, 7000)
    await second.stop()
    expect_exact(second.collector.messages(), 3000, 7000)
    assert second.collector.events[0].record["message"] == "line 3000"


async def test_acks_arriving_after_close_are_still_saved(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 100)
    collector = Collector(auto_ack=False)
    run = start(tmp_path, collector=collector, path=str(log), read_from_head=True)
    await collector.wait_for(100)
    await run.stop()
    assert saved_offsets(tmp_path / "state")[str(log)] == 0
    for _, cb in collector.batches:
        assert cb is not None
        cb()
    await wait_until(lambda: saved_offsets(tmp_path / "state")[str(log)] == log.stat().st_size)


async def test_inode_reuse_by_rewrite_in_place_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 100, prefix="first")
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(100)
    await run.stop()
    ino = log.stat().st_ino
    log.write_bytes(numbered(0, 300, "second"))  # same inode, different and longer content
    assert log.stat().st_ino == ino
    again = start(tmp_path, path=str(log))
    await again.collector.wait_for(300)
    await again.stop()
    expect_exact(again.collector.messages(), 0, 300, prefix="second")


async def test_inode_reuse_after_delete_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 100, prefix="first")
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(100)
    await run.stop()
    log.unlink()
    write_lines(log, 0, 200, prefix="second")
    pos = next((tmp_path / "state").glob("tail-*.pos"))
    doc = orjson.loads(pos.read_bytes())
    st = log.stat()
    doc["files"][0]["ino"], doc["files"][0]["dev"] = st.st_ino, st.st_dev  # the file system reused the inode
    pos.write_bytes(orjson.dumps(doc))
    again = start(tmp_path, path=str(log))
    await again.collector.wait_for(200)
    await again.stop()
    expect_exact(again.collector.messages(), 0, 200, prefix="second")


async def test_file_rotated_while_stopped_is_finished_from_its_saved_position(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, 0, 100)
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(100)
    await run.stop()
    write_lines(log, 100, 50)
    os.rename(log, tmp_path / "app.log.1")
    write_lines(log, 150, 20)
    again = start(tmp_path, path=str(log))
    await again.collector.wait_for(70)
    await sentinel(again, log, 70)
    await again.stop()
    expect_exact(again.collector.messages(), 100, 70)


# ---- limits and content --------------------------------------------------------------


@pytest.mark.parametrize("action", ["truncate", "skip"])
async def test_max_line_size(tmp_path: Path, action: str) -> None:
    log = tmp_path / "app.log"
    huge = b"h" * (3 << 20)  # spans several 1 MiB reads while incomplete
    log.write_bytes(b"short 1\n" + b"x" * 500 + b"\nshort 2\n" + huge + b"\nshort 3\n")
    run = start(tmp_path, path=str(log), read_from_head=True, max_line_size=100, max_line_action=action)
    expected = 5 if action == "truncate" else 3
    events = await run.collector.wait_for(expected)
    await sentinel(run, log, expected)
    await run.stop()
    messages = run.collector.messages()
    if action == "truncate":
        assert messages == ["short 1", "x" * 100, "short 2", "h" * 100, "short 3"]
        assert events[1].record["tags"] == ["_linetruncated"] and events[3].record["tags"] == ["_linetruncated"]
    else:
        assert messages == ["short 1", "short 2", "short 3"]
    assert saved_offsets(tmp_path / "state")[str(log)] == log.stat().st_size


async def test_invalid_bytes_are_replaced_and_other_encodings_decode(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    log.write_bytes(b"ok\n\xff\xfe\xc3 garbage\nwin\r\n")
    latin = tmp_path / "latin.log"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(3)
    await run.stop()
    assert run.collector.messages() == ["ok", "\ufffd\ufffd\ufffd garbage", "win"]
    run2 = start(tmp_path, path=str(latin), read_from_head=True, encoding="latin-1")
    await run2.collector.wait_for(1)
    await run2.stop()
    assert run2.collector.messages() == ["café"]


async def test_multiline_joins_and_flushes_the_pending_event_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "java.log"
    log.write_bytes(b"first\nException\n  at a\n  at b\nlast\n  at c\n")
    run = start(tmp_path, path=str(log), read_from_head=True,
                multiline={"pattern": "^\\s", "what": "previous", "flush_interval": 0.3})
    events = await run.collector.wait_for(3)
    await run.stop()
    assert [e.record["message"] for e in events] == ["first", "Exception\n  at a\n  at b", "last\n  at c"]
    assert events[1].record["tags"] == ["multiline"] and "tags" not in events[0].record


async def test_multiline_pending_lines_are_not_committed(tmp_path: Path) -> None:
    log = tmp_path / "java.log"
    head = b"one\ntwo\n  cont\n"
    log.write_bytes(head)
    run = start(tmp_path, path=str(log), read_from_head=True, multiline_pattern="^\\s", multiline_what="previous",
                multiline_flush_interval=60)
    await run.collector.wait_for(1)
    await wait_until(lambda: saved_offsets(tmp_path / "state").get(str(log)) == len(b"one\n"))
    await run.stop()
    assert run.collector.messages() == ["one"]
    again = start(tmp_path, path=str(log), multiline_pattern="^\\s", multiline_what="previous",
                  multiline_flush_interval=0.1)
    await again.collector.wait_for(1)
    await again.stop()
    assert again.collector.messages() == ["two\n  cont"]


async def test_multiline_events_read_again_keep_their_origin(tmp_path: Path) -> None:
    log = tmp_path / "java.log"
    body = b"".join(f"event {i}\n  at a{i}\n  at b{i}\n".encode() for i in range(300)) + b"last\n"
    log.write_bytes(body)
    settings = {"path": str(log), "read_from_head": True, "multiline_pattern": "^\\s",
                "multiline_what": "previous", "multiline_flush_interval": 0.2, "batch_size": 100}
    first = Collector(auto_ack=False)
    run = start(tmp_path, collector=first, **settings)
    await first.wait_for(301)
    first.batches[0][1]()  # acknowledge the first batch only
    await run.stop()
    again = start(tmp_path, **{**settings, "batch_size": 37})
    await again.collector.wait_for(301 - len(first.batches[0][0]))
    await again.stop()
    before = {ev.record["message"]: ev.meta["_origin"] for ev in first.events}
    after = {ev.record["message"]: ev.meta["_origin"] for ev in again.collector.events}
    assert len(set(before.values())) == 301
    assert after and all(before[m] == origin for m, origin in after.items())
    assert before["event 0\n  at a0\n  at b0"][2] == len(b"event 0\n  at a0\n  at b0\n")


# ---- through the real pipeline ---------------------------------------------------------


async def test_pipeline_from_logstash_config_commits_after_delivery(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline

    log = tmp_path / "app.log"
    out = tmp_path / "out.jsonl"
    write_lines(log, 0, 3000)
    config = f"""
    input {{ file {{ path => "{log}" start_position => "beginning" stat_interval => "20ms" }} }}
    output {{ file {{ path => "{out}" }} }}
    """
    pipeline = Pipeline.from_string(config, state_dir=str(tmp_path / "state"))
    await pipeline.start()

    def lines_out() -> int:
        return out.read_bytes().count(b"\n") if out.exists() else 0

    await wait_until(lambda: lines_out() >= 3000)
    await pipeline.stop()
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    expect_exact([r["message"] for r in records], 0, 3000)
    assert records[0]["path"] == str(log)  # legacy layout: the pipeline-wide ECS default
    assert saved_offsets(tmp_path / "state")[str(log)] == log.stat().st_size


async def test_named_format_parses_fields_and_takes_the_event_time(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "Moz"\n'
                    b"garbage line\n")
    run = start(tmp_path, path=str(log), read_from_head=True, format="apache2", emit_unmatched_lines=True)
    good, bad = await run.collector.wait_for(2)
    await run.stop()
    assert good.record == {"host": "127.0.0.1", "user": "frank", "method": "GET", "path": "/a.gif", "code": 200,
                           "size": 2326, "referer": None, "agent": "Moz"}
    assert good.time == 971211336 * 10**9
    assert bad.record == {"unmatched_line": "garbage line"}


def test_unknown_named_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        TailInput(path="/x", format="apache3")
    assert err.value.setting == "format" and "apache2" in err.value.message


async def test_multiline_pattern_with_grok_and_fluentd_parse_section(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline

    log = tmp_path / "app.log"
    log.write_bytes(b"2024-01-01T00:00:00Z start\nmore\n2024-01-01T00:00:01Z next\n")
    run = start(tmp_path, FileInput, path=str(log), start_position="beginning",
                multiline={"pattern": "^%{TIMESTAMP_ISO8601} ", "negate": True, "what": "previous",
                           "flush_interval": 0.1})
    events = await run.collector.wait_for(2)
    await run.stop()
    assert [e.record["message"] for e in events] == ["2024-01-01T00:00:00Z start\nmore", "2024-01-01T00:00:01Z next"]

    config = f"""
    <source>
      @type tail
      path {log}
      tag app
      read_from_head true
      <parse>
        @type multiline
        format_firstline /^\\d{{4}}-/
        format1 /^(?<time>\\S+) (?<msg>.*)/
        multiline_flush_interval 0.1
      </parse>
    </source>
    """
    pipeline = Pipeline.from_string(config, name="tail.conf", state_dir=str(tmp_path / "state2"))
    (tail,) = pipeline.built.inputs
    assert isinstance(tail, TailInput)
    parse = tail.options(InputContext(Collector().emit, str(tmp_path), "t")).fluent_parser
    assert parse is not None
    records, times = parse(["2024-01-01T00:00:00Z a\nb"])
    assert records == [{"msg": "a\nb"}] and times == [1704067200 * 10**9]


async def test_a_line_read_again_after_a_restart_keeps_its_origin(tmp_path: Path) -> None:
    """meta["_origin"] (inode, fingerprint, end offset) is what makes ES/Mongo ids
    survive a crash: re-read lines must carry the same origin, whatever the batching."""
    log = tmp_path / "app.log"
    write_lines(log, 0, 5000)
    first = Collector(auto_ack=False)
    run = start(tmp_path, collector=first, path=str(log), read_from_head=True, batch_size=700)
    await first.wait_for(5000)
    first.batches[0][1]()  # only the first 700 lines are acknowledged
    await run.stop()
    again = start(tmp_path, path=str(log), read_from_head=True, batch_size=333)
    await again.collector.wait_for(4300)
    await again.stop()
    before = {ev.record["message"]: ev.meta["_origin"] for ev in first.events}
    after = {ev.record["message"]: ev.meta["_origin"] for ev in again.collector.events}
    assert len(after) == 4300 and all(before[m] == origin for m, origin in after.items())
    assert len(set(before.values())) == 5000


async def test_unterminated_last_line_of_a_released_file_commits_its_exact_end(tmp_path: Path) -> None:
    """A file rotated out of the glob is released with its unterminated last line emitted;
    the committed offset is the file's size, so a restart does not read it again."""
    log = tmp_path / "app.log"
    append(log, numbered(0, 100) + b"line 100")
    run = start(tmp_path, path=str(log), read_from_head=True)
    await run.collector.wait_for(100)
    os.rename(log, tmp_path / "app.log.1")
    write_lines(log, 101, 1)
    await run.collector.wait_for(102)
    await wait_until(lambda: open_fds_to(str(tmp_path / "app.log.1")) == 0)
    await run.stop()
    expect_exact(run.collector.messages(), 0, 102)
    again = start(tmp_path, path=str(log))
    write_lines(log, 102, 1)
    await again.collector.wait_for(1)
    await sentinel(again, log, 1)
    await again.stop()
    assert again.collector.messages() == ["line 102"]


def test_discover_interval_is_checked_when_the_input_is_built() -> None:
    with pytest.raises(ConfigError) as err:
        FileInput(path="/x", discover_interval=0)
    assert err.value.setting == "discover_interval"


async def test_files_let_go_after_rotation_are_forgotten_once_acknowledged(tmp_path: Path) -> None:
    """One position entry per rotation would grow without bound in a long-running daemon."""
    log = tmp_path / "app.log"
    write_lines(log, 0, 10)
    run = start(tmp_path, path=str(log), read_from_head=True)
    for generation in range(1, 4):
        await run.collector.wait_for(10 * generation)
        os.rename(log, tmp_path / f"app.log.{generation}")
        write_lines(log, 10 * generation, 10)
    await run.collector.wait_for(40)
    live = log.stat().st_ino

    def inodes() -> list[int]:
        (pos,) = list((tmp_path / "state").glob("tail-*.pos"))
        return [e["ino"] for e in orjson.loads(pos.read_bytes())["files"]]

    await wait_until(lambda: inodes() == [live])
    await run.stop()
    expect_exact(run.collector.messages(), 0, 40)


async def test_stats_show_each_file_lag_until_acknowledged(tmp_path: Path) -> None:
    """Lag = bytes on disk not yet acknowledged: it stays while the output holds the batch, and
    drops to 0 once delivered (the position a restart would resume from)."""
    from logpipe import CallbackOutput
    from logpipe.pipeline import Pipeline

    log = tmp_path / "app.log"
    write_lines(log, 0, 100)
    gate = asyncio.Event()

    async def slow(events: list[Any]) -> None:
        await gate.wait()

    out = CallbackOutput(slow)
    pipeline = Pipeline(inputs=[TailInput(path=[str(log)], read_from_head=True, pos_file=str(tmp_path / "pos"))],
                        outputs=[out], state_dir=str(tmp_path / "state"))
    await pipeline.start()
    try:
        def files() -> list[dict[str, Any]]:
            return list(pipeline.stats()["input_stats"].get("tail", {}).get("files", []))

        await wait_until(lambda: bool(files()) and files()[0]["read"] == log.stat().st_size)
        [f] = files()
        assert f["path"] == str(log) and f["size"] == log.stat().st_size
        assert f["lag_bytes"] == f["size"] - f["acknowledged"] > 0
        gate.set()
        await wait_until(lambda: files()[0]["lag_bytes"] == 0)
    finally:
        gate.set()
        await pipeline.stop()


def test_multiline_is_a_declared_section() -> None:
    """Each setting of the section checked by its declaration; unwritten ones take the joiner's defaults."""
    tail = TailInput(path="/x", multiline={"pattern": "^\\s", "auto_flush_interval": "250ms", "max_lines": 7})
    assert tail._multiline == MultilineSpec(pattern="^\\s", negate=False, what="previous", flush_interval=0.25,
                                            max_lines=7)
    preset = TailInput(path="/x", multiline={"preset": "java"})._multiline
    assert preset == PresetSpec(preset="java", flush_interval=5.0)
    for bad, where, says in [
        ({"pattern": "^\\s", "max_lines": 0}, "multiline.max_lines", "must be positive"),
        ({"preset": "cobol"}, "multiline.preset", "java"),
        ({"preset": "java", "pattern": "^\\s"}, "multiline", "not pattern"),
        ({"negate": True}, "multiline", "needs a 'pattern'"),
        ({"pattern": "^\\s", "separator": "x"}, "multiline.separator", "unknown setting"),
    ]:
        with pytest.raises(ConfigError) as err:
            TailInput(path="/x", multiline=bad)
        assert (err.value.setting, says in err.value.message) == (where, True), err.value.message
