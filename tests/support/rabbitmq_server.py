"""A real rabbitmq-server from Debian, started for the tests on free loopback ports.

The node is the test's own: its own node name, Mnesia directory, logs, Erlang cookie
(`HOME`), config file, AMQP port, distribution port and `epmd` port, all under one
temporary directory, so it neither meets nor disturbs a system RabbitMQ or another test
run. Booting takes about 5–12 s on this 2-core machine (the Erlang VM, Mnesia, the
plugins' boot steps), so tests share one node per session (`rabbitmq_server` in
tests/conftest.py) and use their own queue and exchange names; `restart` stops the node
and starts it again on the same ports and data (durable queues and persistent messages
survive, as in production). Without the package the fixture skips saying so (.ci/run
installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port

#: The server script itself: /usr/sbin/rabbitmq-server is a wrapper that switches to the
#: `rabbitmq` user and /var/lib/rabbitmq, which a test node must not use.
SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD = shutil.which("epmd")
AVAILABLE = Path(SCRIPT).exists() and EPMD is not None
BOOT_TIMEOUT = 90.0


@dataclass
class RabbitMQServer:
    directory: Path
    port: int
    epmd_port: int
    dist_port: int
    node: str
    boot_seconds: float = 0.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def environment(self) -> dict[str, str]:
        d = self.directory
        return {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(d),  # the Erlang cookie goes here
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbit.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        """Boot the node and wait until it accepts AMQP connections."""
        began = time.monotonic()
        with (self.directory / "server.out").open("ab") as out:
            self.process = subprocess.Popen([SCRIPT], env=self.environment(), cwd=self.directory,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = began + BOOT_TIMEOUT
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rabbitmq-server did not start: {self.log_tail()}")
            time.sleep(0.05)
        self.boot_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the node (SIGTERM: a clean shutdown that keeps durable data) and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the script's group: sh and the Erlang VM under it
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        while _accepts(self.port):  # the VM outlives the script by a moment
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def shutdown(self) -> None:
        """Stop the node and the epmd it started on its own port."""
        self.stop()
        assert EPMD is not None
        subprocess.run([EPMD, "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10,
                       env={"ERL_EPMD_PORT": str(self.epmd_port), "PATH": "/usr/bin:/bin"})

    def ctl(self, *args: str) -> str:
        """`rabbitmqctl` against this node (its cookie and epmd port), e.g. ctl("list_queues")."""
        result = subprocess.run([CTL, "-n", self.node, "-q", *args], env=self.environment(), capture_output=True,
                                text=True, timeout=60, check=True)
        return result.stdout

    def unacknowledged(self, queue: str) -> int:
        """Messages of `queue` delivered to a consumer and not yet acknowledged."""
        for line in self.ctl("list_queues", "name", "messages_unacknowledged", "--no-table-headers").splitlines():
            name, _, count = line.strip().partition("\t")
            if name == queue:
                return int(count)
        raise LookupError(queue)

    def log_tail(self) -> str:
        logs = sorted((self.directory / "log").glob("*.log")) + [self.directory / "server.out"]
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())


def start_rabbitmq(directory: Path | None = None) -> RabbitMQServer:
    assert AVAILABLE, "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    workdir = directory or Path(tempfile.mkdtemp(prefix="logpipe-rabbitmq-"))
    server = RabbitMQServer(workdir, free_port(), free_port(), free_port(), f"logpipe-test-{os.getpid()}@localhost")
    (workdir / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{server.port}\n"
        "loopback_users = none\n"
        "log.console = false\n"
        "log.file.level = warning\n"
    )
    (workdir / "enabled_plugins").write_text("[].\n")
    server.start()
    return server


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
