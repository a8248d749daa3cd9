"""The `logpipe` command as a user runs it: a real process, real stdin/stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO


def logpipe(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logpipe.cli", *args], input=stdin, capture_output=True, text=True,
        timeout=timeout, cwd=REPO,
    )


def test_stdin_to_stdout_json_lines_exits_zero_at_eof(tmp_path: Path) -> None:
    result = logpipe("run", "--state-dir", str(tmp_path), "-e",
                     "input { stdin {} } output { stdout { codec => json_lines } }", stdin="one\ntwo\n")
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["message"] for d in docs] == ["one", "two"]
    assert all("@timestamp" in d for d in docs)


def test_seed_example_greeting(tmp_path: Path) -> None:
    cfg = ('input { stdin {} } filter { mutate { add_field => { "greeting" => "Hello %{message}" } } } '
           'output { stdout {} }')
    result = logpipe("run", "--state-dir", str(tmp_path), "-e", cfg, stdin="world\n")
    assert result.returncode == 0, result.stderr
    assert '"greeting" => "Hello world"' in result.stdout


def test_generator_count_to_file_with_sprintf_path(tmp_path: Path) -> None:
    out = tmp_path / "out" / "%{[kind]}.log"
    cfg = (f'input {{ generator {{ count => 3 lines => ["a", "b"] add_field => {{ "kind" => "gen" }} }} }} '
           f'output {{ file {{ path => "{out}" }} }}')
    result = logpipe("run", "--state-dir", str(tmp_path), "-e", cfg)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "gen.log").read_text().splitlines()
    # Logstash's count: how many times the lines are emitted (3 rounds of 2)
    assert [json.loads(line)["message"] for line in lines] == ["a", "b", "a", "b", "a", "b"]
    assert [json.loads(line)["sequence"] for line in lines] == [0, 0, 1, 1, 2, 2]


def test_check_reports_position_and_suggestion(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text('input { stdin {} }\noutput {\n  stdout { codc => json }\n}\n')
    result = logpipe("check", "-f", str(conf))
    assert result.returncode == 1
    assert f"{conf}:3:12" in result.stderr
    assert "did you mean 'codec'" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_ok_and_unknown_plugin(tmp_path: Path) -> None:
    good = logpipe("check", "-e", "input { generator { count => 1 } } output { null {} }")
    assert good.returncode == 0 and "OK" in good.stdout
    bad = logpipe("check", "-e", "input { generatr {} } output { null {} }")
    assert bad.returncode == 1
    assert "unknown input plugin 'generatr'; did you mean 'generator'?" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_missing_fluentd_plugin_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "fluent.conf"
    conf.write_text("<source>\n  type nosuchinput\n  port 24224\n</source>\n")
    result = logpipe("check", "-f", str(conf))
    assert result.returncode == 1
    assert "unknown input plugin 'nosuchinput'" in result.stderr


def test_version_and_plugins_listing() -> None:
    version = logpipe("--version")
    assert version.returncode == 0 and "logpipe 0." in version.stdout
    listing = logpipe("plugins")
    assert listing.returncode == 0
    assert "input generator" in listing.stdout and "count" in listing.stdout
    assert "output stdout" in listing.stdout
    es = logpipe("plugins", "elasticsearch")
    assert "output elasticsearch" in es.stdout and "input beats" not in es.stdout
    assert "retry_max_times" in es.stdout and "dead_letter_path" in es.stdout


def test_json_log_format(tmp_path: Path) -> None:
    result = logpipe("--log-format", "json", "--log-level", "debug", "run", "--state-dir", str(tmp_path),
                     "-e", "input { generator { count => 1 } } output { null {} }")
    assert result.returncode == 0
    for line in result.stderr.splitlines():
        assert "level" in json.loads(line)


def test_sigterm_drains_and_exits_zero(tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "out.log"
    cfg = f'input {{ generator {{ }} }} output {{ file {{ path => "{out}" flush_interval => 0.1 }} }}'
    proc = subprocess.Popen([sys.executable, "-m", "logpipe.cli", "run", "--state-dir", str(tmp_path), "-e", cfg],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 30
    while (not out.exists() or out.stat().st_size < 100_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.exists(), "the pipeline never wrote"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.read_text().splitlines()
    assert all(json.loads(line)["message"] == "Hello world!" for line in lines)
    sequences = [json.loads(line)["sequence"] for line in lines]
    assert sequences == list(range(len(sequences))), "events were lost or reordered during the drain"


def test_seed_grok_mutate_split_example(tmp_path: Path) -> None:
    """The seed's grok + mutate split config, as written. Its sample line has no time of day,
    which TIMESTAMP_ISO8601 requires (in Logstash too), so that line is tagged
    _grokparsefailure; with a time of day the users are split into an array."""
    cfg = ('input { stdin {} } filter { '
           'grok { match => { "message" => "%{TIMESTAMP_ISO8601:t} new users: %{GREEDYDATA:users}" } } '
           'mutate { split => { "users" => "," } } } output { stdout { codec => json_lines } }')
    lines = "2024-01-23 10:00:00 new users: jose,pedro,maria\n2024-01-23 new users: jose,pedro,maria\n"
    result = logpipe("run", "--state-dir", str(tmp_path), "-e", cfg, stdin=lines)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["users"] == ["jose", "pedro", "maria"] and first["t"] == "2024-01-23 10:00:00"
    assert "users" not in second and second["tags"] == ["_grokparsefailure"]


def test_sigterm_stops_a_stdin_pipeline_whose_stdin_stays_open(tmp_path: Path) -> None:
    """The blocked read of an idle stdin must not keep the process alive after the drain."""
    import signal
    import time

    out = tmp_path / "out.log"
    cfg = f'input {{ stdin {{ }} }} output {{ file {{ path => "{out}" flush_interval => 0 }} }}'
    proc = subprocess.Popen([sys.executable, "-m", "logpipe.cli", "run", "--no-http", "--state-dir", str(tmp_path),
                             "-e", cfg], stdin=subprocess.PIPE, stderr=(tmp_path / "err.log").open("wb"), cwd=REPO)
    assert proc.stdin is not None
    proc.stdin.write(b"first\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while (not out.exists() or not out.read_bytes().endswith(b"\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=20)  # not communicate(): that would close stdin (EOF)
    finally:
        proc.kill()
        proc.stdin.close()
    assert status == 0, (tmp_path / "err.log").read_text()
    assert json.loads(out.read_text())["message"] == "first"
