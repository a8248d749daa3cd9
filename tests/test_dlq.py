"""`logpipe dlq`: dead letters listed, shown, and replayed into an output once the cause is
fixed — against the Elasticsearch stand-in, whose dynamic mapping refuses documents the way
Elasticsearch does (a field keeps the type it was first seen with)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe import Pipeline, dlq
from logpipe.errors import ConfigError
from tests.standins.elasticsearch import ESStandIn


@pytest.fixture
async def es() -> Any:
    server = ESStandIn("9.1.3")
    await server.start()
    yield server
    await server.stop()


def config(tmp_path: Path, es: ESStandIn, dead: Path) -> Path:
    path = tmp_path / "pipeline.conf"
    path.write_text(f"""
output {{
  elasticsearch {{ id => "es_main" hosts => ["{es.url}"] index => "logs" dead_letter_path => "{dead}"
                   flush_interval => 0 retry_wait => 0.01 }}
}}""")
    return path


async def ship(conf: Path, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    async with Pipeline.from_paths([str(conf)], state_dir=str(tmp_path / "state")) as pipeline:
        await pipeline.delivered(await pipeline.emit_many("app", records))


async def test_replay_after_the_mapping_is_fixed(es: ESStandIn, tmp_path: Path) -> None:
    dead = tmp_path / "dlq.jsonl"
    conf = config(tmp_path, es, dead)
    records = [{"n": i, "status": 200} for i in range(5)] + [{"n": 5, "status": "oops"}, {"n": 6, "status": "bad"}]
    await ship(conf, tmp_path, records)
    assert es.count() == 5
    entries = dlq.read_entries(str(dead))
    assert len(entries) == 2 and all(e.output == "es_main" for e in entries)
    listing = dlq.summary(entries)
    assert "2 dead letter(s)" in listing and "failed to parse field [status]" in listing

    still_broken = await dlq.replay(str(dead), [str(conf)], "es_main")  # mapping not fixed yet
    assert still_broken == (0, 2, 0)
    assert len(dlq.read_entries(str(dead))) == 2 and es.count() == 5  # kept, with the new reason

    es.mappings["logs"]["status"] = "keyword"  # the fix: status is text now
    backup = dead.read_bytes()
    assert await dlq.replay(str(dead), [str(conf)], "es_main") == (2, 0, 0)
    assert dead.read_bytes() == b"" and es.count() == 7
    assert sorted(d["n"] for d in es.docs("logs")) == list(range(7))

    dead.write_bytes(backup)  # a replay interrupted and run again: deterministic ids absorb it
    assert await dlq.replay(str(dead), [str(conf)], "es_main") == (2, 0, 0)
    assert es.count() == 7


async def test_selection_by_reason_keeps_the_rest(es: ESStandIn, tmp_path: Path) -> None:
    dead = tmp_path / "dlq.jsonl"
    other = {"event": {"tag": "x", "time": 1, "record": {"k": 1}, "meta": {}}, "output": "other", "reason": "nope",
             "time": "2026-01-01T00:00:00+00:00"}
    dead.write_bytes(orjson.dumps(other) + b"\n")
    conf = config(tmp_path, es, dead)
    await ship(conf, tmp_path, [{"status": 1}, {"status": "x"}])
    es.mappings["logs"]["status"] = "keyword"
    assert await dlq.replay(str(dead), [str(conf)], "es_main", reason="failed to parse") == (1, 0, 0)
    [left] = dlq.read_entries(str(dead))
    assert left.doc == other


def test_cli_list_show_and_mistakes(tmp_path: Path) -> None:
    dead = tmp_path / "dlq.jsonl"
    line = {"event": {"tag": "t", "time": 1, "record": {"a": 1}, "meta": {}}, "output": "o1", "reason": "boom",
            "time": "2026-01-01T00:00:00+00:00"}
    dead.write_bytes(orjson.dumps(line) + b"\n" + orjson.dumps({**line, "reason": "other"}) + b"\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "logpipe.cli", "dlq", *args], capture_output=True, text=True)

    listed = cli("list", str(dead))
    assert listed.returncode == 0 and "2 dead letter(s)" in listed.stdout and "boom" in listed.stdout
    shown = cli("show", str(dead), "--reason", "other")
    assert shown.returncode == 0 and '"other"' in shown.stdout and '"boom"' not in shown.stdout
    (tmp_path / "bad.jsonl").write_text("not json\n")
    bad = cli("list", str(tmp_path / "bad.jsonl"))
    assert bad.returncode == 1 and "bad.jsonl:1" in bad.stderr and "Traceback" not in bad.stderr
    conf = tmp_path / "p.conf"
    conf.write_text("output { null { id => \"n\" } }")
    wrong = cli("replay", str(dead), "-f", str(conf), "--output", "nope")
    assert wrong.returncode == 1 and "no output with id 'nope'" in wrong.stderr and "n" in wrong.stderr


def test_read_entries_names_the_line() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        dlq.read_entries("/nonexistent/dlq.jsonl")


def test_replay_checks_the_config_before_the_dead_letter_file(tmp_path: Path) -> None:
    """A replay with a missing config and a missing DLQ names the config (the thing the user
    writes for the replay and gets wrong), with its position when it is malformed."""
    def replay(dead: Path, conf: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "logpipe.cli", "dlq", "replay", str(dead), "-f", str(conf),
                               "--output", "n"], capture_output=True, text=True)

    missing = replay(tmp_path / "no-dlq.jsonl", tmp_path / "no-config.conf")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no-config.conf" in missing.stderr and "no-dlq.jsonl" not in missing.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text("output {\n  null { id => }\n}\n")
    malformed = replay(tmp_path / "no-dlq.jsonl", broken)
    assert malformed.returncode == 1 and "broken.conf:2:" in malformed.stderr
    assert "no-dlq.jsonl" not in malformed.stderr
