"""Support for the end-to-end delivery tests: a real `logpipe run` subprocess against the
Elasticsearch stand-in.

The stand-in (tests/es_standin.py) is an asyncio server; here it runs on its own event
loop in a background thread, so the test body can stay synchronous and poll conditions
while the logpipe process, a separate OS process, is killed, signalled and restarted.
Everything the test reads from or switches on the stand-in goes through its loop
(`StandInThread.call`): its dicts are mutated by request handlers and must not be
iterated from another thread.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from logpipe_plugins.inputs.tail.positions import load_positions
from tests.paths import REPO
from tests.standins.elasticsearch import ESStandIn

T = TypeVar("T")
POLL = 0.02


@dataclass(frozen=True)
class IndexState:
    """What the stand-in holds for one index: documents by _id, and how many index
    operations it applied (every bulk item that stored a document, replays included)."""

    messages: dict[str, str]
    operations: int

    @property
    def docs(self) -> int:
        return len(self.messages)

    @property
    def duplicates_absorbed(self) -> int:
        """Index operations that rewrote a document already there (same _id)."""
        return self.operations - self.docs


class HoldingStandIn(ESStandIn):
    """The stand-in, able to hold bulk replies after indexing: with `hold_replies` set,
    a request's documents are stored and its reply waits for `release()`. A client killed
    meanwhile has had its documents indexed without ever hearing so — the window where a
    replay must be absorbed by deterministic ids."""

    def __init__(self, version: str) -> None:
        super().__init__(version, keep_actions=False)
        self.hold_replies = False
        self.held_requests = 0
        self.held_items = 0
        self._released = asyncio.Event()

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        before = self.stats.items
        response = await super()._bulk(request)
        if self.hold_replies and response.status == 200:
            self.held_requests += 1
            self.held_items += self.stats.items - before
            await self._released.wait()
        return response

    def release(self) -> None:
        self.hold_replies = False
        self._released.set()
        self._released = asyncio.Event()


class StandInThread:
    """The ES stand-in served from a background thread; see the module docstring."""

    def __init__(self, version: str = "9.1.3") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="es-standin", daemon=True)
        self._thread.start()
        self.es: HoldingStandIn = self.run(self._create(version))

    @staticmethod
    async def _create(version: str) -> HoldingStandIn:
        # Created on its own loop: its asyncio primitives belong there.
        es = HoldingStandIn(version)
        await es.start()
        return es

    @property
    def url(self) -> str:
        return self.es.url

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)

    def close(self) -> None:
        self.call(self.es.release)
        self.run(self.es.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # ---- observations --------------------------------------------------------------

    def index_state(self, index: str) -> IndexState:
        def snapshot() -> IndexState:
            docs = self.es.indices.get(index, {})
            messages = {doc_id: str(doc.get("message")) for doc_id, doc in docs.items()}
            operations = sum(v for (i, _), v in self.es.versions.items() if i == index)
            return IndexState(messages, operations)

        return self.call(snapshot)

    def wait_quiet(self, index: str, quiet: float, timeout: float) -> IndexState:
        """The index once no index operation has arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        state = self.index_state(index)
        still_since = time.monotonic()
        while time.monotonic() - still_since < quiet:
            if time.monotonic() > deadline:
                raise AssertionError(f"index {index} still receiving operations after {timeout}s")
            time.sleep(POLL * 5)
            now = self.index_state(index)
            if now.operations != state.operations:
                state, still_since = now, time.monotonic()
        return state

    def doc_count(self) -> int:
        return self.call(self.es.count)

    def request_status_count(self, status: int) -> int:
        return self.call(lambda: self.es.stats.request_statuses[status])

    # ---- failure modes -------------------------------------------------------------

    def go_down(self) -> None:
        """Close the listening socket and every connection: clients get connection refused."""
        self.run(self.es.stop())

    def come_back(self) -> None:
        """Listen again on the same port, documents intact (a node restart)."""
        self.run(self.es.start())

    def refuse_bulk(self, status: int, requests: int = 1_000_000) -> None:
        """Answer the next `requests` bulk requests (in effect: until `accept_bulk`) with `status`."""
        self.call(lambda: self.es.request_failures.extend([status] * requests))

    def accept_bulk(self) -> None:
        self.call(self.es.request_failures.clear)

    def set_delay(self, seconds: float) -> None:
        """Delay every bulk request before it is applied (an indexing rate for the test to race)."""
        def apply() -> None:
            self.es.delay = seconds

        self.call(apply)

    def hold_replies(self) -> None:
        def apply() -> None:
            self.es.hold_replies = True

        self.call(apply)

    def release_replies(self) -> None:
        self.call(self.es.release)

    def held(self) -> tuple[int, int]:
        """(requests, items) indexed whose replies are being held."""
        return self.call(lambda: (self.es.held_requests, self.es.held_items))


class LogpipeProcess:
    """`python -m logpipe.cli run -f CONFIG --state-dir DIR` as a child process; its
    stderr goes to a file (a pipe nobody reads could fill up and stall it)."""

    def __init__(self, config: Path, state_dir: Path, log: Path, shutdown_timeout: float = 5.0,
                 workers: int = 1) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe.cli", "--log-level", "warning", "run", "-f", str(config),
                 "--state-dir", str(state_dir), "--shutdown-timeout", str(shutdown_timeout),
                 "--workers", str(workers)],
                stdout=subprocess.DEVNULL, stderr=err, cwd=REPO,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        """VmRSS of the process, from /proc (0 once it is gone)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def peak_rss_kib(self, seconds: float) -> int:
        """The highest VmRSS seen while sampling every POLL seconds for `seconds`."""
        peak, until = 0, time.monotonic() + seconds
        while time.monotonic() < until:
            peak = max(peak, self.rss_kib())
            time.sleep(POLL)
        return peak

    def read_offset(self, path: Path) -> int | None:
        """Where the process's descriptor of `path` stands (/proc/PID/fdinfo `pos`): how far
        a reader using read(2) has read. None when it has no descriptor of that file."""
        fd_dir = Path(f"/proc/{self.pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    if os.readlink(fd) != str(path):
                        continue
                    info = Path(f"/proc/{self.pid}/fdinfo/{fd.name}").read_text()
                except OSError:
                    continue
                for line in info.splitlines():
                    if line.startswith("pos:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def stderr_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM, then wait up to `timeout`; returns (exit status, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def ensure_stopped(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               process: LogpipeProcess | None = None) -> None:
    """Poll `condition` every POLL seconds until it holds; fail with `what` after `timeout`,
    or at once if `process` died meanwhile (with its stderr, which says why)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and not process.alive():
            raise AssertionError(f"logpipe exited ({process.proc.returncode}) while waiting for {what}:\n"
                                 f"{process.stderr_tail()}")
        if time.monotonic() > deadline:
            tail = f"\nlogpipe stderr:\n{process.stderr_tail()}" if process is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")
        time.sleep(POLL)


def committed_offset(sincedb: Path, log: Path) -> int:
    """The acknowledged offset the tail input saved for `log` (0 when none is saved yet)."""
    st = log.stat()
    position = load_positions(str(sincedb)).get((st.st_dev, st.st_ino))
    return position.offset if position is not None else 0


def line_text(seq: int, width: int = 0) -> str:
    """Line number `seq` of a test log: unique, optionally padded to about `width` characters."""
    text = f"seq={seq:08d} GET /api/items/{seq % 997} status=200 bytes={seq * 7 % 100000}"
    return text.ljust(width, "x") if width else text


def append_lines(path: Path, start: int, count: int, width: int = 0) -> list[str]:
    """Append lines start..start+count-1 in one write, fsync not needed (same host); return them."""
    lines = [line_text(i, width) for i in range(start, start + count)]
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def write_config(path: Path, *, log: Path, sincedb: Path, es_url: str, index: str,
                 buffer: str, extra_output: str = "", extra_input: str = "", fingerprint_id: bool = True) -> Path:
    """A Logstash-DSL config: file input → fingerprint of the line → ES.

    With `fingerprint_id` the `_id` is the SHA1 of the line (Logstash's documented recipe):
    a line read again after a restart gets the same id, whatever time it is read at.
    Without, the output generates its own deterministic id."""
    document_id = 'document_id => "%{[@metadata][fp]}"' if fingerprint_id else ""
    path.write_text(f"""
input {{
  file {{
    path => "{log}"
    start_position => "beginning"
    sincedb_path => "{sincedb}"
    stat_interval => 0.05
    {extra_input}
  }}
}}
filter {{
  fingerprint {{ source => "message" target => "[@metadata][fp]" method => "SHA1" }}
}}
output {{
  elasticsearch {{
    id => "es"
    hosts => ["{es_url}"]
    index => "{index}"
    {document_id}
    request_timeout => 5
    buffer => {buffer}
    flush_interval => 0.1
    retry_wait => 0.05
    retry_max_interval => 0.3
    retry_forever => true
    {extra_output}
  }}
}}
""")
    return path

