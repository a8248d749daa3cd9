"""The daemon: `python -m logpipe.cli run` as a real process with real signals and real
HTTP requests, plus in-process tests of the Daemon for what a process hides (readiness
during a reload, falling back when a new pipeline cannot start).

Every wait polls a condition (an HTTP endpoint, a file) against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from logpipe.config.model import PipelineConfig
from logpipe.daemon import ConfigSource, Daemon
from logpipe.event import Event
from logpipe.lifecycle import DaemonState, PipelineState
from logpipe.pipeline import Pipeline
from logpipe.plugin import Input, InputContext, Output
from tests.paths import REPO

POLL = 0.02
LISTENING = re.compile(r"HTTP API listening on http://127\.0\.0\.1:(\d+)")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0,
             proc: LogpipeDaemon | None = None) -> Any:
    """Poll until `condition()` is truthy and return it; fail after `timeout`, or at once
    when the daemon died (with its log, which says why)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"logpipe exited ({proc.proc.returncode}) while waiting for {what}:\n{proc.log()}")
        if time.monotonic() > deadline:
            tail = f"\nlogpipe log:\n{proc.log()}" if proc is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")
        time.sleep(POLL)


class LogpipeDaemon:
    """`logpipe run -f CONFIG --http-port 0` as a child process, its log in a file."""

    def __init__(self, tmp: Path, config: Path, *extra: str, http: bool = True) -> None:
        """`http=False`: no --http-port 0 (add --no-http, or find the port yourself)."""
        self.log_path = tmp / "logpipe.log"
        args = [sys.executable, "-m", "logpipe.cli", "--log-level", "info", "run", "-f", str(config),
                "--state-dir", str(tmp / "state"), "--shutdown-timeout", "10", *extra]
        if http:
            args += ["--http-port", "0"]
        with self.log_path.open("ab") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        self.port = int(wait_for(lambda: (m := LISTENING.search(self.log())) and m.group(1),
                                 "the HTTP API to listen", proc=self)) if http else 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stats(self) -> dict[str, Any]:
        status, body = self.get("/stats")
        assert status == 200
        return json.loads(body)

    def wait_ready(self) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200, "readiness", proc=self)

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemons() -> Any:
    started: list[LogpipeDaemon] = []
    yield started
    for d in started:
        d.kill()


def output_messages(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines the file output wrote so far."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def tail_to_file_config(log: Path, out: Path, *, generation: int, buffer: str, flush_interval: float) -> str:
    return f"""
input {{
  file {{ path => "{log}" start_position => "beginning" stat_interval => 0.02 }}
}}
filter {{
  mutate {{ add_field => {{ "generation" => "{generation}" }} }}
}}
output {{
  file {{ id => "out" path => "{out}" buffer => {buffer} flush_interval => {flush_interval} }}
}}
"""


class Appender(threading.Thread):
    """Appends numbered lines to a log file, paced, until stopped: a file being written to
    while the daemon reloads."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.written = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            while not self._halt.is_set():
                fh.write("".join(f"line {self.written + i:07d}\n" for i in range(100)))
                fh.flush()
                self.written += 100
                self._halt.wait(0.005)

    def finish(self) -> int:
        self._halt.set()
        self.join(10)
        return self.written


# ---- reload: nothing lost ------------------------------------------------------------


@pytest.mark.parametrize("buffer", ["memory", "file"])
def test_reload_under_load_loses_nothing(tmp_path: Path, daemons: list[LogpipeDaemon], buffer: str) -> None:
    log, out, conf = tmp_path / "app.log", tmp_path / "out.jsonl", tmp_path / "pipeline.conf"
    log.touch()
    # Generation 1 never flushes on its own: everything it reads is still in its buffer
    # at the reload, so it must cross over (memory: drained at stop; file: replayed).
    conf.write_text(tail_to_file_config(log, out, generation=1, buffer=buffer, flush_interval=3600))
    d = LogpipeDaemon(tmp_path, conf)
    daemons.append(d)
    d.wait_ready()
    appender = Appender(log)
    appender.start()
    try:
        wait_for(lambda: d.stats()["pipeline"]["events_in"] >= 5000, "generation 1 to read lines", proc=d)
        assert output_messages(out) == []

        conf.write_text(tail_to_file_config(log, out, generation=2, buffer=buffer, flush_interval=0.05))
        d.send(signal.SIGHUP)
        wait_for(lambda: d.stats()["reloads"]["succeeded"] == 1, "the reload", proc=d)
        d.wait_ready()
        wait_for(lambda: any(m["generation"] == "2" for m in output_messages(out)), "generation 2 output", proc=d)

        good = conf.read_text()
        conf.write_text(good.replace("add_field", "add_feild"))
        d.send(signal.SIGHUP)
        last = wait_for(lambda: (s := d.stats())["reloads"]["failed"] == 1 and s["reloads"]["last"],
                        "the failed reload", proc=d)
        assert last["ok"] is False
        assert f"{conf}:6:" in last["error"] and "add_feild" in last["error"]
        assert f"{conf}:6:" in d.log() and "the running pipeline is kept" in d.log()
        assert d.get("/readyz")[0] == 200
        status, metrics = d.get("/metrics")
        assert 'logpipe_reloads_total{result="failure"} 1.0' in metrics.decode()
        assert "logpipe_config_last_reload_successful 0.0" in metrics.decode()
        # The old pipeline keeps shipping.
        seen = len(output_messages(out))
        wait_for(lambda: len(output_messages(out)) > seen + 2000, "lines after the failed reload", proc=d)
    finally:
        total = appender.finish()

    wait_for(lambda: len(output_messages(out)) >= total, f"all {total} lines in the output", proc=d)
    assert d.stop() == 0
    assert "Traceback" not in d.log()
    messages = Counter(m["message"] for m in output_messages(out))
    expected = {f"line {i:07d}" for i in range(total)}
    assert not expected - set(messages), f"{len(expected - set(messages))} line(s) lost"
    assert set(messages) == expected
    duplicates = sum(messages.values()) - len(messages)
    assert duplicates == 0, f"{duplicates} duplicate(s) after a clean reload"
    generations = Counter(m["generation"] for m in output_messages(out))
    assert generations["1"] >= 5000 and generations["2"] > 0


# ---- flush, endpoints, exit statuses -----------------------------------------------------


def test_usr1_flushes_and_endpoints_answer(tmp_path: Path, daemons: list[LogpipeDaemon]) -> None:
    log, out, conf = tmp_path / "app.log", tmp_path / "out.jsonl", tmp_path / "pipeline.conf"
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    conf.write_text(tail_to_file_config(log, out, generation=1, buffer="memory", flush_interval=3600))
    d = LogpipeDaemon(tmp_path, conf)
    daemons.append(d)
    assert d.get("/healthz") == (200, b"ok\n")
    d.wait_ready()
    buffered = wait_for(lambda: d.stats()["pipeline"]["outputs"]["out"]["buffered_events"] == 10 and d.stats(),
                        "10 buffered events", proc=d)
    assert buffered["config"]["sources"] == [str(conf)]
    assert buffered["reloads"] == {"succeeded": 0, "failed": 0, "last": None}
    assert buffered["uptime_seconds"] > 0
    assert output_messages(out) == []

    d.send(signal.SIGUSR1)
    wait_for(lambda: len(output_messages(out)) == 10, "the flushed lines", proc=d)
    status, body = d.get("/metrics")
    text = body.decode()
    assert status == 200
    assert re.search(r"^logpipe_events_in_total 10\.0$", text, re.M)
    assert re.search(r'^logpipe_output_events_delivered_total\{output="out"\} 10\.0$', text, re.M)
    assert re.search(r"^logpipe_events_out_total 10\.0$", text, re.M)
    assert re.search(r"^logpipe_ready 1\.0$", text, re.M)
    rss = re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M)
    assert rss and float(rss.group(1)) > 10_000_000
    assert d.stop(signal.SIGINT) == 0
    assert "Traceback" not in d.log()


def test_http_port_taken_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    conf = tmp_path / "pipeline.conf"
    (tmp_path / "app.log").touch()
    conf.write_text(tail_to_file_config(tmp_path / "app.log", tmp_path / "out", generation=1, buffer="memory",
                                        flush_interval=1))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "logpipe.cli", "run", "-f", str(conf), "--state-dir", str(tmp_path / "state"),
             "--http-port", str(port)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_port_taken_moves_to_the_next_free_one(tmp_path: Path, daemons: list[LogpipeDaemon]) -> None:
    conf = tmp_path / "pipeline.conf"
    (tmp_path / "app.log").touch()
    conf.write_text(tail_to_file_config(tmp_path / "app.log", tmp_path / "out", generation=1, buffer="memory",
                                        flush_interval=1))
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 9600))
            holder.listen()
        except OSError:
            pass  # someone else holds it already: the same situation
        d = LogpipeDaemon(tmp_path, conf, http=False)
        daemons.append(d)
        d.port = int(wait_for(lambda: (m := LISTENING.search(d.log())) and m.group(1), "the HTTP API", proc=d))
    assert 9600 < d.port <= 9700
    assert "WARNING" in d.log() and "port 9600 was taken" in d.log()
    d.wait_ready()
    assert d.stop() == 0


def test_no_http_runs_without_the_api(tmp_path: Path, daemons: list[LogpipeDaemon]) -> None:
    log, out, conf = tmp_path / "app.log", tmp_path / "out.jsonl", tmp_path / "pipeline.conf"
    log.write_text("one\n")
    conf.write_text(tail_to_file_config(log, out, generation=1, buffer="memory", flush_interval=0.05))
    d = LogpipeDaemon(tmp_path, conf, "--no-http", http=False)
    daemons.append(d)
    wait_for(lambda: len(output_messages(out)) == 1, "the line", proc=d)
    assert d.stop() == 0
    assert "HTTP API" not in d.log()


# ---- in process: what a process hides -------------------------------------------------


class EndlessInput(Input):
    """Emits one event, then runs until cancelled (like a tail with nothing new)."""

    name = "endless"

    async def run(self, ctx: InputContext) -> None:
        await ctx.emit([Event("t", None, {"message": "hello"})], None)
        await asyncio.Event().wait()


class GatedOutput(Output):
    """Writes into a list; close() waits for `gate`, so a reload's drain takes as long as
    the test wants. start() raises when `fail_start` is set."""

    name = "gated"

    def __init__(self, gate: asyncio.Event, written: list[Event], fail_start: bool = False) -> None:
        super().__init__(id="gated", flush_interval=0)
        self.gate, self.written, self.fail_start = gate, written, fail_start

    async def start(self) -> None:
        if self.fail_start:
            raise OSError(98, "Address already in use")

    async def write(self, events: list[Event]) -> None:
        self.written.extend(events)

    async def close(self) -> None:
        await self.gate.wait()


class Harness:
    def __init__(self, state_dir: str) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.written: list[Event] = []
        self.fail_next_start = False
        self.built: list[Pipeline] = []
        self.daemon = Daemon(ConfigSource(text="input { } output { }"), http_ports=None, build=self.build)
        self.state_dir = state_dir

    def build(self, model: PipelineConfig) -> Pipeline:
        fail, self.fail_next_start = self.fail_next_start, False
        pipeline = Pipeline(model, inputs=[EndlessInput()], outputs=[GatedOutput(self.gate, self.written, fail)],
                            state_dir=self.state_dir, shutdown_timeout=5)
        self.built.append(pipeline)
        return pipeline

    @staticmethod
    async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(POLL)


async def test_not_ready_during_a_reload(state_dir: str) -> None:
    h = Harness(state_dir)
    task = asyncio.create_task(h.daemon.run())
    await h.until(lambda: h.daemon.readiness()[0] and len(h.written) == 1, "ready")
    h.gate.clear()
    h.daemon.request_reload()
    await h.until(lambda: not h.daemon.readiness()[0], "not ready")
    assert h.daemon.readiness() == (False, "reloading the configuration")
    assert h.daemon.state is DaemonState.RELOADING and h.daemon.stats()["state"] == "reloading"
    assert h.built[0].state is PipelineState.DRAINING  # its output's close waits for the gate
    h.gate.set()
    await h.until(lambda: h.daemon.readiness()[0], "ready again")
    assert h.daemon.state is DaemonState.RUNNING
    assert h.daemon.pipeline is h.built[1] and h.built[0].state is PipelineState.STOPPED
    assert h.daemon.last_reload is not None and h.daemon.last_reload.ok
    await h.until(lambda: len(h.written) == 2, "the new pipeline's event")
    h.daemon.request_stop()
    assert await task == 0


async def test_new_pipeline_that_cannot_start_falls_back_to_the_previous(state_dir: str) -> None:
    h = Harness(state_dir)
    task = asyncio.create_task(h.daemon.run())
    await h.until(lambda: h.daemon.readiness()[0], "ready")
    h.fail_next_start = True
    h.daemon.request_reload()
    await h.until(lambda: h.daemon.last_reload is not None, "the reload")
    await h.until(lambda: h.daemon.readiness()[0], "ready again")
    last = h.daemon.last_reload
    assert last is not None and not last.ok and "failed to start" in (last.error or "")
    assert len(h.built) == 3 and h.daemon.pipeline is h.built[2]
    gauges = {name: value for name, _, value in h.daemon.gauges()}
    assert gauges["logpipe_config_last_reload_successful"] == 0
    assert h.daemon.stats()["reloads"]["last"]["ok"] is False
    h.daemon.request_stop()
    assert await task == 0


async def test_hups_during_a_reload_coalesce(state_dir: str) -> None:
    h = Harness(state_dir)
    task = asyncio.create_task(h.daemon.run())
    await h.until(lambda: h.daemon.readiness()[0], "ready")
    h.gate.clear()
    h.daemon.request_reload()
    await h.until(lambda: not h.daemon.readiness()[0], "reloading")
    for _ in range(5):
        h.daemon.request_reload()
    h.gate.set()
    await h.until(lambda: len(h.built) == 3 and h.daemon.readiness()[0], "the second reload")
    h.daemon.request_stop()
    assert await task == 0
    assert len(h.built) == 3


async def test_a_config_that_does_not_build_keeps_the_daemon_running(state_dir: str) -> None:
    h = Harness(state_dir)
    task = asyncio.create_task(h.daemon.run())
    await h.until(lambda: h.daemon.readiness()[0], "ready")
    h.daemon.source = ConfigSource(text="output { nonesuch { } }")
    h.daemon.request_reload()
    await h.until(lambda: h.daemon.last_reload is not None, "the reload")
    assert h.daemon.state is DaemonState.RUNNING and h.daemon.readiness() == (True, "ready")
    assert h.daemon.pipeline is h.built[0] and h.built[0].state is PipelineState.RUNNING
    h.gate.clear()
    h.daemon.request_stop()
    await h.until(lambda: h.daemon.state is DaemonState.STOPPING, "stopping")
    assert h.daemon.readiness() == (False, "stopping")
    h.daemon.request_flush()  # ignored: the pipeline is no longer running
    h.gate.set()
    assert await task == 0
    assert h.daemon.state is DaemonState.STOPPED and h.built[0].state is PipelineState.STOPPED


class FailingInput(Input):
    name = "failing"

    async def run(self, ctx: InputContext) -> None:
        raise ConnectionResetError("upstream went away")


async def test_a_failed_input_makes_the_daemon_unready_and_exit_1(state_dir: str) -> None:
    def build(model: PipelineConfig) -> Pipeline:
        return Pipeline(model, inputs=[EndlessInput(), FailingInput()], outputs=[GatedOutput(gate, [])],
                        state_dir=state_dir, shutdown_timeout=5)

    gate = asyncio.Event()
    gate.set()
    daemon = Daemon(ConfigSource(text="input { } output { }"), http_ports=None, build=build)
    task = asyncio.create_task(daemon.run())
    await Harness.until(lambda: daemon.pipeline is not None and daemon.pipeline.failed is not None, "the failure")
    ready, reason = daemon.readiness()
    assert not ready and "upstream went away" in reason
    assert daemon.stats()["pipeline"]["failed"] == "upstream went away"
    daemon.request_stop()
    assert await task == 1
