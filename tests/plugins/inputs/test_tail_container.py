"""The tail input on container logs in the kubelet's layout (a temp dir stands in for /var/log).

Files are written the way containerd and dockerd write them, links the way kubelet
makes them; rotation as kubelet does it (rename to `0.log.<timestamp>`, gzip of
the one before, a fresh `0.log`). The collector acknowledges when told, so
restarts show what was committed.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import orjson
import pytest

from logpipe.build import instantiate
from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe_plugins.inputs.tail import FileInput, TailInput
from tests.support.tail import Collector, append, saved_offsets, start, wait_until

CID = "a" * 64


def kubelet_layout(root: Path, pod: str = "web-0", ns: str = "default", container: str = "app",
                   uid: str = "1b2c3d4e-0000-4000-8000-000000000001", cid: str = CID) -> Path:
    """/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and the /var/log/containers link."""
    pod_dir = root / "pods" / f"{ns}_{pod}_{uid}" / container
    pod_dir.mkdir(parents=True)
    log = pod_dir / "0.log"
    log.touch()
    links = root / "containers"
    links.mkdir(exist_ok=True)
    (links / f"{pod}_{ns}_{container}-{cid}.log").symlink_to(log)
    return log


def cri(text: str, stream: str = "stdout", flag: str = "F", ns: int = 1) -> bytes:
    return f"2024-05-01T10:00:00.{ns:09d}Z {stream} {flag} {text}\n".encode()


def docker(text: str, stream: str = "stdout") -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": "2024-05-01T10:00:00.5Z"}) + b"\n"


async def test_cri_partials_joined_with_runtime_time_and_stream(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    run = start(tmp_path, path=str(tmp_path / "containers" / "*.log"), format="cri", read_from_head=True)
    append(log, cri("one", ns=7) + cri("big ", flag="P", ns=8) + cri("oops", "stderr") + cri("part", ns=9)
           + cri("two"))
    events = await run.collector.wait_for(4)
    await run.stop()
    assert [(e.record["log"], e.record["stream"]) for e in events] == [
        ("one", "stdout"), ("oops", "stderr"), ("big part", "stdout"), ("two", "stdout")]
    assert events[0].time == 1714557600_000000007
    assert events[2].time == 1714557600_000000008


async def test_committed_position_never_inside_a_partial_group(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    path = str(tmp_path / "containers" / "*.log")
    run = start(tmp_path, path=path, format="cri", read_from_head=True)
    first = cri("done")
    append(log, first + cri("half ", flag="P"))
    await run.collector.wait_for(1)
    link = str(next((tmp_path / "containers").iterdir()))
    await wait_until(lambda: saved_offsets(tmp_path / "state") == {link: len(first)})
    await run.stop()  # "crash" with the partial group unfinished
    append(log, cri("whole"))
    again = start(tmp_path, path=path, format="cri", read_from_head=True)
    events = await again.collector.wait_for(1)
    await again.stop()
    assert [e.record["log"] for e in events] == ["half whole"]  # re-read from the group's start


async def test_unacked_lines_and_groups_are_read_again_whole_after_restart(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    path = str(tmp_path / "containers" / "*.log")
    run = start(tmp_path, path=path, format="cri", read_from_head=True, collector=Collector(auto_ack=False))
    append(log, cri("x") + cri("a", "stderr", flag="P") + cri("b", "stderr", flag="P"))
    await run.collector.wait_for(1)
    await run.stop()  # "x" was never acknowledged
    append(log, cri("c", "stderr"))
    again = start(tmp_path, path=path, format="cri", read_from_head=True)
    events = await again.collector.wait_for(2)
    await again.stop()
    assert [e.record["log"] for e in events] == ["x", "abc"]


async def test_docker_16k_splits_and_logstash_message_field(tmp_path: Path) -> None:
    root = tmp_path / "docker"
    root.mkdir()
    log = root / f"{CID}-json.log"
    piece = "y" * 16384
    append(log, docker(piece) + docker("warn\n", "stderr") + docker(piece) + docker("end\n"))
    run = start(tmp_path, FileInput, path=str(root / "*.log"), format="docker", start_position="beginning")
    events = await run.collector.wait_for(2)
    await run.stop()
    assert events[0].record["message"] == "warn"
    assert events[1].record["message"] == piece * 2 + "end"
    assert events[1].record["stream"] == "stdout"
    assert events[1].record["path"] == str(log)  # the file input's legacy layout (pipeline-wide ECS default)
    assert events[1].time == 1714557600_500000000


async def test_invalid_lines_tagged_never_dropped(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    run = start(tmp_path, path=str(tmp_path / "containers" / "*.log"), format="cri", read_from_head=True)
    append(log, b"this is not cri\n" + cri("fine"))
    events = await run.collector.wait_for(2)
    await run.stop()
    assert events[0].record == {"log": "this is not cri", "tags": ["_containerparsefailure"]}
    assert events[1].record["log"] == "fine"


async def test_joined_line_capped_at_max_line_size(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    run = start(tmp_path, path=str(tmp_path / "containers" / "*.log"), format="cri", read_from_head=True,
                max_line_size=100)
    append(log, cri("x" * 60, flag="P") + cri("y" * 60, flag="P") + cri("z" * 60) + cri("small"))
    events = await run.collector.wait_for(2)
    await run.stop()
    assert events[0].record["log"] == "x" * 60 + "y" * 40
    assert events[0].record["tags"] == ["_linetruncated"]
    assert events[1].record["log"] == "small"


async def test_kubelet_rotation_nothing_twice_nothing_lost(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    run = start(tmp_path, path=str(tmp_path / "containers" / "*.log"), format="cri", read_from_head=True)
    total = 0
    for generation in range(3):
        append(log, b"".join(cri(f"g{generation} line {i}") for i in range(200)))
        total += 200
        await run.collector.wait_for(total)
        # the runtime keeps writing into the renamed file until it reopens
        with open(log, "ab") as writer:
            stamp = f"20240501-10000{generation}"
            os.rename(log, log.with_name(f"0.log.{stamp}"))
            writer.write(cri(f"g{generation} late"))
        total += 1
        log.touch()
        older = sorted(log.parent.glob("0.log.2*"))
        if len(older) > 1 and not older[0].name.endswith(".gz"):  # kubelet gzips all but the newest
            with open(older[0], "rb") as src, gzip.open(f"{older[0]}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            older[0].unlink()
    append(log, cri("after rotations"))
    total += 1
    events = await run.collector.wait_for(total)
    await run.stop()
    texts = [e.record["log"] for e in events]
    assert len(texts) == len(set(texts)) == total


async def test_java_preset_runs_per_stream_after_decoding(tmp_path: Path) -> None:
    log = kubelet_layout(tmp_path)
    run = start(tmp_path, path=str(tmp_path / "containers" / "*.log"), format="cri", read_from_head=True,
                multiline={"preset": "java", "flush_interval": 0.1})
    append(log, cri("java.lang.RuntimeException: boom", "stderr") + cri("request ok")
           + cri("\tat a.B.c(B.java:1)", "stderr") + cri("\tat a.B.", "stderr", "P") + cri("d(B.java:2)", "stderr")
           + cri("next ok"))
    events = await run.collector.wait_for(3)
    await run.stop()
    texts = [e.record["log"] for e in events]
    assert texts[:2] == ["request ok", "next ok"]
    assert texts[2] == "java.lang.RuntimeException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)"
    assert events[2].record["tags"] == ["multiline"]
    assert events[2].record["stream"] == "stderr"


async def test_preset_on_plain_files(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, b"Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n    x()\n"
                b"NameError: name 'x' is not defined\nnext\n")
    run = start(tmp_path, path=str(log), read_from_head=True, multiline_preset="python",
                multiline_flush_interval=0.1)
    events = await run.collector.wait_for(2)
    await run.stop()
    assert events[0].record["message"].startswith("Traceback") and events[0].record["message"].count("\n") == 3
    assert events[1].record["message"] == "next"


def build_input(text: str) -> TailInput:
    config = load_config_string(text)
    plugin = instantiate(config.inputs[0])
    assert isinstance(plugin, TailInput)
    return plugin


def test_spellings_in_both_front_ends() -> None:
    modes = {
        'input { file { path => "/var/log/containers/*.log" format => "cri" } }': "cri",
        'input { file { path => "/x/*.log" format => "auto" multiline => { preset => "go" } } }': "auto",
        "<source>\n @type tail\n path /var/log/containers/*.log\n <parse>\n  @type cri\n"
        "  multiline_preset java\n </parse>\n</source>\n": "cri",
        "<source>\n @type tail\n path /var/log/containers/*.log\n <parse>\n  @type json\n"
        "  time_format %Y-%m-%dT%H:%M:%S.%NZ\n </parse>\n</source>\n": "json",
        "<source>\n @type tail\n path /x/*.log\n <parse>\n  @type multi_format\n"
        "  <pattern>\n   format json\n   time_key time\n  </pattern>\n"
        "  <pattern>\n   format /^(?<time>.+) (?<stream>stdout|stderr) [^ ]* (?<log>.*)$/\n  </pattern>\n"
        " </parse>\n</source>\n": "auto",
    }
    for text, mode in modes.items():
        plugin = build_input(text)
        assert plugin._container is not None and plugin._container.mode == mode, text


def test_other_parsers_stay_plain_and_unknown_presets_are_config_errors() -> None:
    other = build_input("<source>\n @type tail\n path /x\n <parse>\n  @type multi_format\n"
                        "  <pattern>\n   format apache2\n  </pattern>\n </parse>\n</source>\n")
    assert other._container is None
    plain_json = build_input("<source>\n @type tail\n path /srv/app/*.log\n <parse>\n  @type json\n"
                             " </parse>\n</source>\n")
    assert plain_json._container is None
    with pytest.raises(ConfigError) as info:
        build_input('input { file { path => "/x" multiline => { preset => "cobol" } } }')
    assert "cobol" in str(info.value) and info.value.pos is not None
