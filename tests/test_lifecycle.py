"""The pipeline's lifecycle states, as plugins see them at each step of a run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from logpipe.event import Event
from logpipe.lifecycle import PipelineState
from logpipe.pipeline import Pipeline
from logpipe.plugin import Input, InputContext, Output


class Watched:
    """What the pipeline's state was at each call a plugin received."""

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None
        self.seen: list[tuple[str, PipelineState]] = []

    def note(self, what: str) -> None:
        assert self.pipeline is not None
        self.seen.append((what, self.pipeline.state))


class WatchingOutput(Output):
    name = "watching_output"

    def __init__(self, watched: Watched, fail_start: bool = False, **settings: Any) -> None:
        super().__init__(flush_interval=0, **settings)
        self.watched, self.fail_start = watched, fail_start

    async def start(self) -> None:
        self.watched.note("output start")
        if self.fail_start:
            raise OSError(98, "Address already in use")

    async def write(self, events: list[Event]) -> None:
        self.watched.note("output write")

    async def close(self) -> None:
        self.watched.note("output close")


class WatchingInput(Input):
    name = "watching_input"

    def __init__(self, watched: Watched, **settings: Any) -> None:
        super().__init__(**settings)
        self.watched = watched
        self.running = asyncio.Event()

    async def run(self, ctx: InputContext) -> None:
        self.watched.note("input run")
        self.running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.watched.note("input cancelled")
            await ctx.emit([Event("t", None, {"last": True})], None)  # a last batch while stopping is taken
            raise


async def test_states_of_a_run(state_dir: str) -> None:
    watched = Watched()
    output = WatchingOutput(watched)
    source = WatchingInput(watched)
    pipeline = Pipeline(inputs=[source], outputs=[output], state_dir=state_dir)
    watched.pipeline = pipeline
    assert pipeline.state is PipelineState.CREATED
    await pipeline.start()
    await source.running.wait()
    assert pipeline.state is PipelineState.RUNNING and pipeline.stats()["state"] == "running"
    await pipeline.stop()
    assert pipeline.state is PipelineState.STOPPED
    writes = [state for what, state in watched.seen if what == "output write"]
    assert writes and set(writes) <= {PipelineState.STOPPING, PipelineState.DRAINING}  # the last batch arrived
    assert [seen for seen in watched.seen if seen[0] != "output write"] == [
        ("output start", PipelineState.STARTING),
        ("input run", PipelineState.RUNNING),
        ("input cancelled", PipelineState.STOPPING),
        ("output close", PipelineState.DRAINING),
    ]
    with pytest.raises(RuntimeError, match="emit on a stopped pipeline"):
        await pipeline.emit("t", {})


async def test_a_pipeline_that_cannot_start_is_failed(state_dir: str) -> None:
    watched = Watched()
    pipeline = Pipeline(outputs=[WatchingOutput(watched, fail_start=True)], state_dir=state_dir)
    watched.pipeline = pipeline
    with pytest.raises(OSError):
        await pipeline.start()
    assert pipeline.state is PipelineState.FAILED
    await pipeline.start()  # neither starts again nor raises
    await pipeline.stop()
    assert pipeline.state is PipelineState.FAILED
    with pytest.raises(RuntimeError, match="emit on a failed pipeline"):
        await pipeline.emit("t", {})
    assert watched.seen == [("output start", PipelineState.STARTING)]


async def test_emit_starts_a_created_pipeline(state_dir: str) -> None:
    watched = Watched()
    pipeline = Pipeline(outputs=[WatchingOutput(watched)], state_dir=state_dir)
    watched.pipeline = pipeline
    await pipeline.delivered(await pipeline.emit("t", {"n": 1}))
    assert pipeline.state is PipelineState.RUNNING
    await pipeline.stop()
    assert [what for what, _ in watched.seen] == ["output start", "output write", "output close"]
