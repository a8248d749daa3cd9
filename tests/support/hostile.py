"""Support for tests/hostile: a real `logpipe run` daemon with its HTTP API on a known
port, its RSS sampled from /proc while an attack runs, and its health check timed.

Each attack test starts a daemon from a config string, attacks it, and asserts three
things that a hostile peer must not be able to change: the daemon stays alive, /healthz
keeps answering quickly, and VmRSS stays under a stated bound.
"""

from __future__ import annotations

import functools
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.paths import REPO
from tests.support.net import free_port

POLL = 0.02


class Daemon:
    """`python -m logpipe.cli run -f CONFIG` with the HTTP API on a free port."""

    def __init__(self, tmp: Path, config: str, shutdown_timeout: float = 5.0, nofile: int | None = None) -> None:
        """`nofile`: the daemon's RLIMIT_NOFILE (soft and hard), as `ulimit -n` would set it."""
        self.config = tmp / "logpipe.conf"
        self.config.write_text(config)
        state = tmp / "state"
        state.mkdir(exist_ok=True)
        self.stderr = tmp / "logpipe.stderr"
        self.http_port = free_port()
        with self.stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe.cli", "--log-level", "warning", "run", "-f", str(self.config),
                 "--state-dir", str(state), "--http-port", str(self.http_port),
                 "--shutdown-timeout", str(shutdown_timeout)],
                stdout=subprocess.DEVNULL, stderr=err, cwd=REPO,
                preexec_fn=None if nofile is None else functools.partial(_limit_files, nofile),
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:]

    def wait_listening(self, port: int, timeout: float = 20.0) -> None:
        """Until the daemon answers /healthz and accepts on `port`."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"logpipe exited ({self.proc.returncode}):\n{self.log()}")
            try:
                self.healthz(timeout=1.0)
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"logpipe did not start listening:\n{self.log()}") from None
                time.sleep(POLL)

    def healthz(self, timeout: float = 5.0) -> float:
        """Seconds /healthz took to answer 200 (raises on an error or after `timeout`)."""
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=timeout) as reply:
            assert reply.status == 200
        return time.monotonic() - started

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a Prometheus series from /metrics whose labels include `labels`."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def rss_kib(self) -> int:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


def _limit_files(n: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Watch:
    """Samples the daemon's RSS and /healthz latency in a thread while an attack runs."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.peak_rss_kib = 0
        self.worst_health = 0.0
        self.health_failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_health = 0.0
        while not self._stop.is_set():
            self.peak_rss_kib = max(self.peak_rss_kib, self.daemon.rss_kib())
            now = time.monotonic()
            if now >= next_health:
                try:
                    self.worst_health = max(self.worst_health, self.daemon.healthz(timeout=2.0))
                except OSError:
                    self.health_failures += 1
                next_health = now + 0.1
            time.sleep(POLL)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@contextmanager
def daemon(tmp: Path, config: str, port: int) -> Iterator[Daemon]:
    """A daemon listening on `port` (an input's), killed afterwards."""
    proc = Daemon(tmp, config)
    try:
        proc.wait_listening(port)
        yield proc
    finally:
        proc.stop()
