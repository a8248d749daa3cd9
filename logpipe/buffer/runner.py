"""OutputRunner: the buffer and retry engine between the router and one output.

    put(events, ack) ─▶ group by chunk key ─▶ output.format ─▶ staged chunk ─(full | flush_interval | flush())─▶ queue
                                                                                 │
            flush_thread_count workers ◀─────────────────────────────────────────┘
              └─ output.write(chunk) ─▶ delivered | retry items alone | failed items ─▶ dead letter
                  └─ exception ─▶ whole chunk retried with backoff ─(given up)─▶ dead letter

Acknowledgements (ARCHITECTURE.md, "Delivery"): with the memory buffer a put's ack is
held once per chunk it lands in and released when that chunk is finished — delivered,
dead-lettered or dropped; with the file buffer it is held once per put and released when
the batch is fsynced (see logpipe/buffer/file.py for the policies).

Overflow (the buffer holds `total_limit_size` bytes):
- `block` (default): put waits until workers free space — backpressure up to the inputs.
- `drop_oldest_chunk`: the oldest chunk not being written is dropped to make room; its
  events are counted (`events_dropped`) and logged, and their acks are released — the user
  chose to lose them rather than slow the inputs, so the inputs must not stall on them.
  When only chunks being written are left, put waits as with `block`.
- `throw_exception`: put raises BufferOverflowError without taking the events (no hold on
  the ack, so the batch completes when the pipeline's own hold ends); counted and logged.

Formatting (Output.format, see logpipe/plugin.py) happens in put, once: chunks hold the
formatted items, and a write, a retry or a replay after a restart sends those bytes as they
are. An event `format` cannot encode is dead-lettered alone at put time; `put_formatted`
takes items formatted elsewhere (pipeline workers). An output that wants events gets
chunks of events, as before. Exceptions from write: RetryableError, OSError and
TimeoutError (I/O, logpipe.buffer.retry.RETRIED) and the output's own `retryable_errors`
(its client library's transport errors) retry the chunk with backoff; any other exception
is a programming or data error and dead-letters the chunk at once, with the reason.

Per-event Python work in put is grouping by key (one comparison per event with the tag as
only key) plus, for the file buffer, the msgpack encoding; everything else is per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from logpipe.ack import Ack
from logpipe.buffer.deadletter import DeadLetter, Failure, build_secondary
from logpipe.buffer.keys import ChunkKey, compile_key_fn, group_events, time_slot_index
from logpipe.buffer.memory import MemoryStore
from logpipe.buffer.retry import RETRIED, RetryPolicy, RetryState
from logpipe.buffer.settings import BufferConfig, resolve_buffer_config
from logpipe.buffer.store import BufferStore, Chunk
from logpipe.errors import BufferOverflowError
from logpipe.event import Event

if TYPE_CHECKING:
    # Types only: logpipe.plugin imports this package (for BUFFER_SETTINGS).
    from logpipe.plugin import Output, WriteResult


log = logging.getLogger("logpipe.buffer")

OutputFactory = Callable[[dict[str, Any]], "Output"]


_COUNTERS = {
    "delivered": ("events_delivered", "events an output accepted"),
    "retried": ("events_retried", "events written again after a failure"),
    "retries": ("retries", "write attempts that were retries"),
    "write_errors": ("write_errors", "writes that raised (whole chunk retried)"),
    "dead_lettered": ("events_dead_lettered", "events that failed for good"),
    "dropped": ("events_dropped", "events dropped by the overflow policy"),
    "skipped_stored": ("events_skipped_stored",
                       "lines read again after a crash that the file buffer already held or delivered"),
}


class OutputRunner:
    """Buffers, flushes, retries and dead-letters for one output. See the module docstring.

    `output_factory` builds the `secondary` output from its settings dict (default: the
    `output.<@type>` entry point); `clock`, `sleep` and `rng` drive the retry schedule and
    exist so tests can check it without waiting.
    """

    def __init__(
        self, output: Output, *, state_dir: str,
        output_factory: OutputFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.output = output
        self.id = output.id
        self.config: BufferConfig = resolve_buffer_config(output.params, type(output).buffer_defaults)
        cfg = self.config
        self._store = self._make_store(cfg, state_dir, self.id)
        self._key_fn = compile_key_fn(cfg.chunk_keys, cfg.timekey, cfg.timekey_offset())
        #: lazy flush: where a chunk key holds its time slot (None: every chunk flushes by flush_interval).
        self._slot_at = time_slot_index(cfg.chunk_keys) if cfg.flush_mode == "lazy" else None
        self._policy = RetryPolicy.from_config(cfg)
        self._clock = clock
        self._rng = rng
        self._sleep = sleep or self._interruptible_sleep
        self._retried = RETRIED + type(output).retryable_errors
        secondary = build_secondary(cfg.secondary, output_factory) if cfg.secondary else None
        bind = getattr(secondary, "bind_primary", None)
        if bind is not None:
            bind(cfg)  # a secondary whose placeholders depend on this output's chunk keys
        self._dead = DeadLetter(self.id, cfg.dead_letter_path, secondary, log, describe=output.describe,
                                raw=output.chunk_bytes)
        #: Chunks hold formatted items (bytes) unless the output wants events.
        self.formats = not output.wants_events
        self._staged: dict[ChunkKey, Chunk] = {}
        self._queue: deque[Chunk] = deque()
        self._inflight: set[Chunk] = set()
        self._bytes = 0
        self._records = 0
        self._chunks = 0
        self._work = asyncio.Event()
        self._space = asyncio.Event()
        self._new_staged = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._halt = False
        #: Chunks whose last write attempt failed and that are waiting to retry.
        self._failing: set[Chunk] = set()
        self.counts = dict.fromkeys(_COUNTERS, 0)
        # Through the output's own metrics: logpipe_output_<thing>{output="<id>"} (ARCHITECTURE.md, "Metrics").
        metrics = output.metrics
        self._metrics = {k: metrics.counter(thing, doc) for k, (thing, doc) in _COUNTERS.items()}
        self._g_bytes = metrics.gauge("buffer_bytes", "bytes buffered")
        self._g_events = metrics.gauge("buffer_events", "events buffered")
        self._g_chunks = metrics.gauge("buffer_chunks", "chunks buffered")

    @staticmethod
    def _make_store(cfg: BufferConfig, state_dir: str, output_id: str) -> BufferStore:
        if cfg.type == "memory":
            return MemoryStore()
        from logpipe.buffer.file import FileStore, default_buffer_dir

        path = cfg.path or default_buffer_dir(state_dir, output_id)
        return FileStore(path, fsync=cfg.fsync, fsync_interval=cfg.fsync_interval, log=log)

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        for chunk in await self._store.open():
            self._account(chunk.bytes, chunk.records, 1)
            self._queue.append(chunk)
        if self._queue:
            log.info("output %s: replaying %d chunk(s), %d event(s) left in the buffer",
                     self.id, len(self._queue), self._records)
        started: list[Output] = []
        try:
            for plugin in (self.output, self._dead.secondary):
                if plugin is not None:
                    await plugin.lifecycle_start()
                    started.append(plugin)
        except BaseException:
            # Give back what was opened (a file buffer's lock above all), so that the
            # previous config, restarted after a failed reload, can take the directory again.
            for plugin in started:
                await self._close_plugin(plugin, 1.0)
            await self._store.close()
            raise
        self._tasks = [asyncio.create_task(self._worker(), name=f"flush:{self.id}:{i}")
                       for i in range(self.config.flush_thread_count)]
        if self.config.flush_interval > 0 or self._slot_at is not None:
            self._tasks.append(asyncio.create_task(self._flusher(), name=f"flusher:{self.id}"))
        self._work.set()

    async def flush(self) -> None:
        """Seal every staged chunk and wait until everything buffered now is finished.

        Retries waiting for their backoff are woken to try at once (as Fluentd's SIGUSR1).
        With the output down this waits for the retries; callers that must not wait
        forever wrap it in a timeout.
        """
        for chunk in list(self._staged.values()):
            self._seal(chunk)
        waiters = [c.done_future() for c in (*self._queue, *self._inflight)]
        self._wake_retries()
        if waiters:
            # asyncio.wait, not gather: a caller's timeout must not cancel the shared futures
            # other flushes may be waiting on.
            await asyncio.wait(waiters)

    async def stop(self, timeout: float) -> None:
        """Flush (if flush_at_shutdown) within `timeout`, stop the workers, close the output."""
        if self._closing:
            return
        self._closing = True
        self._space.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        try:
            if self.config.flush_at_shutdown:
                await asyncio.wait_for(self.flush(), timeout=max(timeout, 0.0))
            else:
                self._halt = True
                await self._wait_inflight(deadline)
        except TimeoutError:
            log.warning("output %s: shutdown timeout (%.1fs) reached with %d event(s) still buffered",
                        self.id, timeout, self._records)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        lost = await self._store.close()
        if lost:
            log.warning("output %s: %d event(s) were not delivered before shutdown; they were never "
                        "acknowledged, so their inputs will read them again", self.id, lost)
        remaining = max(0.0, deadline - loop.time())
        for plugin in (self.output, self._dead.secondary):
            if plugin is not None:
                await self._close_plugin(plugin, max(remaining, 1.0))

    async def _wait_inflight(self, deadline: float) -> None:
        """Let the chunks being written finish, until `deadline`. With a durable buffer a
        chunk whose write is failing (in retry backoff) is not waited for: it is on disk
        and is replayed at the next start, so SIGTERM with the output down returns at once
        instead of after the whole shutdown timeout."""
        loop = asyncio.get_running_loop()
        while True:
            pending = [c for c in self._inflight if not (self._store.durable and c in self._failing)]
            remaining = deadline - loop.time()
            if not pending or remaining <= 0:
                return
            await asyncio.wait([c.done_future() for c in pending], timeout=min(remaining, 0.05))

    @staticmethod
    async def _close_plugin(plugin: Output, timeout: float) -> None:
        try:
            await asyncio.wait_for(plugin.lifecycle_close(), timeout=timeout)
        except Exception:
            log.exception("output %s: close failed", plugin.id)

    def oldest_undelivered_seconds(self) -> float:
        """Age of the oldest chunk not yet finished (0 when the buffer is empty): how far behind
        this output is, whatever the reason (slow, failing, or a flush interval)."""
        chunks = [*self._staged.values(), *self._queue, *self._inflight]
        return round(time.monotonic() - min(c.created for c in chunks), 3) if chunks else 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "oldest_undelivered_seconds": self.oldest_undelivered_seconds(),
            "buffer": self.config.type,
            "buffered_events": self._records,
            "buffered_bytes": self._bytes,
            "chunks": self._chunks,
            "staged_chunks": len(self._staged),
            "queued_chunks": len(self._queue),
            "inflight_chunks": len(self._inflight),
            **self.counts,
            **self._store.stats(),
        }

    # ---- put -------------------------------------------------------------------

    async def put(self, events: list[Event], ack: Ack) -> None:
        """Take a routed batch: group by chunk key, format (unless the output wants
        events), buffer. `ack` is held until the buffer has delivered or stored it."""
        if not events:
            return
        if self._closing:
            raise RuntimeError(f"output {self.id}: put after stop")
        if self._store.durable:
            fresh = self._store.skip_stored(events)
            if len(fresh) < len(events):
                self._count("skipped_stored", len(events) - len(fresh))
                events = fresh
                if not events:
                    return
        groups: list[tuple[ChunkKey, list[Any]]] = group_events(events, self._key_fn)
        if self.formats:
            formatted = []
            for key, group in groups:
                items = await self._format(key, group, ack)
                if items:
                    formatted.append((key, items))
            groups = formatted
        await self.put_formatted(groups, ack, events)

    async def put_formatted(self, groups: list[tuple[ChunkKey, list[Any]]], ack: Ack,
                            events: list[Event] | None = None) -> None:
        """Buffer items already grouped by chunk key (and formatted, for an output that formats);
        `events`, when known, are what the items came from (a file buffer marks their origins)."""
        if self._closing:
            raise RuntimeError(f"output {self.id}: put after stop")
        cfg = self.config
        pieces: list[tuple[ChunkKey, list[Any], Any, int]] = []
        total = 0
        count = 0
        for key, group in groups:
            count += len(group)
            for part, payload, size in self._encode(group):
                pieces.append((key, part, payload, size))
                total += size
        if not pieces:
            return
        await self._reserve(total, count)
        for key, part, payload, size in pieces:
            while True:
                try:
                    self._append(key, part, payload, size, ack)
                    break
                except OSError as exc:
                    # Disk full, I/O error: the store rolled the append back; wait like a full
                    # buffer (backpressure) rather than acknowledge events that are not stored.
                    if self._closing:
                        raise
                    log.error("output %s: cannot store %d event(s) in the buffer (%s); retrying in %.1fs",
                              self.id, len(part), exc, cfg.retry_wait)
                    await self._sleep(cfg.retry_wait)
        if events is not None:
            self._store.note_stored(events)
        self._store.commit(ack)
        if ack.report is not None and self._store.durable:
            ack.report.add_stored(self.id, count)  # acknowledged at fsync; delivered later, maybe elsewhere
        self._account(total, count, 0)
        if cfg.flush_interval == 0 and self._slot_at is None:
            for chunk in list(self._staged.values()):
                self._seal(chunk)

    async def _format(self, key: ChunkKey, events: list[Event], ack: Ack | None = None) -> list[bytes]:
        """The output's items for a group; events it cannot format are dead-lettered alone."""
        items, failures = format_events(self.output, events)
        if failures:
            await self.unformattable(key, failures, ack)
        return items

    async def unformattable(self, key: ChunkKey, failures: list[Failure], ack: Ack | None = None) -> None:
        """Dead-letter the events `format` refused (here, or in a pipeline worker)."""
        log.warning("output %s: %d event(s) could not be formatted; dead-lettered (first: %s)",
                    self.id, len(failures), failures[0][1])
        await self._dead_letter(failures, key)
        if ack is not None and ack.report is not None:
            for ev, reason in failures:
                ack.report.add_failure(self.id, ev, reason)

    def _append(self, key: ChunkKey, part: list[Any], payload: Any, size: int, ack: Ack) -> None:
        """Append one encoded group to its staged chunk, sealing chunks that reach a limit."""
        cfg = self.config
        record_limit = cfg.chunk_limit_records or math.inf
        n = len(part)
        chunk = self._staged.get(key)
        if chunk is not None and chunk.records and (
            chunk.bytes + size > cfg.chunk_limit_size or chunk.records + n > record_limit
        ):
            self._seal(chunk)
            chunk = None
        if chunk is None:
            chunk = self._store.new_chunk(key)
            self._staged[key] = chunk
            self._chunks += 1
            self._new_staged.set()
        self._store.append(chunk, part, payload, size, ack)
        chunk.records += n
        chunk.bytes += size
        if chunk.bytes >= cfg.chunk_limit_size or chunk.records >= record_limit:
            self._seal(chunk)

    def _encode(self, events: list[Any]) -> list[tuple[list[Any], Any, int]]:
        """Encode a group, split in equal parts when it alone exceeds a chunk limit."""
        payload, size = self._store.encode(events)
        cfg = self.config
        parts = max(math.ceil(size / cfg.chunk_limit_size),
                    math.ceil(len(events) / cfg.chunk_limit_records) if cfg.chunk_limit_records else 1)
        parts = min(parts, len(events))
        if parts <= 1:
            return [(events, payload, size)]
        step = math.ceil(len(events) / parts)
        out = []
        for i in range(0, len(events), step):
            part = events[i:i + step]
            out.append((part, *self._store.encode(part)))
        return out

    async def _reserve(self, size: int, count: int) -> None:
        """Make room for `size` bytes according to overflow_action."""
        limit = self.config.total_limit_size
        if self._bytes + size <= limit or self._bytes == 0:
            return
        action = self.config.overflow_action
        if action == "throw_exception":
            self._count("dropped", count)
            log.warning("output %s: buffer full (%d bytes), %d event(s) refused (overflow_action "
                        "throw_exception)", self.id, self._bytes, count)
            raise BufferOverflowError(f"output {self.id}: buffer full ({self._bytes} of {limit} bytes)")
        if action == "drop_oldest_chunk":
            while self._bytes + size > limit:
                victim = self._oldest_droppable()
                if victim is None:
                    break
                await self._drop(victim)
        while self._bytes + size > limit and self._bytes > 0 and not self._closing:
            self._space.clear()
            await self._space.wait()

    def _oldest_droppable(self) -> Chunk | None:
        if self._queue:
            return self._queue.popleft()
        if self._staged:
            chunk = min(self._staged.values(), key=lambda c: c.created)
            del self._staged[chunk.key]
            return chunk
        return None

    async def _drop(self, chunk: Chunk) -> None:
        self._count("dropped", chunk.records)
        for ack, n in _ack_spans(chunk):
            if ack.report is not None:
                ack.report.add_dropped(self.id, n)
        log.warning("output %s: buffer full, dropped the oldest chunk (%d event(s), overflow_action "
                    "drop_oldest_chunk)", self.id, chunk.records)
        await self._finish(chunk)

    # ---- chunk movement --------------------------------------------------------

    def _seal(self, chunk: Chunk) -> None:
        if self._staged.get(chunk.key) is chunk:
            del self._staged[chunk.key]
        self._store.seal(chunk)
        self._queue.append(chunk)
        self._work.set()

    async def _finish(self, chunk: Chunk) -> None:
        await self._store.discard(chunk)
        self._account(-chunk.bytes, -chunk.records, -1)
        chunk.mark_done()
        self._space.set()

    def _account(self, nbytes: int, records: int, chunks: int) -> None:
        self._bytes += nbytes
        self._records += records
        self._chunks += chunks
        self._g_bytes.set(self._bytes)
        self._g_events.set(self._records)
        self._g_chunks.set(self._chunks)

    def _count(self, name: str, amount: int) -> None:
        self.counts[name] += amount
        self._metrics[name].inc(amount)

    # ---- flushing --------------------------------------------------------------

    def _due(self, chunk: Chunk, now: float, wall: float) -> float:
        """When (monotonic) a staged chunk is sealed: flush_interval after its first event, or
        in lazy mode (Fluentd's default for time chunks) once its slot and timekey_wait are over."""
        if self._slot_at is None:
            return chunk.created + self.config.flush_interval
        cfg = self.config
        slot_end = chunk.key[self._slot_at] / 1e9 + (cfg.timekey or 86400)
        return now + (slot_end + cfg.timekey_wait - wall)

    async def _flusher(self) -> None:
        """Seal staged chunks when they are due (see `_due`)."""
        while True:
            if not self._staged:
                self._new_staged.clear()
                await self._new_staged.wait()
                continue
            now, wall = time.monotonic(), time.time()
            dues = [(chunk, self._due(chunk, now, wall)) for chunk in self._staged.values()]
            for chunk, due in dues:
                if due <= now:
                    self._seal(chunk)
            waiting = [due for _, due in dues if due > now]
            if waiting:
                self._new_staged.clear()
                with contextlib.suppress(TimeoutError):
                    # A new chunk may be due earlier than those waiting (a lazy one of an old slot).
                    await asyncio.wait_for(self._new_staged.wait(), min(waiting) - now)

    async def _worker(self) -> None:
        while True:
            while not self._queue or self._halt:
                self._work.clear()
                await self._work.wait()
            chunk = self._queue.popleft()
            self._inflight.add(chunk)
            try:
                await self._write_chunk(chunk)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                # The store could not read the chunk, or the dead-letter file could not be written.
                log.error("output %s: flushing a chunk failed (%s); trying it again in %.1fs",
                          self.id, exc, self.config.retry_wait)
                self._inflight.discard(chunk)
                await self._sleep(self.config.retry_wait)
                self._queue.append(chunk)
                continue
            except Exception:  # noqa: BLE001 - a bug of the engine or a store: the worker must live on
                log.exception("output %s: unexpected error while flushing a chunk", self.id)
                self._inflight.discard(chunk)
                await self._abandon(chunk)
                continue
            self._inflight.discard(chunk)
            await self._finish(chunk)

    async def _abandon(self, chunk: Chunk) -> None:
        """After an engine or store bug: dead-letter the chunk's items (the same bug would meet
        them on every attempt). When even that fails, the chunk is left as it is, unfinished:
        its acknowledgements stay open (the inputs send it again after a restart) and a file
        chunk stays on disk for the next start."""
        try:
            items = await self._store.load(chunk)
            await self._dead_letter([(it, "the buffer engine failed on this chunk (see the log)")
                                     for it in items], chunk.key)
        except Exception:  # noqa: BLE001 - nothing more can be done with it in this run
            log.exception("output %s: a chunk of %d event(s) could not be dead-lettered either; it is kept "
                          "unacknowledged until the next start", self.id, chunk.records)
            return
        await self._finish(chunk)

    async def _write_chunk(self, chunk: Chunk) -> None:
        items = await self._store.load(chunk)
        key = chunk.key
        if self.formats and items and isinstance(items[0], Event):
            # A chunk buffered (file) before this output formatted: format it now, once.
            items = await self._format(key, items)
        report = _ChunkReport.of(chunk, self.id, len(items))
        state: RetryState | None = None
        while items:
            if report is not None:
                report.attempt(items)
            try:
                result = await self.output.write(items)
            except asyncio.CancelledError:
                raise
            except self._retried as exc:
                self._count("write_errors", 1)
                reason = f"{type(exc).__name__}: {exc}"
                _release_frames(exc)
                state = state or RetryState(self._policy, self._clock, self._rng)
                wait = state.next_wait()
                if wait is None:
                    why = f"gave up after {state.steps} attempt(s): {reason}"
                    await self._dead_letter([(it, why) for it in items], key)
                    if report is not None:
                        report.settle([], [(i, why) for i in range(len(items))])
                    return
                log.warning("output %s: write of %d event(s) failed (%s); retry %d in %.2fs",
                            self.id, len(items), reason, state.steps, wait)
                self._failing.add(chunk)
                try:
                    await self._retry_after(wait, len(items))
                finally:
                    self._failing.discard(chunk)
                continue
            except Exception as exc:  # noqa: BLE001 - not I/O: a programming or data error, dead-lettered
                self._count("write_errors", 1)
                _release_frames(exc)
                log.error("output %s: write of %d item(s) raised %s: %s; dead-lettered, not retried "
                          "(not an I/O error)", self.id, len(items), type(exc).__name__, exc)
                why = f"write raised {type(exc).__name__}: {exc} (not retried: not an I/O error)"
                await self._dead_letter([(it, why) for it in items], key)
                if report is not None:
                    report.settle([], [(i, why) for i in range(len(items))])
                return
            if result is None:
                self._count("delivered", len(items))
                if report is not None:
                    report.settle([], [])
                return
            retry, failed = _outcomes(result, len(items))
            if failed:
                await self._dead_letter([(items[i], reason) for i, reason in failed], key)
            self._count("delivered", len(items) - len(retry) - len(failed))
            if report is not None:
                report.settle(retry, failed)
            if not retry:
                return
            items = [items[i] for i in retry]
            state = state or RetryState(self._policy, self._clock, self._rng)
            wait = state.next_wait()
            if wait is None:
                why = f"gave up after {state.steps} attempt(s): the output kept asking for a retry"
                await self._dead_letter([(it, why) for it in items], key)
                if report is not None:
                    report.attempt(items)
                    report.settle([], [(i, why) for i in range(len(items))])
                return
            await self._retry_after(wait, len(items))

    async def _retry_after(self, wait: float, count: int) -> None:
        await self._sleep(wait)
        self._count("retries", 1)
        self._count("retried", count)

    async def _dead_letter(self, failures: list[Failure], key: ChunkKey | None = None) -> None:
        self._count("dead_lettered", len(failures))
        await self._dead.send(failures, key[0] if key else None)

    async def _interruptible_sleep(self, delay: float) -> None:
        """Backoff sleep that flush() and stop() cut short."""
        wake = self._wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)

    def _wake_retries(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()


def _ack_spans(chunk: Chunk) -> list[tuple[Ack, int]]:
    """(ack, how many of the chunk's items are its) for a memory chunk; [] for a stored one."""
    return list(zip(getattr(chunk, "acks", ()), getattr(chunk, "spans", ())))


class _ChunkReport:
    """Maps a chunk's items back to the acks (batches) they came from, for delivery reports.
    Built only when one of the chunk's acks carries a report (the Pipeline API's batches)."""

    __slots__ = ("_owner", "_acks", "_output", "_origin", "_items")

    def __init__(self, acks: list[Ack], owner: list[int], output_id: str) -> None:
        self._acks = acks
        self._owner = owner  # item index in the chunk → index into acks
        self._output = output_id
        self._origin: list[int] = list(range(len(owner)))  # items being written → chunk index
        self._items: list[Any] = []

    @classmethod
    def of(cls, chunk: Chunk, output_id: str, n: int) -> _ChunkReport | None:
        spans = _ack_spans(chunk)
        if not any(ack.report is not None for ack, _ in spans):
            return None
        owner = [i for i, (_, span) in enumerate(spans) for _ in range(span)]
        if len(owner) != n:  # the store changed the items (e.g. formatted at load): no attribution
            return None
        return cls([ack for ack, _ in spans], owner, output_id)

    def attempt(self, items: list[Any]) -> None:
        self._items = items

    def settle(self, retry: list[int], failed: list[tuple[int, str]]) -> None:
        """One write's outcome over the items being written: failed ones are reported, the rest
        but the retried ones delivered; the retried ones stay for the next write."""
        gone = {i for i, _ in failed}
        keep = set(retry)
        for i, reason in failed:
            report = self._acks[self._owner[self._origin[i]]].report
            if report is not None:
                report.add_failure(self._output, self._items[i] if i < len(self._items) else None, reason)
        delivered: dict[int, int] = {}
        for i, origin in enumerate(self._origin):
            if i not in gone and i not in keep:
                owner = self._owner[origin]
                delivered[owner] = delivered.get(owner, 0) + 1
        for owner, n in delivered.items():
            report = self._acks[owner].report
            if report is not None:
                report.add_delivered(self._output, n)
        self._origin = [self._origin[i] for i in retry]


def format_events(output: Output, events: list[Event]) -> tuple[list[bytes], list[Failure]]:
    """`output.format` over a batch: (items of the events it could format, in order;
    (event, reason) for each it could not). The whole batch is tried first; only when it
    raises (or breaks the one-item-per-event contract) are the events formatted one by one,
    so one bad event costs only itself."""
    fmt = output.format
    try:
        items = fmt(events)
        if len(items) == len(events):
            return items, []
    except Exception:  # noqa: BLE001 - find out below which event it was
        pass
    items = []
    failures: list[Failure] = []
    for ev in events:
        try:
            one = fmt([ev])
            if len(one) != 1:
                raise ValueError(f"format returned {len(one)} items for one event")
        except Exception as exc:  # noqa: BLE001 - any failure of an event's own: dead-letter it
            failures.append((ev, f"format failed: {type(exc).__name__}: {exc}"))
            continue
        items.append(one[0])
    return items, failures


def _outcomes(result: WriteResult, n: int) -> tuple[list[int], list[tuple[int, str]]]:
    """Indices in range, each reported once (failed wins over retry), in order."""
    failed = {i: str(reason) for i, reason in getattr(result, "failed", ()) if 0 <= i < n}
    retry = sorted({i for i in getattr(result, "retry", ()) if 0 <= i < n and i not in failed})
    return retry, sorted(failed.items())


def _release_frames(exc: BaseException) -> None:
    """Drop the frames a failed write's exception chain keeps alive. They hold the whole
    request (a bulk body of megabytes) in reference cycles that only the cyclic GC frees,
    which the daemon runs rarely (logpipe/process.py): during a long outage of
    connection-refused retries memory grew without bound until this was added."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__

