"""Feed a program's stdlib `logging` into a pipeline.

`logging` calls handlers synchronously in whatever thread logs, and a log call must never
block or fail the program. So `PipelineHandler.emit` only turns the LogRecord into a dict
and appends it to a bounded in-memory list with one thread-safe hand-over to the pipeline's
loop; a task there sends what has accumulated as one batch. When the program logs faster
than the pipeline takes (a stuck output), records beyond `max_pending` are dropped and
counted in `handler.dropped` — the program keeps running, as with a full syslog socket.
Records of logpipe's own loggers are skipped: they would feed themselves.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from typing import Any

from logpipe.embed_thread import ThreadedPipeline
from logpipe.event import Event
from logpipe.pipeline import Pipeline


class PipelineHandler(logging.Handler):
    """A logging.Handler whose records become events tagged `tag` (default "python.log")."""

    def __init__(self, pipeline: ThreadedPipeline | Pipeline, tag: str = "python.log", *,
                 loop: asyncio.AbstractEventLoop | None = None, max_pending: int = 10_000,
                 level: int = logging.NOTSET) -> None:
        super().__init__(level)
        if isinstance(pipeline, ThreadedPipeline):
            self._pipeline_of = lambda: pipeline.pipeline
            self._loop_of = lambda: pipeline.loop
        else:
            if loop is None:
                loop = asyncio.get_running_loop()  # an async program: the loop the pipeline runs on
            self._pipeline_of = lambda: pipeline
            self._loop_of = lambda: loop
        self.tag = tag
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "logpipe" or record.name.startswith("logpipe."):
            return
        try:
            doc = self.to_record(record)
            with self._lock:
                if len(self._pending) >= self.max_pending:
                    self.dropped += 1
                    return
                self._pending.append(Event(self.tag, int(record.created * 1e9), doc))
                schedule = not self._scheduled
                self._scheduled = True
            if schedule:
                self._loop_of().call_soon_threadsafe(self._send_soon)
        except Exception:  # noqa: BLE001 - logging's contract: a handler never raises into the program
            self.handleError(record)

    def to_record(self, record: logging.LogRecord) -> dict[str, Any]:
        """The event record of a LogRecord (ECS-like names; the event time is `record.created`);
        override to shape it differently."""
        doc: dict[str, Any] = {
            "message": record.getMessage(),
            "log": {"level": record.levelname.lower(), "logger": record.name,
                    "origin": {"file": {"name": record.pathname, "line": record.lineno},
                               "function": record.funcName}},
            "process": {"pid": record.process, "thread": {"name": record.threadName}},
        }
        if record.exc_info:
            doc["error"] = {"type": getattr(record.exc_info[0], "__name__", None),
                            "stack_trace": "".join(traceback.format_exception(*record.exc_info))}
        return doc

    def _send_soon(self) -> None:
        asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        pipeline = self._pipeline_of()
        if batch and pipeline is not None:
            try:
                await pipeline.emit_events(batch)
            except RuntimeError:  # the pipeline stopped meanwhile: nothing would take them
                self.dropped += len(batch)
