"""The embedding API: Event field access, plugins registered in code, emit_many, the threaded
pipeline, the logging handler, and the plugin-author drivers of logpipe.testing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import logpipe
from logpipe import CallbackOutput, Event, Pipeline, PipelineHandler, ThreadedPipeline
from logpipe.plugin import Filter, Input, InputContext, Setting, WriteResult
from logpipe.testing import FilterDriver, InputDriver, OutputDriver, ScriptedOutput


def test_event_field_access_by_reference() -> None:
    ev = Event(tag="web", record={"message": "x", "http": {"status": 503}})
    assert ev.get("[http][status]") == 503
    assert ev.get("[http][missing]", "dflt") == "dflt"
    ev.set("[client][geo][city]", "Oslo")
    assert ev.record["client"] == {"geo": {"city": "Oslo"}}
    ev.set("[@metadata][index]", "logs")
    assert ev.meta == {"index": "logs"} and "@metadata" not in ev.to_dict()
    assert ev.to_dict(with_metadata=True)["@metadata"] == {"index": "logs"}
    assert ev.remove("[http][status]") == 503 and not ev.has("[http][status]")
    assert ev.remove("[nope]") is None
    ev.tags.append("a")
    ev.add_tag("b")
    ev.add_tag("a")
    assert ev.record["tags"] == ["a", "b"]
    ev.set("@timestamp", "2024-01-02T03:04:05.123Z")
    assert ev.to_dict()["@timestamp"] == "2024-01-02T03:04:05.123Z"


class StatusClass(Filter):
    """The README's example plugin: 503 → "5xx"."""

    settings = [Setting("field", "string", default="status", doc="the status field")]

    def filter(self, events: list[Event]) -> list[Event]:
        for ev in events:
            status = ev.get(f"[{self.params['field']}]")
            if isinstance(status, int):
                ev.set("[status_class]", f"{status // 100}xx")
                self.matched(ev)
        return events


async def test_a_plugin_registered_in_code_is_usable_by_name(state_dir: str) -> None:
    logpipe.register(name="status_class")(StatusClass)
    seen = CallbackOutput()
    config = 'filter { status_class { add_tag => ["classified"] } }'
    async with Pipeline.from_string(config, outputs=[seen], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit_many("web", [{"status": 503}, {"status": 200}, {"status": "?"}])
        await pipeline.delivered(ack)
    assert [ev.record for ev in seen.events] == [
        {"status": 503, "status_class": "5xx", "tags": ["classified"]},
        {"status": 200, "status_class": "2xx", "tags": ["classified"]},
        {"status": "?"},
    ]


def test_register_refuses_what_is_no_plugin() -> None:
    with pytest.raises(TypeError, match="not a logpipe plugin"):
        logpipe.register(dict)  # type: ignore[arg-type]

    class Nameless(Filter):
        pass

    with pytest.raises(TypeError, match="has no `name`"):
        logpipe.register(Nameless)


def test_threaded_pipeline_for_programs_without_asyncio(state_dir: str) -> None:
    seen = CallbackOutput()
    with ThreadedPipeline.from_string('filter { mutate { add_field => { "via" => "thread" } } }',
                                      outputs=[seen], state_dir=state_dir) as pipeline:
        ack = pipeline.emit("app", {"message": "one"})
        pipeline.delivered(ack, timeout=10)
        pipeline.delivered(pipeline.emit_many("app", [{"message": "two"}, {"message": "three"}]), timeout=10)
    assert [(ev.record["message"], ev.record["via"]) for ev in seen.events] == [
        ("one", "thread"), ("two", "thread"), ("three", "thread")]


def test_threaded_pipeline_raises_config_errors_in_the_caller(state_dir: str) -> None:
    from logpipe.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown filter plugin"), \
            ThreadedPipeline.from_string("filter { nope {} }", state_dir=state_dir):
        pass


def test_logging_handler_feeds_the_pipeline_and_skips_its_own_logs(state_dir: str) -> None:
    seen = CallbackOutput()
    logger = logging.getLogger("myapp.tests")
    logger.setLevel(logging.INFO)
    with ThreadedPipeline.from_string("", outputs=[seen], state_dir=state_dir) as pipeline:
        handler = PipelineHandler(pipeline, tag="app.log")
        logger.addHandler(handler)
        logging.getLogger("logpipe.test").addHandler(handler)
        try:
            logger.info("user %s logged in", "ann")
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
            logging.getLogger("logpipe.test").warning("our own: must not loop back")
        finally:
            logger.removeHandler(handler)
            logging.getLogger("logpipe.test").removeHandler(handler)
        pipeline.flush()
    assert [ev.record["message"] for ev in seen.events] == ["user ann logged in", "failed"]
    first, second = seen.events
    assert first.tag == "app.log" and first.record["log"]["level"] == "info"
    assert first.record["log"]["logger"] == "myapp.tests"
    assert second.record["error"]["type"] == "ValueError" and "boom" in second.record["error"]["stack_trace"]


async def test_logging_handler_is_bounded_when_the_pipeline_does_not_take(state_dir: str) -> None:
    """Records logged while the loop is busy (here: this very coroutine holds it) pile up
    only to max_pending; the rest are counted, and logging never blocks."""
    seen = CallbackOutput()
    pipeline = Pipeline(outputs=[seen], state_dir=state_dir)
    async with pipeline:
        handler = PipelineHandler(pipeline, loop=asyncio.get_running_loop(), max_pending=3)
        for i in range(10):
            handler.emit(logging.LogRecord("app", logging.INFO, __file__, 1, f"m{i}", None, None))
        assert handler.dropped == 7
        while len(seen.events) < 3:
            await asyncio.sleep(0.01)
        await pipeline.flush()
    assert [ev.record["message"] for ev in seen.events] == ["m0", "m1", "m2"]


async def test_filter_driver() -> None:
    async with FilterDriver(StatusClass(add_tag=["ok"])) as driver:
        out = driver.run([{"status": 404}, {"other": 1}])
    assert out[0].get("[status_class]") == "4xx" and out[0].tags == ["ok"]
    assert "tags" not in out[1].record


class Counting(Input):
    name = "counting"
    settings = [Setting("count", "int", default=3)]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.committed: list[int] = []

    async def run(self, ctx: InputContext) -> None:
        for i in range(self.params["count"]):
            await ctx.emit([Event(self.event_tag, None, {"n": i})], lambda i=i: self.committed.append(i))
        await asyncio.Event().wait()  # an endless input: runs until cancelled


async def test_input_driver_with_manual_acks() -> None:
    plugin = Counting(count=3)
    async with InputDriver(plugin, auto_ack=False) as driver:
        events = await driver.wait_for(3)
        assert [ev.record["n"] for ev in events] == [0, 1, 2]
        assert plugin.committed == []  # nothing committed before the acks
        driver.batches[1].ack()
        assert plugin.committed == [1]
    with pytest.raises(TimeoutError):
        async with InputDriver(Counting(count=1)) as driver:
            await driver.wait_for(2, timeout=0.2)


async def test_output_driver_and_scripted_failures() -> None:
    out = ScriptedOutput(script=["retry", "timeout", None, "permanent",
                                 WriteResult(failed=[(0, "mapping error")])])
    async with OutputDriver(out) as driver:
        first = await driver.write([{"n": 1}, {"n": 2}])
        assert (first.delivered, first.retries, first.dead_lettered) == (2, 2, 0)
        second = await driver.write([{"n": 3}])
        assert (second.delivered, second.dead_lettered) == (0, 1)
        third = await driver.write([{"n": 4}, {"n": 5}])
        assert (third.delivered, third.dead_lettered) == (1, 1)
    assert [ev.record["n"] for ev in out.events] == [1, 2, 5]
    assert out.calls == 5


async def test_await_ack_reports_what_became_of_the_batch(state_dir: str) -> None:
    """One output delivers everything; a second refuses one item for good: the report says
    so per output, with the failed item and its reason."""
    good = ScriptedOutput(id="good")
    picky = ScriptedOutput(id="picky", script=[WriteResult(failed=[(1, "mapping error")])])
    async with Pipeline(outputs=[good, picky], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit_many("app", [{"n": 0}, {"n": 1}, {"n": 2}])
        report = await ack
        assert report is not None
        assert (report.outputs["good"].delivered, report.outputs["good"].dead_lettered) == (3, 0)
        assert (report.outputs["picky"].delivered, report.outputs["picky"].dead_lettered) == (2, 1)
        assert report.delivered == 5 and report.dead_lettered == 1 and report.failed == 1 and not report.ok
        [(output, item, reason)] = report.failures
        assert output == "picky" and reason == "mapping error" and item.record["n"] == 1
        clean = await (await pipeline.emit("app", {"n": 3}))
        assert clean is not None and clean.ok and clean.delivered == 2


async def test_reports_follow_retries_and_give_ups(state_dir: str) -> None:
    flaky = ScriptedOutput(id="flaky", script=["retry", WriteResult(retry=[0], failed=[(1, "bad")]), None],
                           retry_wait=0.01, flush_interval=0)
    async with Pipeline(outputs=[flaky], state_dir=state_dir) as pipeline:
        report = await (await pipeline.emit_many("app", [{"n": 0}, {"n": 1}, {"n": 2}]))
    assert report is not None
    assert (report.outputs["flaky"].delivered, report.outputs["flaky"].dead_lettered) == (2, 1)
    assert [item.record["n"] for _, item, _ in report.failures] == [1]


async def test_batches_of_inputs_carry_no_report(state_dir: str) -> None:
    from tests.support.pipeline import CollectOutput, ScriptedInput

    sink = CollectOutput()
    source = ScriptedInput(batches=[[{"a": 1}]])
    seen: list[Any] = []
    pipeline = Pipeline(inputs=[source], outputs=[sink], state_dir=state_dir)
    original = pipeline.emit_events

    async def spy(events: list[Event], on_ack: Any = None, report: bool = True) -> Any:
        ack = await original(events, on_ack, report)
        seen.append(ack.report)
        return ack

    pipeline.emit_events = spy  # type: ignore[method-assign]
    assert await pipeline.run() == 0
    assert seen == [None] and source.acked == [0]


async def test_pipelines_built_in_code_with_conditions(state_dir: str) -> None:
    from logpipe import If
    from logpipe_plugins.filters.mutate import MutateFilter

    seen, errors = CallbackOutput(), CallbackOutput(id="errors")
    pipeline = Pipeline(
        filters=[If("[status] >= 500", [MutateFilter(add_tag=["error"])],
                    elif_=[("[status] >= 400", [MutateFilter(add_tag=["client_error"])])],
                    else_=[MutateFilter(add_tag=["ok"])])],
        outputs=[seen, If('"error" in [tags]', [errors])], state_dir=state_dir)
    async with pipeline:
        await pipeline.delivered(await pipeline.emit_many("web", [{"status": s} for s in (200, 404, 503, 201)]))
    assert [(e.record["status"], e.record["tags"]) for e in seen.events] == [
        (200, ["ok"]), (404, ["client_error"]), (503, ["error"]), (201, ["ok"])]  # order kept across branches
    assert [e.record["status"] for e in errors.events] == [503]


def test_a_bad_condition_in_code_is_a_positioned_config_error() -> None:
    from logpipe import If
    from logpipe.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        If("[status] >= ", [])
    assert "<If '[status] >= '>:1:" in str(err.value)
