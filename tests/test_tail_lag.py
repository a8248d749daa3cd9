"""Tail lag in /stats and /metrics of a running daemon: per file, read at request time."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.test_daemon import LogpipeDaemon


def test_tail_lag_in_metrics_and_stats(tmp_path: Path) -> None:
    """logpipe_input_tail_lag_bytes{input,file}: read at scrape time for the files open now."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    conf = tmp_path / "pipeline.conf"
    conf.write_text(f'input {{ file {{ id => "logs" path => "{log}" start_position => "beginning" }} }}\n'
                    'output { null {} }\n')
    daemon = LogpipeDaemon(tmp_path, conf)
    try:
        deadline = time.monotonic() + 20
        while True:
            status, body = daemon.get("/stats")
            files = json.loads(body)["pipeline"]["input_stats"].get("logs", {}).get("files", [])
            if files and files[0]["acknowledged"] == log.stat().st_size:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        assert files[0]["lag_bytes"] == 0 and files[0]["size"] == log.stat().st_size
        status, metrics = daemon.get("/metrics")
        assert status == 200
        assert f'logpipe_input_tail_lag_bytes{{file="{log}",input="logs"}} 0.0'.encode() in metrics
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(30)
