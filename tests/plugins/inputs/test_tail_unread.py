"""Did I lose anything? `logpipe_input_tail_unread_rotated_bytes_total` (issue 16): bytes of a
file that was rotated away or deleted before it was read. A file held open is read to its
end whatever happens to its name, so the loss cases are a file that went while it waited
for a descriptor (max_open_files, issue 12 item 9) and a file that went while logpipe was
stopped (its saved position and size say what was never read)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from logpipe.plugin import Event, InputContext
from logpipe_plugins.inputs.tail import TailInput
from tests.test_daemon import LogpipeDaemon


class GatedLines:
    """Plays a pipeline that is stuck (backpressure) until `gate` opens."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.gate = asyncio.Event()
        self.blocked = asyncio.Event()

    async def emit(self, events: list[Event], on_ack: Any) -> None:
        self.blocked.set()
        await self.gate.wait()
        self.events.extend(events)
        if on_ack is not None:
            on_ack()


async def test_a_file_rotated_and_deleted_while_it_waited_is_counted(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("".join(f"a {i}\n" for i in range(100)))
    doomed = logs / "b.log"
    doomed.write_text("".join(f"b line {i:04d}\n" for i in range(200)))
    size = doomed.stat().st_size
    plugin = TailInput(id="unread_waiting", path=[f"{logs}/*.log"], read_from_head=True, pos_file="/dev/null",
                       stat_interval=0.02,
                       refresh_interval=0.05, max_open_files=1)
    sink = GatedLines()
    task = asyncio.create_task(plugin.run(InputContext(sink.emit, str(tmp_path / "state"), "unread-1")))
    try:
        async with asyncio.timeout(10):
            await sink.blocked.wait()  # a.log holds the one descriptor, b.log waits for it
            assert plugin.stats()["waiting_for_descriptor"] == 1
            doomed.rename(logs / "b.log.1")  # rotated out of the glob and deleted, faster than it is read
            (logs / "b.log.1").unlink()
            sink.gate.set()
            while plugin.stats()["unread_rotated_bytes"] < size:
                await asyncio.sleep(0.02)
            while len(sink.events) < 100:
                await asyncio.sleep(0.02)
        stats = plugin.stats()
        assert stats["unread_rotated_bytes"] == size and stats["waiting_for_descriptor"] == 0
        assert [e.record["message"] for e in sink.events] == [f"a {i}" for i in range(100)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await plugin.close()


class StuckReceiver:
    """A real HTTP receiver that holds every request until `release` (an output that is slow:
    the pipeline backs up into the tail input)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.release.wait(30)
                receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_unread_rotated_bytes_in_prometheus_and_stats_of_a_daemon(tmp_path: Path) -> None:
    """The same loss in a running daemon, seen through /metrics and /stats."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("".join(f"a {i}\n" for i in range(5000)))  # more than the queues hold
    doomed = logs / "b.log"
    doomed.write_text("".join(f"b line {i:04d}\n" for i in range(200)))
    size = doomed.stat().st_size
    receiver = StuckReceiver()
    conf = tmp_path / "pipeline.conf"
    conf.write_text(f"""
    input {{ file {{ id => "logs" path => "{logs}/*.log" start_position => "beginning" max_open_files => 1
                    batch_size => 10 stat_interval => 0.02 discover_interval => 5 }} }}
    output {{ http {{ id => "slow" url => "http://127.0.0.1:{receiver.port}/" total_limit_size => "1k"
                     flush_interval => 0 }} }}
    """)
    daemon = LogpipeDaemon(tmp_path, conf)
    try:
        deadline = time.monotonic() + 20
        while daemon.stats()["pipeline"]["input_stats"].get("logs", {}).get("waiting_for_descriptor") != 1:
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.05)
        doomed.rename(logs / "b.log.1")
        (logs / "b.log.1").unlink()
        receiver.release.set()
        deadline = time.monotonic() + 30
        while True:
            stats = daemon.stats()["pipeline"]["input_stats"]["logs"]
            if stats["unread_rotated_bytes"] >= size:
                break
            assert time.monotonic() < deadline, (stats, daemon.log())
            time.sleep(0.05)
        assert stats["unread_rotated_bytes"] == size and stats["waiting_for_descriptor"] == 0
        status, metrics = daemon.get("/metrics")
        assert status == 200
        assert f'logpipe_input_tail_unread_rotated_bytes_total{{input="logs"}} {float(size)}'.encode() in metrics
        assert "never read" in daemon.log()
        top = subprocess.run([sys.executable, "-m", "logpipe.cli", "top", "--once", "--http-port", str(daemon.port)],
                             capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "200"})
        assert top.returncode == 0 and f"logs: {size / 1024:.1f} KiB rotated away unread" in top.stdout, top.stdout
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(30)
        receiver.close()


async def test_a_saved_position_whose_file_is_gone_at_start_is_counted(tmp_path: Path) -> None:
    """Deleted while logpipe was stopped: the position file's saved size minus the saved
    offset went unread (the bytes written after the last save cannot be known)."""
    log = tmp_path / "app.log"
    log.write_text("x" * 500)
    st = log.stat()
    pos = tmp_path / "tail.pos"
    pos.write_text(json.dumps({"version": 1, "files": [
        {"path": str(log), "dev": st.st_dev, "ino": st.st_ino, "offset": 200, "fp": "0", "fp_len": 255,
         "size": 500}]}))
    log.unlink()
    plugin = TailInput(id="unread_stopped", path=[str(tmp_path / "*.log")], pos_file=str(pos), stat_interval=0.02)
    task = asyncio.create_task(plugin.run(InputContext(GatedLines().emit, str(tmp_path / "state"), "unread-2")))
    try:
        async with asyncio.timeout(10):
            while plugin.stats().get("unread_rotated_bytes") != 300:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await plugin.close()
