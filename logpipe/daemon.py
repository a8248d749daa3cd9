"""The long-running `logpipe run` process: one current Pipeline, signals, reloads, HTTP API.

Signals (ARCHITECTURE.md, "The process"):

- TERM / INT: stop the inputs, drain, flush within the shutdown timeout; exit 0.
- HUP: reload. The new config is read and built (plugins instantiated, settings checked)
  while the old pipeline keeps running; a mistake is logged with its file:line:col and
  the old pipeline stays. Only then is the old pipeline stopped (drained: its inputs save
  the positions their acknowledged events reached, file buffers keep their chunks) and
  the new one started. The new one resumes from those positions and replays those chunks
  (output ids are stable across an unchanged output), so a reload loses nothing. Should
  the new pipeline fail to start (say, a port still taken), the previous config is
  started again.
- USR1: flush every buffer now.

Readiness is false from a reload's start until the new pipeline runs, so a load balancer
or a Kubernetes readiness probe does not count on the shipper while it swaps pipelines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from logpipe import __version__
from logpipe.buffer.file import default_buffer_dir
from logpipe.config.loader import load_config_paths, load_config_string
from logpipe.config.model import PipelineConfig
from logpipe.errors import LogpipeError
from logpipe.http_api import DEFAULT_HOST, DEFAULT_PORTS, HttpApi
from logpipe.lifecycle import DaemonState, PipelineState
from logpipe.metrics import counter
from logpipe.pipeline import Pipeline
from logpipe.workers.settings import daemon_workers

log = logging.getLogger("logpipe.daemon")

EXIT_OK, EXIT_ERROR = 0, 1

_NOT_READY = {DaemonState.STARTING: "starting", DaemonState.RELOADING: "reloading the configuration",
              DaemonState.STOPPING: "stopping", DaemonState.STOPPED: "stopped"}


@dataclass(frozen=True)
class ConfigSource:
    """Where the config comes from, read again on every reload: files, directories and
    globs (`-f`, expanded anew so a file added to a config directory is picked up), or
    inline text (`-e`; a reload then restarts the pipeline on the same text)."""

    paths: tuple[str, ...] = ()
    text: str | None = None
    name: str = "<command line>"

    def load(self) -> PipelineConfig:
        if self.text is not None:
            return load_config_string(self.text, self.name)
        return load_config_paths(list(self.paths))

    def describe(self) -> list[str]:
        return [self.name] if self.text is not None else list(self.paths)


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one reload, as /stats shows it."""

    ok: bool
    finished_at: float
    duration_seconds: float
    error: str | None = None
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["finished_at"] = _iso(self.finished_at)
        return doc


class Daemon:
    """Owns the current Pipeline and everything around it; `run` until stopped.

    `build` turns a config model into a Pipeline (default: `Pipeline(model, state_dir=…,
    shutdown_timeout=…)`); embedding programs and tests pass their own to add plugin
    instances. The HTTP API listens on the first free port of `http_ports` (`[0]`: any
    free port; None: no HTTP API).
    """

    def __init__(
        self,
        source: ConfigSource,
        *,
        state_dir: str | None = None,
        shutdown_timeout: float = 30.0,
        http_host: str = DEFAULT_HOST,
        http_ports: Sequence[int] | None = DEFAULT_PORTS,
        build: Callable[[PipelineConfig], Pipeline] | None = None,
        workers: int | None = None,
    ) -> None:
        self.source = source
        # `workers`: the command line's; None lets each config (re)loaded decide (logpipe/workers/settings.py).
        self._build = build or (lambda model: Pipeline(model, state_dir=state_dir, shutdown_timeout=shutdown_timeout,
                                                        workers=daemon_workers(workers, model)))
        self._http_host = http_host
        self._http_ports = http_ports
        self.http: HttpApi | None = None
        self.pipeline: Pipeline | None = None
        self._model: PipelineConfig | None = None
        self.state = DaemonState.STARTING
        self._started_at = time.time()
        self._started_mono = time.monotonic()
        self._stop: asyncio.Event | None = None
        self._reload_requested: asyncio.Event | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.last_reload: ReloadResult | None = None
        self._reloads = {ok: counter("logpipe_reloads_total", "configuration reloads (SIGHUP) by result",
                                     result="success" if ok else "failure") for ok in (True, False)}

    # ---- control (signal handlers, tests) ----------------------------------------------

    def request_stop(self) -> None:
        if self._stop is None:
            return
        if self._stop.is_set():
            log.info("already stopping (shutdown timeout bounds the drain)")
        self._stop.set()

    def request_reload(self) -> None:
        """Reloads run one at a time; HUPs that arrive during one coalesce into one more."""
        if self._reload_requested is not None:
            self._reload_requested.set()

    def request_flush(self) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.state is not PipelineState.RUNNING:
            log.info("SIGUSR1 ignored: no pipeline is running (starting, reloading or stopping)")
            return
        log.info("flushing every buffer (SIGUSR1)")
        task = asyncio.get_running_loop().create_task(self._flush(pipeline), name="logpipe-flush")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    @staticmethod
    async def _flush(pipeline: Pipeline) -> None:
        try:
            await pipeline.flush()
        except Exception:
            log.exception("flush failed")

    # ---- the main loop ------------------------------------------------------------

    async def run(self, initial: Pipeline | None = None) -> int:
        """Serve until TERM/INT, or until every input has finished (a finite pipeline).
        Returns the exit status: 0, or 1 when an input failed or the pipeline could not
        start. `initial` is a pipeline already built from `source` (the CLI builds it to
        report config errors before anything starts)."""
        self._stop = asyncio.Event()
        self._reload_requested = asyncio.Event()
        if initial is not None:
            self._model, pipeline = initial.config, initial
        else:
            self._model = self.source.load()
            pipeline = self._build(self._model)
        if self._http_ports is not None:
            self.http = HttpApi(self)
            host, port = await self.http.start(self._http_host, self._http_ports)
            moved = len(self._http_ports) > 1 and port != self._http_ports[0]
            log.log(logging.WARNING if moved else logging.INFO,
                    "HTTP API listening on http://%s:%d (/healthz /readyz /metrics /stats)%s", host, port,
                    f"; port {self._http_ports[0]} was taken" if moved else "")
        installed = self._install_signals()
        try:
            if not await self._start(pipeline, "the pipeline"):
                return EXIT_ERROR
            return await self._serve()
        finally:
            self.state = DaemonState.STOPPED
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            for task in list(self._flushes):
                task.cancel()
            if self.http is not None:
                await self.http.close()

    async def _serve(self) -> int:
        assert self._stop is not None and self._reload_requested is not None
        while True:
            pipeline = self.pipeline
            assert pipeline is not None
            inputs = asyncio.ensure_future(pipeline.wait_inputs())
            stop = asyncio.ensure_future(self._stop.wait())
            reload = asyncio.ensure_future(self._reload_requested.wait())
            await asyncio.wait([inputs, stop, reload], return_when=asyncio.FIRST_COMPLETED)
            inputs_finished = inputs.done()
            for waiter in (inputs, stop, reload):
                waiter.cancel()
            if self._stop.is_set() or inputs_finished:
                break
            self._reload_requested.clear()
            if not await self.reload():
                return EXIT_ERROR
        finished = pipeline.failed is None and inputs_finished
        self.state = DaemonState.STOPPING
        log.info("stopping: draining the pipeline" if not finished else "every input finished; flushing")
        # A finite pipeline that has read everything writes every buffer out (file buffers
        # included); a stopped daemon leaves file-buffered chunks for the next start.
        await pipeline.stop(flush=finished)
        if pipeline.failed is not None:
            return EXIT_ERROR
        if finished and (lost := pipeline.lost_events()):
            log.error("every input finished, but %d event(s) were not delivered (dead-lettered, dropped "
                      "or left in a memory buffer); see logpipe_output_events_* in the stats", lost)
            return EXIT_ERROR
        return EXIT_OK

    async def _start(self, pipeline: Pipeline, what: str) -> bool:
        try:
            await pipeline.start()
        except Exception as exc:
            user_error = isinstance(exc, (OSError, LogpipeError))
            log.error("%s failed to start: %s", what, exc, exc_info=not user_error)
            await _discard(pipeline)
            return False
        self.pipeline = pipeline
        self.state = DaemonState.RUNNING
        _warn_orphaned_buffers(pipeline)
        return True

    async def reload(self) -> bool:
        """Swap in a pipeline built from the config as it is now; see the module docstring.
        Returns False only when neither the new nor the previous config could be started."""
        self.state = DaemonState.RELOADING
        began = time.monotonic()
        try:
            log.info("reloading the configuration from %s", ", ".join(self.source.describe()))
            try:
                model = self.source.load()
                candidate = self._build(model)
            except LogpipeError as exc:
                self._record(False, began, str(exc))
                log.error("reload failed; the running pipeline is kept:\n%s", exc)
                return True
            except Exception as exc:
                self._record(False, began, f"{type(exc).__name__}: {exc}")
                log.exception("reload failed; the running pipeline is kept")
                return True
            old = self.pipeline
            assert old is not None
            try:
                await old.stop()
            except Exception:
                log.exception("stopping the previous pipeline failed; starting the new one anyway")
            # Late acknowledgements schedule their position saves with call_soon: let them
            # land before the new inputs read the positions.
            await asyncio.sleep(0)
            if await self._start(candidate, "the reloaded pipeline"):
                self._model = model
                self._record(True, began, None, model.sources)
                log.info("reload done in %.2fs", time.monotonic() - began)
                return True
            self._record(False, began, "the new pipeline failed to start; the previous config runs again")
            log.error("going back to the previous configuration")
            assert self._model is not None
            return await self._start(self._build(self._model), "the previous pipeline")
        finally:
            if self.state is DaemonState.RELOADING:
                # The new config did not build (the old pipeline runs on), or neither config started.
                kept = self.pipeline is not None and self.pipeline.state is PipelineState.RUNNING
                self.state = DaemonState.RUNNING if kept else DaemonState.STOPPING

    def _record(self, ok: bool, began: float, error: str | None, files: Iterable[str] = ()) -> None:
        self.last_reload = ReloadResult(ok, time.time(), round(time.monotonic() - began, 6), error, list(files))
        self._reloads[ok].inc()

    def _install_signals(self) -> list[signal.Signals]:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop,
                    signal.SIGHUP: self.request_reload, signal.SIGUSR1: self.request_flush}
        installed = []
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
            except (ValueError, RuntimeError, NotImplementedError):
                # Not the main thread (an embedding program), or no signals on this platform.
                continue
            installed.append(sig)
        return installed

    # ---- what the HTTP API reads -----------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): ready only while the daemon runs a pipeline none of whose inputs failed."""
        state = self.state
        if state is DaemonState.RUNNING:
            pipeline = self.pipeline
            assert pipeline is not None
            if pipeline.failed is not None:
                return False, f"an input failed: {pipeline.failed}"
            return True, "ready"
        return False, _NOT_READY[state]

    def stats(self) -> dict[str, Any]:
        ready, status = self.readiness()
        pipeline = self.pipeline
        reloads = {"succeeded": int(self._reloads[True].value), "failed": int(self._reloads[False].value),
                   "last": self.last_reload.as_dict() if self.last_reload is not None else None}
        doc: dict[str, Any] = {
            "version": __version__,
            "pid": os.getpid(),
            "started_at": _iso(self._started_at),
            "uptime_seconds": round(time.monotonic() - self._started_mono, 3),
            "state": self.state.value,
            "ready": ready,
            "status": status,
            "config": {"sources": self.source.describe(),
                       "files": list(self._model.sources) if self._model is not None else []},
            "reloads": reloads,
            "pipeline": None,
        }
        if pipeline is not None:
            doc["pipeline"] = {
                **pipeline.stats(),
                "state_dir": pipeline.state_dir,
                "inputs": [{"id": p.id, "plugin": p.name} for p in pipeline.built.inputs],
                "failed": None if pipeline.failed is None else str(pipeline.failed),
            }
        return doc

    def labelled_gauges(self) -> Iterable[tuple[str, str, dict[str, str], float]]:
        """Gauges of what exists now, read at scrape time so that series of files that are gone
        disappear with them (no growing label set on a node where pods come and go)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        for output_id, out in pipeline.stats().get("outputs", {}).items():
            age = float(out["oldest_undelivered_seconds"])
            yield ("logpipe_output_oldest_undelivered_seconds", "age of the oldest event an output has not "
                   "delivered yet (0: nothing waiting)", {"output": output_id}, age)
        for inp in pipeline.built.inputs:
            for f in inp.stats().get("files", []):
                if f.get("lag_bytes") is not None:
                    yield ("logpipe_input_tail_lag_bytes", "bytes of a tailed file on disk not yet acknowledged",
                           {"input": inp.id, "file": str(f["path"])}, float(f["lag_bytes"]))

    def gauges(self) -> Iterable[tuple[str, str, float]]:
        last = self.last_reload
        yield "logpipe_ready", "1 when the pipeline runs and no input failed (as /readyz)", float(self.readiness()[0])
        yield "logpipe_uptime_seconds", "seconds since the daemon started", time.monotonic() - self._started_mono
        yield ("logpipe_config_last_reload_successful", "0 when the last reload failed (the previous config runs)",
               float(last is None or last.ok))


async def _discard(pipeline: Pipeline) -> None:
    """Release what a pipeline that failed to start had opened, as far as it got."""
    try:
        await pipeline.stop(timeout=1.0)
    except Exception:
        log.debug("cleaning up a pipeline that failed to start", exc_info=True)


def _warn_orphaned_buffers(pipeline: Pipeline) -> None:
    """File-buffer directories under the state dir that no output of this config claims.

    An output without an explicit `id` that shares its plugin name with another plugin
    gets an id derived from its settings; change a setting and, after the reload or
    restart, its chunks sit in a directory nobody replays. Say so rather than leave
    acknowledged events on disk in silence."""
    root = os.path.join(pipeline.state_dir, "buffer")
    claimed = {os.path.basename(default_buffer_dir(pipeline.state_dir, out.id)) for out in pipeline.built.outputs}
    try:
        entries = [e for e in os.scandir(root) if e.is_dir() and e.name not in claimed]
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            chunks = sum(1 for name in os.listdir(entry.path) if name.endswith(".chunk"))
            if chunks:
                log.warning("file buffer %s holds %d chunk(s) that no output of this config replays (was an "
                            "output's id changed?); give outputs an explicit `id` so their buffers survive "
                            "config changes", entry.path, chunks)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

