"""`logpipe tap`: the events leaving a filter of a running daemon, read live over the HTTP API,
and nothing attached once the tap ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from logpipe import Pipeline
from logpipe.tap import TapRequestError, parse_query, tap
from tests.test_daemon import LogpipeDaemon

CONFIG = """
input { generator { lines => ["GET /a 200", "POST /b 500"] count => 0 batch_size => 10 } }
filter {
  dissect { id => "split" mapping => { "message" => "%{verb} %{path} %{status}" } }
  mutate { id => "mark" add_tag => ["seen"] }
}
output { null {} }
"""


def test_tap_a_running_daemon(tmp_path: Path) -> None:
    conf = tmp_path / "pipeline.conf"
    conf.write_text(CONFIG)
    daemon = LogpipeDaemon(tmp_path, conf)
    try:
        out = subprocess.run([sys.executable, "-m", "logpipe.cli", "tap", "--id", "split", "--limit", "6",
                              "--http-port", str(daemon.port)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        events = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(events) == 6
        assert {e["verb"] for e in events} == {"GET", "POST"}
        assert all("tags" not in e for e in events)  # seen after dissect, before the mutate adds its tag
        sampled = subprocess.run([sys.executable, "-m", "logpipe.cli", "tap", "--id", "mark", "--limit", "4",
                                  "--sample", "2", "--http-port", str(daemon.port)],
                                 capture_output=True, text=True, timeout=60)
        lines = [json.loads(line) for line in sampled.stdout.splitlines()]
        assert len(lines) == 4 and all(e["tags"] == ["seen"] for e in lines)
        assert len({e["sequence"] for e in lines}) >= 2  # every 2nd event: not one round twice
        status, body = daemon.get("/tap?id=nope&wait=0")
        assert status == 404 and b"split" in body and b"mark" in body
        missing = subprocess.run([sys.executable, "-m", "logpipe.cli", "tap", "--id", "nope", "--http-port",
                                  str(daemon.port)], capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and "no filter with id 'nope'" in missing.stderr
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(30)


async def test_observer_is_detached_after_the_tap(state_dir: str) -> None:
    pipeline = Pipeline.from_string('filter { mutate { id => "m" add_tag => ["x"] } }', state_dir=state_dir)
    [mutate] = pipeline.built.filters
    body = await tap(pipeline, "m", limit=5, sample=1, wait=0.05)
    assert body == b"" and mutate.observers == []  # nothing flowed: empty answer, nothing left attached


def test_query_bounds() -> None:
    assert parse_query("/tap?id=g&limit=99999&sample=0&wait=600") == ("g", 1000, 1, 60.0)
    for bad in ("/tap", "/tap?id=g&limit=many"):
        try:
            parse_query(bad)
        except TapRequestError as exc:
            assert exc.status == 400
        else:
            raise AssertionError(bad)

