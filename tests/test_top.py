"""`logpipe top` in a real terminal: tmux runs it against a running daemon, capture-pane reads
the screen, send-keys stops it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_daemon import LogpipeDaemon

CONFIG = """
input { generator { lines => ["ok 1", "bad"] count => 0 batch_size => 50 } }
filter { grok { id => "parse" match => { "message" => "%{WORD:w} %{INT:n}" } } }
output { null { id => "sink" } }
"""

TMUX = shutil.which("tmux")


def screen(session: str) -> str:
    return subprocess.run([TMUX or "tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_screen(session: str, *needles: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = screen(session)
        if all(n in text for n in needles):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needles} not on the screen after {timeout}s:\n{text}")


def test_top_in_a_terminal(tmp_path: Path) -> None:
    if TMUX is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed: .ci/run installs Debian's tmux for this test")
        pytest.skip("tmux is not installed (apt-get install tmux)")
    conf = tmp_path / "pipeline.conf"
    conf.write_text(CONFIG)
    daemon = LogpipeDaemon(tmp_path, conf)
    session = f"logpipe-top-{daemon.port}"
    try:
        subprocess.run([TMUX or "tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40",
                        f"{sys.executable} -m logpipe.cli top --http-port {daemon.port} --interval 0.5; "
                        f"echo TOP-EXITED-$?; sleep 30"], check=True)
        text = wait_screen(session, "outputs", "sink", "ready", "/s")
        assert "parse" in text and "bad" in text  # the grok filter's last failing line
        rate_line = next(line for line in text.splitlines() if "sink" in line)
        assert "/s" in rate_line and "—" not in rate_line  # a rate from two polls
        subprocess.run([TMUX or "tmux", "send-keys", "-t", session, "C-c"], check=True)
        wait_screen(session, "TOP-EXITED-0")
    finally:
        subprocess.run([TMUX or "tmux", "kill-session", "-t", session], capture_output=True)
        daemon.proc.terminate()
        daemon.proc.wait(30)


def test_top_once_and_unreachable(tmp_path: Path) -> None:
    conf = tmp_path / "pipeline.conf"
    conf.write_text(CONFIG)
    daemon = LogpipeDaemon(tmp_path, conf)
    try:
        once = subprocess.run([sys.executable, "-m", "logpipe.cli", "top", "--once", "--http-port", str(daemon.port)],
                              capture_output=True, text=True, timeout=30)
        assert once.returncode == 0 and "sink" in once.stdout and "pipeline" in once.stdout
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(30)
    down = subprocess.run([sys.executable, "-m", "logpipe.cli", "top", "--once", "--http-port", str(daemon.port)],
                          capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "cannot read" in down.stdout + down.stderr


@pytest.mark.parametrize(("stats", "shown"), [
    ({"ready": True, "state": "running", "status": "ready"}, "ready"),
    ({"ready": False, "state": "reloading", "status": "reloading the configuration"}, "reloading the configuration"),
    ({"ready": False, "state": "running", "status": "an input failed: gone"}, "running: an input failed: gone"),
    ({"ready": False, "state": "stopping", "status": "stopping"}, "stopping"),
])
def test_the_header_shows_the_lifecycle_state(stats: dict, shown: str) -> None:
    from rich.console import Console

    from logpipe.top import render

    console = Console(width=160, record=True)
    console.print(render({"version": "0", "pid": 1, **stats}, None, 1.0))
    head = console.export_text().splitlines()[0]
    assert f"  {shown}  reloads" in head
