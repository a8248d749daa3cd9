"""`logpipe run --workers 2` as an operator runs it: order through a conditional, HUP reload
(old workers drained and gone, new ones built from the new config), SIGTERM (workers drained
before the outputs; a restart delivers the rest, each line once, in order)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from tests.paths import REPO
from tests.test_daemon import LogpipeDaemon, wait_for


def _config(log: Path, out: Path, sincedb: Path, version: str) -> str:
    return f"""
input {{ file {{ path => "{log}" start_position => "beginning" sincedb_path => "{sincedb}" stat_interval => 0.05 }} }}
filter {{
  if [message] =~ /5$/ {{ mutate {{ add_tag => ["five"] }} }}
  mutate {{ add_field => {{ "version" => "{version}" }} }}
}}
output {{ file {{ path => "{out}" codec => json_lines }} }}
"""


def _append(log: Path, start: int, count: int) -> None:
    with log.open("a") as fh:
        fh.write("".join(f"line {i}\n" for i in range(start, start + count)))


def _docs(out: Path) -> list[dict]:  # type: ignore[type-arg]
    try:
        data = out.read_bytes()
    except FileNotFoundError:
        return []
    complete = data[:data.rfind(b"\n") + 1]  # a line being written is not one yet
    return [orjson.loads(line) for line in complete.splitlines()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stdin_order_kept_through_a_conditional_with_two_workers(tmp_path: Path) -> None:
    """The issue's own example: `seq 1 10 | logpipe run …` printed 1 2 4 … 10 3 before."""
    cfg = ('input { stdin {} } filter { if [message] == "3" { mutate { add_tag => ["x"] } } } '
           'output { stdout { codec => line } }')
    lines = "".join(f"{i}\n" for i in range(1, 5001))
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-m", "logpipe.cli", "run", "--no-http", "--workers", "2", "-e", cfg],
                          input=lines.encode(), capture_output=True, timeout=120, cwd=REPO,
                          env={**os.environ, "LOGPIPE_STATE_DIR": str(state)})
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [str(i) for i in range(1, 5001)]


def test_workers_must_be_a_count() -> None:
    done = subprocess.run([sys.executable, "-m", "logpipe.cli", "run", "--workers", "0", "-e", "input {}"],
                          capture_output=True, timeout=60, cwd=REPO)
    assert done.returncode == 2 and b"at least 1, or auto" in done.stderr


def test_reload_and_shutdown_with_workers(tmp_path: Path) -> None:
    log, out, sincedb = tmp_path / "app.log", tmp_path / "out.jsonl", tmp_path / "sincedb"
    conf = tmp_path / "pipeline.conf"
    conf.write_text(_config(log, out, sincedb, "1"))
    _append(log, 0, 3000)
    daemon = LogpipeDaemon(tmp_path, conf, "--workers", "2")
    try:
        wait_for(lambda: len(_docs(out)) >= 3000, "the first 3000 lines written", timeout=60, proc=daemon)
        old = daemon.stats()["pipeline"]["workers"]["pids"]
        assert len(old) == 2 and daemon.proc.pid not in old

        conf.write_text(_config(log, out, sincedb, "2"))
        daemon.send(signal.SIGHUP)
        wait_for(lambda: daemon.stats()["reloads"]["succeeded"] == 1 and daemon.stats()["ready"], "the reload",
                 timeout=60, proc=daemon)
        new = daemon.stats()["pipeline"]["workers"]["pids"]
        assert len(new) == 2 and not set(new) & set(old)
        assert not any(_alive(pid) for pid in old), "the old workers were drained and exited"

        _append(log, 3000, 3000)
        wait_for(lambda: len(_docs(out)) >= 6000, "the next 3000 lines written", timeout=60, proc=daemon)
        _append(log, 6000, 20000)
        wait_for(lambda: len(_docs(out)) > 7000, "the last lines flowing", timeout=60, proc=daemon)
        assert daemon.stop(signal.SIGTERM, timeout=60) == 0
    finally:
        daemon.kill()
    assert not any(_alive(pid) for pid in new), "the workers exited with the daemon"
    # Whatever SIGTERM left unwritten is read again by the next run, from the saved position.
    (tmp_path / "again").mkdir()  # its own log (the HTTP port is read from it); positions are in `sincedb`
    again = LogpipeDaemon(tmp_path / "again", conf, "--workers", "2")
    try:
        again.wait_ready()
        wait_for(lambda: len(_docs(out)) >= 26000, "every line written", timeout=90, proc=again)
        assert again.stop(signal.SIGTERM, timeout=60) == 0
    finally:
        again.kill()
    docs = _docs(out)
    assert [d["message"] for d in docs] == [f"line {i}" for i in range(26000)]
    assert [d["version"] for d in docs[:3000]] == ["1"] * 3000 and {d["version"] for d in docs[3000:]} == {"2"}
    assert [i for i, d in enumerate(docs) if "five" in d.get("tags", [])] == [i for i in range(26000) if i % 10 == 5]
