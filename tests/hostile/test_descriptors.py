"""Running out of file descriptors (issue 12, item 9). With `ulimit -n 256` and 400 files
the daemon used to open files until EMFILE: then the output could not open its file,
positions could not be saved, 0 of 4000 lines were delivered and SIGTERM hung. Now the
tail input keeps to a descriptor budget below the limit (the rest is reserved for outputs,
positions, buffers and sockets), files beyond it wait for a descriptor, a file read to its
end gives its descriptor up while others wait, and accept() that meets EMFILE backs off."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import orjson

from tests.support.hostile import Daemon, Watch, cpu_seconds
from tests.support.net import free_port

FILES = 400
LINES = 10


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]


def test_400_files_and_300_clients_under_ulimit_256(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(FILES):
        (logs / f"f{i:03d}.log").write_text("".join(f"file {i} line {n}\n" for n in range(LINES)))
    out = tmp_path / "out.jsonl"
    port = free_port()
    config = f"""
    input {{
      file {{ path => "{logs}/*.log" start_position => "beginning" stat_interval => 0.05 discover_interval => 2 }}
      tcp {{ host => "127.0.0.1" port => {port} }}
    }}
    output {{ file {{ path => "{out}" }} }}
    """
    daemon = Daemon(tmp_path, config, shutdown_timeout=5.0, nofile=256)
    clients: list[socket.socket] = []
    try:
        daemon.wait_listening(port)
        with Watch(daemon) as watch:
            for _ in range(300):  # more clients than descriptors left: accept() meets EMFILE
                try:
                    clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
                except OSError:
                    break
            cpu_before, started = cpu_seconds(daemon.proc.pid), time.monotonic()
            deadline = time.monotonic() + 60
            while len(_lines(out)) < FILES * LINES and time.monotonic() < deadline and daemon.alive():
                time.sleep(0.1)
            busy = (cpu_seconds(daemon.proc.pid) - cpu_before) / (time.monotonic() - started)
            for c in clients:
                c.close()
            clients.clear()
            # Once clients are gone, a new one is accepted and its line delivered.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as late:
                late.sendall(b"a late client\n")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(r.get("message") == "a late client"
                                                           for r in _lines(out)):
                time.sleep(0.1)
        got = _lines(out)
        messages = {str(r["message"]) for r in got}
        assert daemon.alive(), daemon.log()
        assert all(f"file {i} line {n}" in messages for i in range(FILES) for n in range(LINES)), \
            f"{len(got)} of {FILES * LINES} lines delivered:\n{daemon.log()}"
        assert "a late client" in messages, daemon.log()
        assert watch.health_failures == 0 and watch.worst_health < 2.0
        assert busy < 0.9, f"the daemon used {busy:.0%} of a core while refusing clients (accept spinning)"
        log = daemon.log()
        assert log.count("max_open_files") <= 2, log  # said once per input, with what to do
        daemon.proc.terminate()
        started = time.monotonic()
        assert daemon.proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        for c in clients:
            c.close()
        daemon.stop()
