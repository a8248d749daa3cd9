"""The runtime: ack completion, fan-out, drops, backpressure, drain, embedding."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe.plugin import Filter
from tests.support.pipeline import CollectOutput, ScriptedInput


class DropOdd(Filter):
    name = "drop_odd"

    def filter(self, events: list[Event]) -> list[Event]:
        return [ev for ev in events if ev.record["n"] % 2 == 0]


class Boom(Filter):
    name = "boom"

    def filter(self, events: list[Event]) -> list[Event]:
        raise RuntimeError("bug in a filter")


async def test_finite_input_runs_to_completion_and_acks_every_batch(state_dir: str) -> None:
    source = ScriptedInput(batches=[[{"n": 1}, {"n": 2}], [{"n": 3}]])
    sink = CollectOutput()
    pipeline = Pipeline(inputs=[source], outputs=[sink], state_dir=state_dir)
    assert await pipeline.run() == 0
    assert [ev.record["n"] for ev in sink.events] == [1, 2, 3]
    assert sorted(source.acked) == [0, 1]


async def test_ack_waits_for_the_output(state_dir: str) -> None:
    sink = CollectOutput()
    sink.gate.clear()
    async with Pipeline(outputs=[sink], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit("t", {"message": "x"})
        await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not ack.done, "acknowledged before the output wrote the event"
        sink.gate.set()
        await asyncio.wait_for(pipeline.delivered(ack), 5)
        assert [ev.record for ev in sink.events] == [{"message": "x"}]


async def test_dropped_events_complete_at_once(state_dir: str) -> None:
    sink = CollectOutput()
    sink.gate.clear()
    async with Pipeline(filters=[DropOdd()], outputs=[sink], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit_events([Event("t", None, {"n": 1}), Event("t", None, {"n": 3})])
        await asyncio.wait_for(pipeline.delivered(ack), 5)
        assert sink.events == []
        sink.gate.set()


async def test_fan_out_completes_only_when_every_output_has_it(state_dir: str) -> None:
    fast, slow = CollectOutput(id="fast"), CollectOutput(id="slow")
    slow.gate.clear()
    async with Pipeline(outputs=[fast, slow], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit("t", {"message": "both"})
        await fast.wait_for(1)
        assert not ack.done
        slow.gate.set()
        await asyncio.wait_for(pipeline.delivered(ack), 5)
        assert len(slow.events) == 1


async def test_config_routing_with_conditionals_and_match(state_dir: str) -> None:
    cfg = """
    filter { if [level] == "debug" { drop {} } }
    output {
      if [level] == "error" { collect { id => "errors" } }
      collect { id => "web" match => "web.**" }
    }
    """
    from logpipe import registry

    registry.register(CollectOutput)
    pipeline = Pipeline.from_string(cfg, state_dir=state_dir)
    errors, web = pipeline.built.outputs
    async with pipeline:
        await pipeline.emit("web.access", {"level": "error"})
        await pipeline.emit("web.access", {"level": "debug"})
        await pipeline.emit("app", {"level": "error"})
        await pipeline.emit("web", {"level": "info"})
        await errors.wait_for(2)
        await web.wait_for(2)
    assert [ev.tag for ev in errors.events] == ["web.access", "app"]
    assert [ev.record["level"] for ev in web.events] == ["error", "info"]


async def test_a_failing_filter_loses_nothing(state_dir: str) -> None:
    sink = CollectOutput()
    async with Pipeline(filters=[Boom()], outputs=[sink], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit("t", {"message": "survivor"})
        await asyncio.wait_for(pipeline.delivered(ack), 5)
    assert sink.events[0].record["tags"] == ["_filter_error"]


async def test_blocked_output_stops_the_generator_with_bounded_memory(state_dir: str) -> None:
    from logpipe import registry

    sink = CollectOutput(total_limit_size="256k", chunk_limit_size="64k")
    sink.gate.clear()
    generator = registry.create("input", "generator", count=0, batch_size=500)
    pipeline = Pipeline(inputs=[generator], outputs=[sink], state_dir=state_dir,  # type: ignore[list-item]
                        queue_batches=4)
    tracemalloc.start()
    try:
        async with pipeline:
            for _ in range(300):
                await asyncio.sleep(0)
            first = pipeline.stats()["events_in"]
            _, peak_before = tracemalloc.get_traced_memory()
            for _ in range(300):
                await asyncio.sleep(0)
            second = pipeline.stats()["events_in"]
            _, peak_after = tracemalloc.get_traced_memory()
            assert second == first, "the generator kept producing while the output was blocked"
            assert first < 50_000
            assert peak_after - peak_before < 1_000_000
            sink.gate.set()
            await sink.wait_for(second)
    finally:
        tracemalloc.stop()


async def test_stop_drains_queued_batches(state_dir: str) -> None:
    sink = CollectOutput()
    pipeline = Pipeline(outputs=[sink], state_dir=state_dir)
    await pipeline.start()
    for n in range(50):
        await pipeline.emit("t", {"n": n})
    await pipeline.stop(timeout=10)
    assert [ev.record["n"] for ev in sink.events] == list(range(50))


@pytest.mark.parametrize("bad", ["input { generator { count => 'x' } }", "output { nope {} }"])
def test_bad_plugin_settings_are_positioned_config_errors(bad: str, state_dir: str) -> None:
    from logpipe.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Pipeline.from_string(bad, state_dir=state_dir)
    assert info.value.pos is not None and info.value.pos.line == 1


async def test_finite_pipeline_flushes_a_file_buffer_completely(tmp_path, state_dir: str) -> None:
    out = tmp_path / "out.log"
    cfg = f"""
    input {{ generator {{ count => 20000 batch_size => 700 }} }}
    output {{ file {{ path => "{out}" buffer => file flush_interval => 60 id => "f" }} }}
    """
    assert await Pipeline.from_string(cfg, state_dir=state_dir).run() == 0
    assert len(out.read_text().splitlines()) == 20000
    leftovers = [p for p in (tmp_path / "state").rglob("*") if p.is_file() and "lock" not in p.name]
    assert leftovers == [], leftovers


def test_duplicate_default_ids_become_unique_and_stable(state_dir: str) -> None:
    cfg = "output { null { } null { flush_interval => 2 } }"
    first = [o.id for o in Pipeline.from_string(cfg, state_dir=state_dir).built.outputs]
    again = [o.id for o in Pipeline.from_string(cfg, state_dir=state_dir).built.outputs]
    assert len(set(first)) == 2 and first == again


class RefusesToStart(CollectOutput):
    name = "refuses"

    async def start(self) -> None:
        raise OSError("address already in use")


async def test_a_failed_start_closes_what_had_started(state_dir: str) -> None:
    first = CollectOutput(id="first", buffer="file")
    pipeline = Pipeline(outputs=[first, RefusesToStart()], state_dir=state_dir)
    with pytest.raises(OSError):
        await pipeline.start()
    await pipeline.stop()
    again = Pipeline(outputs=[CollectOutput(id="first", buffer="file")], state_dir=state_dir)
    async with again:  # the file buffer's directory lock was released
        await again.delivered(await again.emit("t", {"n": 1}))


async def test_an_output_that_fails_to_start_gives_its_own_file_buffer_back(state_dir: str) -> None:
    with pytest.raises(OSError):
        await Pipeline(outputs=[RefusesToStart(id="x", buffer="file")], state_dir=state_dir).start()
    again = Pipeline(outputs=[CollectOutput(id="x", buffer="file")], state_dir=state_dir)
    async with again:  # the directory lock of the output that failed was released
        await again.delivered(await again.emit("t", {"n": 1}))


async def test_a_routing_error_leaves_the_batch_unacknowledged(state_dir: str) -> None:
    first, second = CollectOutput(id="first"), CollectOutput(id="second")
    async with Pipeline(outputs=[first, second], state_dir=state_dir) as pipeline:
        async def broken_put(events: list[Event], ack: object) -> None:
            raise RuntimeError("bug in a buffer")

        pipeline._runners["second"].put = broken_put  # type: ignore[method-assign]
        ack = await pipeline.emit("t", {"n": 1})
        await first.wait_for(1)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not ack.done, "acknowledged although the second output never got the event"
        assert pipeline.failed is not None


async def test_stop_keeps_its_timeout_with_a_stuck_output(state_dir: str) -> None:
    """A full queue and a blocked buffer: stop still returns within the shutdown timeout, and
    the batch cut off half-routed stays unacknowledged although the other output delivered it."""
    fast = CollectOutput(id="fast")
    stuck = CollectOutput(id="stuck", total_limit_size="1k", chunk_limit_size="1k")
    stuck.gate.clear()
    pipeline = Pipeline(outputs=[fast, stuck], state_dir=state_dir, queue_batches=1)
    await pipeline.start()
    acks = []

    async def feed() -> None:
        for n in range(10):
            acks.append(await pipeline.emit_events([Event("t", None, {"n": n, "pad": "x" * 600})]))

    feeder = asyncio.create_task(feed())
    await fast.wait_for(2)  # batch 1 is in flight to `stuck`, batch 2 waits for room there
    while len(acks) < 3:
        await asyncio.sleep(0.01)
    feeder.cancel()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(pipeline.stop(timeout=0.5), 10)
    assert loop.time() - began < 5
    assert [ev.record["n"] for ev in fast.events] == [0, 1]
    assert not acks[1].done, "acknowledged although `stuck` never took the event"
    assert not any(ack.done for ack in acks)


async def test_emit_after_stop_is_refused(state_dir: str) -> None:
    pipeline = Pipeline(outputs=[CollectOutput()], state_dir=state_dir)
    await pipeline.start()
    await pipeline.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        await pipeline.emit("t", {"n": 1})
