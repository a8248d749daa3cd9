"""The pipeline runtime: inputs → bounded queue → filter worker → output runners.

One event loop. Inputs run as tasks and hand batches to a bounded queue, so a
slow output slows the inputs instead of growing memory. A single worker runs the
compiled filter chain on each batch (CPU work, per batch) and routes the result
to the output runners (logpipe.buffer), which buffer, write, retry and
dead-letter. Each batch carries an Ack (logpipe.ack) that completes when every
output it was routed to has delivered or durably stored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from logpipe.ack import Ack
from logpipe.buffer import BufferOverflowError, OutputRunner
from logpipe.buffer.deadletter import DeadLetter
from logpipe.build import Built, assign_unique_ids, compile_filters, compile_outputs, instantiate
from logpipe.config.loader import load_config_paths, load_config_string
from logpipe.config.model import IfNode, PipelineConfig, PluginNode
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.lifecycle import PipelineState
from logpipe.metrics import counter
from logpipe.plugin import AckCallback, Filter, Input, InputContext, Output, Plugin
from logpipe.reemit import reset_current_ack, set_current_ack
from logpipe.report import DeliveryReport
from logpipe.workers.dispatcher import Job, WorkerPool
from logpipe.workers.settings import single_process_reason
from logpipe.workers.spec import worker_spec
from logpipe.workers.wire import Result, decode_batch, events_of

log = logging.getLogger("logpipe.pipeline")

DEFAULT_QUEUE_BATCHES = 16


def default_state_dir() -> str:
    """Where inputs keep positions and file buffers live unless told otherwise."""
    explicit = os.environ.get("LOGPIPE_STATE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "logpipe")


class Pipeline:
    """A runnable pipeline. Build it from config text, files, a config model, or
    plugin instances; run it with `async with` (embedding) or `run()` (daemon).

        async with Pipeline.from_string(cfg, outputs=[collector]) as p:
            await p.emit("app", {"message": "hi"})
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        inputs: Iterable[Input] = (),
        filters: Iterable[Filter | IfNode] = (),
        outputs: Iterable[Output | IfNode] = (),
        state_dir: str | None = None,
        queue_batches: int = DEFAULT_QUEUE_BATCHES,
        shutdown_timeout: float = 30.0,
        workers: int | None = None,
    ) -> None:
        config = config or PipelineConfig()
        self.config = config
        self.state_dir = state_dir or default_state_dir()
        self.shutdown_timeout = shutdown_timeout
        self.built = Built([], [], [])
        input_nodes: list[PluginNode | Plugin] = [*config.inputs, *inputs]
        self.built.inputs = [_as_input(instantiate(node)) for node in input_nodes]
        self._filter = compile_filters([*config.filters, *filters], self.built)
        self._route = compile_outputs([*config.outputs, *outputs], self.built)
        assign_unique_ids(self.plugins)
        self.workers = self._resolve_workers(workers if workers is not None else config.workers,
                                             [*config.filters, *filters], [*config.outputs, *outputs])
        self._pool: WorkerPool | None = None
        self._queue_batches = queue_batches
        self._queue: asyncio.Queue[tuple[list[Event], Ack] | None] | None = None
        self._runners: dict[str, OutputRunner] = {}  # by output id, as routes name them
        self._input_tasks: list[asyncio.Task[None]] = []
        self._worker: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.state = PipelineState.CREATED
        self._inputs_done: asyncio.Event | None = None
        self.failed: BaseException | None = None
        # Process-wide for /metrics (monotonic across reloads); per pipeline for stats().
        self._events_in = counter("logpipe_events_in_total", "events emitted by inputs")
        self._events_filtered = counter("logpipe_events_filtered_total", "events leaving the filter stage")
        self.events_in = 0
        self.events_filtered = 0
        self.events_poisoned = 0  # dead-lettered because they killed worker processes

    # ---- construction -----------------------------------------------------------

    @classmethod
    def from_string(cls, text: str, name: str = "<config string>", **kwargs: Any) -> Pipeline:
        return cls(load_config_string(text, name), **kwargs)

    @classmethod
    def from_paths(cls, paths: list[str], **kwargs: Any) -> Pipeline:
        return cls(load_config_paths(paths), **kwargs)

    def _resolve_workers(self, asked: int | None, filters: list[Any], outputs: list[Any]) -> int:
        """How many worker processes (logpipe/workers/settings.py); builds their spec when more than one."""
        if asked is None or asked <= 1:
            return 1
        reason = single_process_reason(self.built.filters, self.built.outputs)
        if reason is not None:
            log.warning("pipeline workers: %d asked, running in one process: %s", asked, reason)
            return 1
        self._worker_spec = worker_spec(filters, outputs)
        return asked

    @property
    def plugins(self) -> list[Plugin]:
        return [*self.built.inputs, *self.built.filters, *self.built.outputs]

    # ---- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Open outputs, then filters, then start inputs (so nothing arrives before
        there is somewhere to put it). If any of them fails to start (a port in use,
        a locked buffer), what was already started is closed again before the error
        propagates."""
        if self.state is not PipelineState.CREATED:
            return
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        self.state = PipelineState.STARTING
        self._queue = asyncio.Queue(self._queue_batches)
        self._inputs_done = asyncio.Event()
        self._worker = asyncio.create_task(self._work(), name="logpipe-worker")
        started: list[Plugin] = []
        try:
            for output in self.built.outputs:
                runner = OutputRunner(output, state_dir=self.state_dir)
                await runner.start()
                self._runners[output.id] = runner
            if self.workers > 1:
                # The workers run the filters; the main process's instances stay unstarted.
                self._pool = WorkerPool(self._worker_spec, self.workers, self._apply, self._poisoned)
                await self._pool.start()
            else:
                for filter_plugin in self.built.filters:
                    filter_plugin.reinject = self._reinject
                    await filter_plugin.lifecycle_start()
                    started.append(filter_plugin)
            for input_plugin in self.built.inputs:
                await input_plugin.lifecycle_start()
                started.append(input_plugin)
        except BaseException:
            if self._pool is not None:
                await self._pool.close(1.0)
            for runner in self._runners.values():
                await runner.stop(0)
            for plugin in reversed(started):
                await _quietly(plugin.lifecycle_close(), plugin)
            self._worker.cancel()
            self.state = PipelineState.FAILED
            raise
        for plugin in self.built.inputs:
            ctx = InputContext(self._emitter_for(plugin), self.state_dir, plugin.id)
            task = asyncio.create_task(self._run_input(plugin, ctx), name=f"input:{plugin.id}")
            self._input_tasks.append(task)
        self.state = PipelineState.RUNNING
        if not self._input_tasks:
            self._inputs_done.set()
        else:
            # Referenced: the loop keeps only weak references to tasks.
            self._watcher = asyncio.create_task(self._watch_inputs(), name="logpipe-inputs")

    async def _watch_inputs(self) -> None:
        await asyncio.gather(*self._input_tasks, return_exceptions=True)
        assert self._inputs_done is not None
        self._inputs_done.set()

    async def _run_input(self, plugin: Input, ctx: InputContext) -> None:
        try:
            await plugin.run(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("input %s failed; the pipeline goes on without it, not ready, and exits 1 when "
                          "stopped", plugin.id)
            self.failed = exc
            raise

    async def wait_inputs(self) -> None:
        """Return when every input has finished (finite inputs) or failed."""
        assert self._inputs_done is not None
        await self._inputs_done.wait()

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Run until every input has finished, or until `stop` is set; then drain.
        Returns the process exit status (0, or 1 when an input failed)."""
        await self.start()
        assert self._inputs_done is not None
        waiters = [asyncio.ensure_future(self._inputs_done.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in waiters:
            task.cancel()
        finished = self._inputs_done.is_set() and self.failed is None
        await self.stop(flush=finished)
        return 1 if self.failed is not None else 0

    async def stop(self, timeout: float | None = None, flush: bool = False) -> None:
        """Stop inputs, drain the queue through the filters, and close the outputs
        within the shutdown timeout. Each buffer then follows its `flush_at_shutdown`;
        `flush=True` (a finite pipeline that has read everything) writes out every
        buffer first, file buffers included, so a batch job leaves nothing behind."""
        if self.state not in (PipelineState.STARTING, PipelineState.RUNNING):
            return
        self.state = PipelineState.STOPPING
        timeout = self.shutdown_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for task in self._input_tasks:
            task.cancel()
        await asyncio.gather(*self._input_tasks, return_exceptions=True)
        assert self._queue is not None and self._worker is not None
        for filter_plugin in self.built.filters:  # what filters hold (concat groups) goes out now
            try:
                await asyncio.wait_for(filter_plugin.drain(), max(0.0, deadline - loop.time()))
            except Exception:
                log.exception("draining filter %s failed; what it held stays unacknowledged", filter_plugin.id)
        self.state = PipelineState.DRAINING
        try:
            # The end marker is queued within the deadline too: with a blocked output the
            # queue stays full and an unbounded put() would outlast the shutdown timeout.
            await asyncio.wait_for(self._drain(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            log.error("filter stage did not drain within %.1fs; %d batch(es) left unacknowledged",
                      timeout, self._queue.qsize())
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._pool is not None:
            # Drained above (or out of time): the workers finish and exit before the outputs close.
            await self._pool.close(max(0.0, deadline - loop.time()))
        if flush:
            try:
                await asyncio.wait_for(self.flush(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                log.error("outputs did not flush within the shutdown timeout")
        for runner in self._runners.values():
            await runner.stop(max(0.0, deadline - loop.time()))
        # Inputs close last: the outputs' final deliveries complete acks, and an input
        # saves the positions those acks committed when it closes.
        for plugin in self.built.inputs:
            await _quietly(plugin.lifecycle_close(), plugin)
        if self._pool is None:
            for filter_plugin in self.built.filters:
                await _quietly(filter_plugin.lifecycle_close(), filter_plugin)
        self.state = PipelineState.STOPPED

    async def _drain(self) -> None:
        assert self._queue is not None and self._worker is not None
        await self._queue.put(None)
        await asyncio.shield(self._worker)

    async def flush(self) -> None:
        """Write out everything buffered now (SIGUSR1)."""
        for runner in self._runners.values():
            await runner.flush()

    async def __aenter__(self) -> Pipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- events -----------------------------------------------------------------

    async def emit(self, tag: str, record: dict[str, Any], time: int | None = None) -> Ack:
        """Push one event in from Python (embedding). Returns its Ack: `await
        pipeline.delivered(ack)` waits until the outputs have it."""
        return await self.emit_events([Event(tag, time, record)])

    async def emit_many(self, tag: str, records: Iterable[dict[str, Any]], time: int | None = None) -> Ack:
        """Push many records as one batch (one Ack for all): the cheap way in from Python."""
        return await self.emit_events([Event(tag, time, record) for record in records])

    async def emit_events(self, events: list[Event], on_ack: AckCallback | None = None,
                          report: bool = True) -> Ack:
        """Push a batch in from Python; waits while the pipeline is full. `report = await ack`
        says what became of it (logpipe.report.DeliveryReport); inputs' batches carry none."""
        if not self.state.takes_events:
            # Nothing would ever take the batch: its ack would stay open for good.
            raise RuntimeError(f"emit on a {self.state.value} pipeline")
        if self.state is PipelineState.CREATED:
            await self.start()
        assert self._queue is not None
        ack = Ack(on_ack, DeliveryReport() if report else None)
        self._events_in.inc(len(events))
        self.events_in += len(events)
        await self._queue.put((events, ack))
        return ack

    async def _reinject(self, events: list[Event], on_ack: AckCallback | None = None) -> None:
        """A filter's own batch (a timeout flush) into the top of the filter stage."""
        if not self.state.takes_events or self._queue is None:
            raise RuntimeError(f"reinject on a {self.state.value} pipeline")
        await self._queue.put((events, Ack(on_ack)))

    def filter_batch(self, events: list[Event]) -> list[Event]:
        """Run a batch through the filter section only, in this process (no input, no output):
        what `logpipe test` and plugin tests need."""
        return self._filter(events)

    def route_batch(self, events: list[Event]) -> list[tuple[Output, list[Event]]]:
        """Which output gets which events of a filtered batch, without writing anything."""
        outputs = {output.id: output for output in self.built.outputs}
        return [(outputs[output_id], part) for output_id, part in self._route(events)]

    @staticmethod
    async def delivered(ack: Ack) -> None:
        """Wait for an Ack to complete (all outputs delivered or stored the batch)."""
        done = asyncio.Event()
        ack.on_done(done.set)
        await done.wait()

    def _emitter_for(self, plugin: Input) -> Callable[[list[Event], AckCallback | None], Any]:
        decorate = _input_decorator(plugin)
        emit = self.emit_events

        async def emit_batch(events: list[Event], on_ack: AckCallback | None = None) -> None:
            if not events:
                if on_ack is not None:
                    on_ack()
                return
            if decorate is not None:
                for ev in events:
                    decorate(ev)
            await emit(events, on_ack, report=False)

        return emit_batch

    async def _work(self) -> None:
        if self._pool is not None:
            await self._work_parallel(self._pool)
            return
        assert self._queue is not None
        queue = self._queue
        route = self._route
        run_filters = self._filter
        runners = self._runners
        while True:
            item = await queue.get()
            if item is None:
                return
            events, ack = item
            ack_token = set_current_ack(ack)  # filters that hold events keep this batch's ack open
            # The pipeline's own hold on the ack is released only when every output got
            # its part. On a refusal, an error or a cancellation (shutdown timeout) it is
            # kept for good, so the input never commits these events: tail re-reads them
            # after a restart, forward and beats clients resend.
            try:
                events = run_filters(events)
                self._events_filtered.inc(len(events))
                self.events_filtered += len(events)
                for output_id, part in route(events):
                    try:
                        await runners[output_id].put(part, ack)
                    except BufferOverflowError:
                        # Refused, counted and logged by the runner; the other outputs still get theirs.
                        ack.hold()
            except Exception:
                log.exception("routing failed for a batch of %d events; it stays unacknowledged", len(events))
                self.failed = self.failed or RuntimeError("routing failed")
                continue
            finally:
                reset_current_ack(ack_token)
            ack.release()

    async def _work_parallel(self, pool: WorkerPool) -> None:
        """The filter stage in worker processes: batches go out in queue order, and their
        results are applied (`_apply`) in that order too; returns once all are applied."""
        assert self._queue is not None
        queue = self._queue
        while True:
            item = await queue.get()
            if item is None:
                await pool.drain()
                return
            await pool.submit(*item)

    async def _apply(self, job: Job, result: Result) -> None:
        """A worker's result into the buffers; then the pipeline's own hold on the ack ends
        (kept for good when the worker's filter stage raised, as in `_work`)."""
        ack = job.ack
        if result.error is not None:
            log.error("routing failed in a worker for a batch of %d events; it stays unacknowledged:\n%s",
                      job.size, result.error)
            self.failed = self.failed or RuntimeError("routing failed")
            return
        self._events_filtered.inc(result.filtered)
        self.events_filtered += result.filtered
        for part in result.parts:
            runner = self._runners[part.output_id]
            try:
                if part.events is not None:
                    await runner.put(events_of(part.events), ack)
                    continue
                for key, cols, reasons in part.unformatted:
                    await runner.unformattable(key, list(zip(events_of(cols), reasons)), ack)
                await runner.put_formatted(part.groups, ack)
            except BufferOverflowError:
                ack.hold()
        ack.release()

    async def _poisoned(self, job: Job) -> None:
        """A batch that kept killing workers: dead-lettered (the pipeline's own file under the
        state dir), counted, and acknowledged — it will not be read again to kill them again."""
        events = decode_batch(job.payload)[1]
        self.events_poisoned += len(events)
        dead = DeadLetter("pipeline-workers", os.path.join(self.state_dir, "dead_letters", "workers.jsonl"),
                          None, log)
        where = await dead.send([(ev, "killed worker processes repeatedly") for ev in events])
        log.error("dead-lettered %d event(s) that killed workers (%s)", len(events), where)
        if job.ack.report is not None:
            for ev in events:
                job.ack.report.add_failure("pipeline-workers", ev, "killed worker processes repeatedly")
        job.ack.release()

    def lost_events(self) -> int:
        """Events the outputs did not deliver: dead-lettered, dropped by an overflow policy,
        or still in a memory buffer (gone with the process). A finite run that ends with
        any exits non-zero, so a batch job's caller knows."""
        lost = self.events_poisoned
        for runner in self._runners.values():
            stats = runner.stats()
            lost += stats["dead_lettered"] + stats["dropped"]
            if stats["buffer"] == "memory":
                lost += stats["buffered_events"]
        return lost

    def stats(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "events_in": self.events_in,
            "events_filtered": self.events_filtered,
            "queue_batches": self._queue.qsize() if self._queue is not None else 0,
            "workers": self._pool.stats() if self._pool is not None else {"processes": 1},
            "outputs": {output_id: runner.stats() for output_id, runner in self._runners.items()},
            # Filters that keep something worth showing (grok: the last lines that did not match).
            "filters": {f.id: stats for f in self.built.filters if (stats := f.stats())},
            "input_stats": {i.id: stats for i in self.built.inputs if (stats := i.stats())},
        }


def _as_input(plugin: Plugin) -> Input:
    if not isinstance(plugin, Input):
        raise ConfigError(f"'{plugin.name}' is a {plugin.kind} plugin, not an input")
    return plugin


def _input_decorator(plugin: Input) -> Callable[[Event], None] | None:
    """The common input options (`type`, `tags`, `add_field`, `@label`), applied per
    event only when one is set."""
    type_ = getattr(plugin, "type", None)
    tags = list(getattr(plugin, "tags", None) or [])
    adds = [(compile_sprintf(str(k)), compile_sprintf(str(v)) if isinstance(v, str) else v)
            for k, v in (getattr(plugin, "add_field", None) or {}).items()]
    label = plugin.params.get("@label")
    if not (type_ or tags or adds or label):
        return None

    def decorate(ev: Event) -> None:
        record = ev.record
        if type_ and "type" not in record:
            record["type"] = type_
        if tags:
            current = record.setdefault("tags", [])
            if isinstance(current, list):
                current.extend(t for t in tags if t not in current)
        for key, value in adds:
            record.setdefault(key(ev), value(ev) if callable(value) else value)
        if label:
            ev.meta["_label"] = label

    return decorate


async def _quietly(awaitable: Any, plugin: Plugin) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await awaitable
        except Exception:
            log.exception("closing %s %s failed", plugin.kind, plugin.id)
