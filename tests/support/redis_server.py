"""A real redis-server from Debian, started for a test on a free loopback port.

No persistence (`--save '' --appendonly no`), its files in a temporary directory; stopped
(and waited for) when the test ends. Tests that need one take the `redis_server` fixture
from tests/conftest.py; without the binary they skip saying so (.ci/run installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.net import free_port

BINARY = shutil.which("redis-server")


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_redis(directory: Path | None = None, port: int | None = None) -> RedisServer:
    assert BINARY is not None, "redis-server is not installed (apt-get install redis-server)"
    workdir = directory or Path(tempfile.mkdtemp(prefix="logpipe-redis-"))
    port = port or free_port()
    process = subprocess.Popen(
        [BINARY, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no", "--logfile", str(workdir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, process, workdir)
    client = server.client()
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                log = (workdir / "redis.log").read_text()[-2000:]
                raise RuntimeError(f"redis-server did not start: {log}") from None
            time.sleep(0.02)
    client.close()
    return server
