"""`logpipe grok`: outputs and exit codes, in-process and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from logpipe.grok import Grok
from logpipe.grok.discover import discover
from logpipe.grok.workbench import main
from tests.paths import REPO, SHARED

ACCESS_LOG = SHARED / "data" / "apache_logs" / "access.log"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_all_lines_match_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "%{IP:ip} %{WORD:verb} %{INT:n:int}", "1.2.3.4 GET 5", "5.6.7.8 PUT 6")
    assert code == 0
    assert "line 1: matched" in out and '"n": 5' in out
    assert "2 matched, 0 not matched" in out and "lines/s" in out


def test_a_line_that_does_not_match_exit_1_with_caret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "%{IP:ip} %{WORD:verb} %{INT:n}", "1.2.3.4 GET x5")
    assert code == 1
    assert "line 1: NOT matched" in out
    assert "pattern matched up to: %{IP:ip} %{WORD:verb} " in out
    assert "it consumed:           '1.2.3.4 GET '" in out
    assert "next, the pattern expects: %{INT:n}" in out
    lines = out.splitlines()
    shown = next(i for i, text in enumerate(lines) if text.strip() == "1.2.3.4 GET x5")
    assert lines[shown + 1].index("^") == lines[shown].index("x")
    assert "0 matched, 1 not matched" in out


def test_diagnosis_opens_library_patterns(capsys: pytest.CaptureFixture[str]) -> None:
    line = '1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 2O0 12 "-" "curl"'
    code, out, _ = run(capsys, "%{COMBINEDAPACHELOG}", line)
    assert code == 1
    assert "looking inside %{COMBINEDAPACHELOG}" in out
    assert f"column {line.index('O0') + 1}" in out  # NUMBER took the '2', then a space was due


def test_json_output_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--json", "%{NUMBER:x:int} %{WORD:w}", "3.5 a", "zz")
    assert code == 1
    first, second = (json.loads(text) for text in out.splitlines())
    assert first["matched"] and first["captures"] == {"x": "3.5", "w": "a"}
    assert first["coerce_failures"] == [{"field": "x", "value": "3.5", "type": "int"}]
    assert second == {"line": 2, "matched": False, "matched_prefix": "", "consumed": "", "expected": "%{NUMBER:x:int}",
                      "column": 1, "inside": []}
    assert "1 matched, 1 not matched" in err


def test_lines_from_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sample = tmp_path / "sample.log"
    sample.write_text("GET 1\nPUT 2\n")
    code, out, _ = run(capsys, "%{WORD:verb} %{INT:n}", "-f", str(sample))
    assert code == 0 and "2 matched, 0 not matched" in out


def test_ecs_define_and_patterns_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "mine").write_text("TICKET T-[0-9]+\n")
    code, out, _ = run(capsys, "--json", "--ecs", "v1", "--patterns-dir", str(tmp_path), "--define", "PRIO=P[0-4]",
                       "%{TICKET:[t][id]} %{PRIO:[t][prio]} %{SYSLOGFACILITY}", "T-7 P1 <3.4>")
    assert code == 0
    caps = json.loads(out)["captures"]
    assert caps["t"] == {"id": "T-7", "prio": "P1"}
    assert caps["log"]["syslog"]["facility"]["code"] == 3


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--list", "httpd_")
    assert code == 0
    names = [text.split()[0] for text in out.splitlines()]
    assert "HTTPD_COMBINEDLOG" in names and "HTTPD_COMMONLOG" in names
    assert all("HTTPD_" in n for n in names)
    code, _, _ = run(capsys, "--list", "NO_SUCH_THING")
    assert code == 1


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--show", "SYSLOGFACILITY", "--ecs", "v1")
    assert code == 0
    assert "definition: <%{NONNEGINT:[log][syslog][facility][code]:int}" in out
    assert "[log][syslog][facility][code] :int" in out
    expanded = out.split("Python re syntax):")[1].strip()
    assert Grok("%{SYSLOGFACILITY}", ecs_compatibility="v1").regex.pattern == expanded


def test_show_unknown_name_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--show", "HTTPDATES")
    assert code == 2 and "did you mean HTTPDATE" in err


def test_bad_pattern_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "%{WORD} %{NOPE}", "x")
    assert code == 2
    assert "unknown pattern %{NOPE}" in err and "position 8" in err


def test_bad_define_and_missing_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--define", "novalue", "%{INT}", "1")[0] == 2
    assert run(capsys)[0] == 2


def test_discover_on_the_real_access_log(capsys: pytest.CaptureFixture[str]) -> None:
    lines = ACCESS_LOG.read_text(encoding="utf-8").splitlines()
    code, out, _ = run(capsys, "--discover", lines[0], "-f", str(ACCESS_LOG))
    assert code == 0
    pattern = out.splitlines()[0]
    assert pattern == "%{HTTPD_COMBINEDLOG}"  # a whole known format, before any assembly of tokens
    hits = int(out.split("matches ")[1].split(" of ")[0])
    assert hits >= 0.9 * len(lines)


def test_discover_recognises_tokens_most_specific_first() -> None:
    proposal = discover("2024-01-02T03:04:05Z INFO [main] user=bob ip=10.0.0.1 took 12.5ms")
    assert proposal.pattern == (r"%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} \[%{WORD:word}\] "
                                r"user=%{WORD:user} ip=%{IP:ip} took %{NUMBER:duration}ms")
    assert proposal.captures["ip"] == "10.0.0.1" and proposal.captures["duration"] == "12.5"
    assert "kv" in proposal.suggestion  # two key=value pairs: the kv filter reads them all


@pytest.mark.parametrize(("line", "pattern"), [
    ("2024-01-23 new users: jose,pedro,maria",
     "(?<date>%{YEAR}-%{MONTHNUM}-%{MONTHDAY}) new users: %{WORD:word},%{WORD:word2},%{WORD:word3}"),
    ("user=alice", "user=%{WORD:user}"),
    ("10.0.0.1 GET /index.html 200 12ms", "%{IP:client_ip} GET %{UNIXPATH:path} %{NUMBER:status} %{NUMBER:duration}ms"),
    ("Dec  1 22:50:53 host sshd[123]: Accepted password for root", "%{SYSLOGLINE}"),
])
def test_discover_formats_constants_and_names(line: str, pattern: str) -> None:
    proposal = discover(line)
    assert proposal.pattern == pattern
    assert Grok(f"^{proposal.pattern}$").match(line) is not None


def test_subprocess_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ok = subprocess.run([sys.executable, "-m", "logpipe.grok", "--json", "%{INT:n:int}"], input="1\n2\n",
                        capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert [json.loads(t)["captures"] for t in ok.stdout.splitlines()] == [{"n": 1}, {"n": 2}]
    bad = subprocess.run([sys.executable, "-m", "logpipe.grok.workbench", "%{INT:n}", "x"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert bad.returncode == 1 and "NOT matched" in bad.stdout


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_refuses_a_port_out_of_range_without_a_traceback(port: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "logpipe.cli", "grok", "--serve", "--port", port],
                          capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "argument --port" in proc.stderr and ("0 to 65535" in proc.stderr or "port number" in proc.stderr)


def test_serve_on_a_port_in_use_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        code, _, err = run(capsys, "--serve", "--port", str(busy))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{busy}" in err
