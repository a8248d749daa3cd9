"""The worker pool of the main process: dispatch, restart, re-dispatch (ARCHITECTURE.md,
"Parallel pipeline").

    submit(events, ack) ─▶ pending ─▶ the least busy live worker (at most `depth` batches each)
                                                  │ frames (logpipe/workers/transport.py)
    apply(job, result) ◀── resequencer ◀── result ┘

A batch is a Job from `submit` until its result is applied (in submission order); the
number of Jobs is bounded, so a slow output still slows the inputs. A worker that dies (its
socket reaches EOF) is replaced; the batches it held go back to the front of `pending`, in
order, and are sent to the next free worker — their acks are still open, so nothing is lost
and, since no result of theirs was applied, nothing is applied twice. The oldest of them is
the one it was working on: it is charged with the crash, and after `max_crashes` it is
handed to `poisoned` (dead-lettered by the pipeline) instead of killing workers forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from logpipe.ack import Ack
from logpipe.event import Event
from logpipe.metrics import counter
from logpipe.workers.process import FAILED, READY, command
from logpipe.workers.resequencer import Resequencer
from logpipe.workers.transport import FrameStream, socket_pair
from logpipe.workers.wire import Result, decode_result, encode_batch

log = logging.getLogger("logpipe.workers")

#: Batches a worker holds at once: one it works on, one waiting, so it never idles between two.
DEPTH = 2
#: Crashes a batch may cause before it is dead-lettered instead of sent again.
MAX_CRASHES = 3
START_TIMEOUT = 60.0


class WorkerStartError(RuntimeError):
    """A worker process could not build the stage (the message says why)."""


@dataclass(eq=False, slots=True)
class Job:
    seq: int
    payload: bytes
    ack: Ack
    size: int
    crashes: int = 0


@dataclass(eq=False)
class Worker:
    number: int
    process: subprocess.Popen[bytes]
    stream: FrameStream
    outstanding: deque[Job] = field(default_factory=deque)
    reader: asyncio.Task[None] | None = None


_POISONED = Result(-1, error="poisoned")

Apply = Callable[[Job, Result], Awaitable[None]]
Poisoned = Callable[[Job], Awaitable[None]]


class WorkerPool:
    def __init__(self, spec: bytes, processes: int, apply: Apply, poisoned: Poisoned, *,
                 depth: int = DEPTH, max_crashes: int = MAX_CRASHES) -> None:
        self._spec = spec
        self.processes = processes
        self._apply = apply
        self._poisoned = poisoned
        self._depth = depth
        self._max_crashes = max_crashes
        self._limit = processes * depth * 2
        self._workers: list[Worker] = []
        self._pending: deque[Job] = deque()
        self._jobs: dict[int, Job] = {}
        self._results: Resequencer[Result] = Resequencer()
        self._next_seq = 0
        self._to_send = asyncio.Event()
        self._room = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.restarts = 0
        self.poisoned_batches = 0
        self._m_restarts = counter("logpipe_worker_restarts_total", "worker processes that died and were replaced")
        self._m_poisoned = counter("logpipe_worker_poisoned_batches_total",
                                   "batches dead-lettered because they killed worker processes repeatedly")

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        # Started side by side: each one imports logpipe and builds its stage (a few hundred ms).
        spawned = await asyncio.gather(*(self._spawn(n) for n in range(self.processes)), return_exceptions=True)
        self._workers = [w for w in spawned if isinstance(w, Worker)]
        failed = [e for e in spawned if isinstance(e, BaseException)]
        if failed:
            await self.close(1.0)
            raise failed[0]
        self._tasks = [asyncio.create_task(self._dispatch(), name="workers:dispatch"),
                       asyncio.create_task(self._applier(), name="workers:apply")]

    async def _spawn(self, number: int) -> Worker:
        parent, child = socket_pair()
        try:
            process = subprocess.Popen(command(child.fileno(), number), pass_fds=[child.fileno()],
                                       stdin=subprocess.DEVNULL)
        finally:
            child.close()
        stream = await FrameStream.open(parent)
        stream.send_nowait(pickle.dumps((sys.path, self._spec), 5))
        try:
            hello = await asyncio.wait_for(stream.recv(), START_TIMEOUT)
        except (EOFError, TimeoutError) as exc:
            stream.close()
            _end(process, 0.0)
            raise WorkerStartError(f"worker {number} did not start ({exc or 'no answer'}); its log says why") \
                from None
        if hello != READY:
            stream.close()
            _end(process, 1.0)
            raise WorkerStartError(f"worker {number} could not build the pipeline: "
                                   f"{hello.removeprefix(FAILED).decode(errors='replace')}")
        worker = Worker(number, process, stream)
        worker.reader = asyncio.create_task(self._read(worker), name=f"workers:read:{number}")
        return worker

    async def drain(self) -> None:
        """Return when every submitted batch has been applied."""
        while self._jobs:
            self._room.clear()
            await self._room.wait()

    async def close(self, timeout: float) -> None:
        """Close every worker's socket (they finish and exit), then wait for them until
        `timeout`; what is still alive then is killed. Unapplied batches stay unacknowledged."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stream.close()
        deadline = time.monotonic() + max(timeout, 0.0)
        for worker in workers:
            await asyncio.to_thread(_end, worker.process, max(0.0, deadline - time.monotonic()))
            if worker.reader is not None:
                worker.reader.cancel()
        if self._jobs:
            log.warning("workers stopped with %d batch(es) not done; they stay unacknowledged", len(self._jobs))

    # ---- batches ---------------------------------------------------------------

    async def submit(self, events: list[Event], ack: Ack) -> None:
        """Hand a batch to the workers; waits while too many are in flight (backpressure)."""
        while len(self._jobs) >= self._limit:
            self._room.clear()
            await self._room.wait()
        seq = self._next_seq
        self._next_seq += 1
        job = Job(seq, encode_batch(seq, events), ack, len(events))
        self._jobs[seq] = job
        self._pending.append(job)
        self._to_send.set()

    async def _dispatch(self) -> None:
        while True:
            worker = self._free_worker()
            if worker is None or not self._pending:
                self._to_send.clear()
                await self._to_send.wait()
                continue
            job = self._pending.popleft()
            worker.outstanding.append(job)
            # No drain: the worker reads only between batches, and the bound on jobs bounds
            # what waits in the socket's write buffer.
            worker.stream.send_nowait(job.payload)

    def _free_worker(self) -> Worker | None:
        best: Worker | None = None
        for worker in self._workers:
            if len(worker.outstanding) < self._depth and (best is None or
                                                          len(worker.outstanding) < len(best.outstanding)):
                best = worker
        return best

    async def _read(self, worker: Worker) -> None:
        while True:
            try:
                data = await worker.stream.recv()
            except EOFError:
                break
            result = decode_result(data)
            job = worker.outstanding.popleft()
            if job.seq != result.seq:
                log.error("worker %d answered batch %d for %d; restarting it", worker.number, result.seq, job.seq)
                worker.outstanding.appendleft(job)
                _end(worker.process, 0.0)
                break
            self._results.put(job.seq, result)
            self._to_send.set()
        if not self._closing:
            await self._lost(worker)

    async def _lost(self, worker: Worker) -> None:
        with contextlib.suppress(ValueError):
            self._workers.remove(worker)
        worker.stream.close()
        await asyncio.to_thread(_end, worker.process, 1.0)
        held = list(worker.outstanding)
        self.restarts += 1
        self._m_restarts.inc()
        log.error("worker %d (pid %s) died (%s) holding %d batch(es); they are sent again, and the worker restarted",
                  worker.number, worker.process.pid, _exit_reason(worker.process.returncode), len(held))
        if held:
            suspect = held[0]
            suspect.crashes += 1
            if suspect.crashes >= self._max_crashes:
                held.pop(0)
                self.poisoned_batches += 1
                self._m_poisoned.inc()
                log.error("a batch of %d event(s) killed %d workers; it is dead-lettered instead of sent again",
                          suspect.size, suspect.crashes)
                self._results.put(suspect.seq, _POISONED)
            self._pending.extendleft(reversed(held))
        while not self._closing:
            try:
                replacement = await self._spawn(worker.number)
            except WorkerStartError as exc:
                log.error("%s; trying again in 1s", exc)
                await asyncio.sleep(1.0)
                continue
            if self._closing:  # the pool closed while it started: it must not outlive the pool
                replacement.stream.close()
                await asyncio.to_thread(_end, replacement.process, 5.0)
                break
            self._workers.append(replacement)
            break
        self._to_send.set()

    async def _applier(self) -> None:
        while True:
            seq, result = await self._results.next()
            job = self._jobs[seq]
            try:
                if result is _POISONED:
                    await self._poisoned(job)
                else:
                    await self._apply(job, result)
            finally:
                del self._jobs[seq]
                self._room.set()

    # ---- what /stats shows -------------------------------------------------------

    def stats(self) -> dict[str, object]:
        return {"processes": self.processes, "pids": [w.process.pid for w in self._workers],
                "in_flight_batches": len(self._jobs), "results_reordered": self._results.early,
                "restarts": self.restarts,
                "poisoned_batches": self.poisoned_batches}


def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a worker to exit; kill it when it has not by `timeout`."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"
