"""A pipeline for programs that do not use asyncio: its event loop runs in a thread.

A web app on threads, a batch job, a notebook: they want `emit` to be a plain call.
`ThreadedPipeline` owns a private event loop in a daemon thread and hands every call over
to it with `run_coroutine_threadsafe`, so the pipeline itself is exactly the async one —
same buffers, acks and shutdown — and only the calling convention changes.

    with ThreadedPipeline.from_string(config, outputs=[seen]) as pipeline:
        pipeline.emit("app", {"message": "hi"})
        pipeline.flush()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from logpipe.ack import Ack
from logpipe.pipeline import Pipeline

T = TypeVar("T")


class ThreadedPipeline:
    """Sync facade over a Pipeline whose loop runs in a background thread."""

    def __init__(self, factory: Callable[[], Pipeline]) -> None:
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.pipeline: Pipeline | None = None

    @classmethod
    def from_string(cls, text: str, name: str = "<config string>", **kwargs: Any) -> ThreadedPipeline:
        return cls(lambda: Pipeline.from_string(text, name, **kwargs))

    @classmethod
    def from_pipeline(cls, build: Callable[[], Pipeline]) -> ThreadedPipeline:
        """From a function that builds the Pipeline (called in the pipeline's own thread)."""
        return cls(build)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the pipeline is not started")
        return self._loop

    def start(self) -> ThreadedPipeline:
        """Start the loop thread and the pipeline; config errors are raised here, in the caller."""
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="logpipe-pipeline", daemon=True)
        self._thread.start()

        async def build_and_start() -> Pipeline:
            pipeline = self._factory()
            await pipeline.start()
            return pipeline

        try:
            self.pipeline = self._call(build_and_start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("ThreadedPipeline methods block: call them from another thread than the pipeline's")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def emit(self, tag: str, record: dict[str, Any], time: int | None = None) -> Ack:
        """Push one event; blocks while the pipeline is full (backpressure)."""
        assert self.pipeline is not None, "start() first"
        return self._call(self.pipeline.emit(tag, record, time))

    def emit_many(self, tag: str, records: Iterable[dict[str, Any]], time: int | None = None) -> Ack:
        assert self.pipeline is not None, "start() first"
        return self._call(self.pipeline.emit_many(tag, list(records), time))

    def delivered(self, ack: Ack, timeout: float | None = None) -> None:
        """Wait until the outputs have the batch of this Ack (TimeoutError after `timeout`)."""
        self._call(Pipeline.delivered(ack), timeout)

    def flush(self) -> None:
        assert self.pipeline is not None, "start() first"
        self._call(self.pipeline.flush())

    def stop(self, timeout: float | None = None) -> None:
        """Drain and stop the pipeline, then the loop thread."""
        if self._loop is None:
            return
        try:
            if self.pipeline is not None:
                self._call(self.pipeline.stop(timeout))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()

    def __enter__(self) -> ThreadedPipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
