"""Pipelines with real worker processes (logpipe/workers; ARCHITECTURE.md, "Parallel pipeline"):
order through conditionals and re-sequencing, a worker killed mid-batch, a batch that keeps
killing workers, the outputs that want events, and the cases that stay in one process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import orjson
import pytest

import logpipe
from logpipe.ack import Ack
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe.plugin import Filter
from tests.support.pipeline import CollectOutput
from tests.workers.plugins import BlockOnceFilter, CrashFilter, PidFilter, read_pid

logpipe.register(BlockOnceFilter)
logpipe.register(CrashFilter)
logpipe.register(PidFilter)

ORDER = """
filter {
  if [k] == "three" { mutate { add_tag => ["three"] } }
  else if [k] == "seven" { drop {} }
  pid_of {}
}
"""


def _kind(n: int) -> str:
    return "three" if n % 3 == 0 else "seven" if n % 7 == 0 else ""


def _numbers(events: list[Event]) -> list[int]:
    return [ev.record["n"] for ev in events]


async def _wait_file(path: Path, what: str, timeout: float = 30.0) -> int:
    """Another process writes `path`: poll for it with a deadline (nothing to await across processes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (pid := read_pid(path)) is None:
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return pid


async def test_order_kept_through_conditionals_with_two_workers(state_dir: str, tmp_path: Path) -> None:
    """Big and tiny batches alternate, so workers finish them out of order: the re-sequencer
    must have put results back (`results_reordered` > 0) and both outputs see input order."""
    collect = CollectOutput()
    out_file = tmp_path / "out.jsonl"
    pipeline = Pipeline.from_string(ORDER + f'output {{ file {{ path => "{out_file}" codec => json_lines }} }}',
                                    outputs=[collect], state_dir=state_dir, workers=2)
    assert pipeline.workers == 2
    expected: list[int] = []
    acks: list[Ack] = []
    n = 0
    async with pipeline:
        for batch in range(40):
            size = 2000 if batch % 2 == 0 else 1
            acks.append(await pipeline.emit_events([Event("t", 0, {"n": n + i, "k": _kind(n + i)})
                                                    for i in range(size)]))
            expected.extend(i for i in range(n, n + size) if i % 3 == 0 or i % 7 != 0)
            n += size
        await asyncio.gather(*acks)
        stats = pipeline.stats()["workers"]
    assert _numbers(collect.events) == expected
    lines = [orjson.loads(line) for line in out_file.read_bytes().splitlines()]
    assert [doc["n"] for doc in lines] == expected
    assert all(("three" in doc.get("tags", [])) == (doc["n"] % 3 == 0) for doc in lines)
    pids = {ev.record["pid"] for ev in collect.events}
    assert os.getpid() not in pids and pids <= set(stats["pids"]) and len(pids) == 2
    assert stats["results_reordered"] > 0 and stats["restarts"] == 0


async def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(state_dir: str,
                                                                             tmp_path: Path) -> None:
    flag = tmp_path / "blocked.pid"
    collect = CollectOutput()
    pipeline = Pipeline.from_string(f'filter {{ block_once {{ flag => "{flag}" }} pid_of {{}} }}',
                                    outputs=[collect], state_dir=state_dir, workers=2)
    async with pipeline:
        acks = [await pipeline.emit_events([Event("t", 0, {"n": b * 100 + i, "block": b == 5 and i == 50})
                                            for i in range(100)]) for b in range(20)]
        victim = await _wait_file(flag, "a worker to block in the marked batch")
        assert victim in pipeline.stats()["workers"]["pids"]
        os.kill(victim, signal.SIGKILL)
        await asyncio.wait_for(asyncio.gather(*acks), 30)
        # The replacement may still be starting when the others have finished the re-sent batches.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(pipeline.stats()["workers"]["pids"]) < 2:
            assert loop.time() < deadline, "the killed worker was not replaced"
            await asyncio.sleep(0.02)
        stats = pipeline.stats()["workers"]
    assert _numbers(collect.events) == list(range(2000))
    assert victim not in {ev.record["pid"] for ev in collect.events[500:600]}  # the marked batch: done elsewhere
    assert stats["restarts"] == 1 and stats["poisoned_batches"] == 0
    assert victim not in stats["pids"] and len(stats["pids"]) == 2


async def test_batch_that_kills_workers_is_dead_lettered_after_three_crashes(state_dir: str,
                                                                              tmp_path: Path) -> None:
    count = tmp_path / "crashes"
    collect = CollectOutput()
    pipeline = Pipeline.from_string(f'filter {{ crash_on {{ count => "{count}" }} }}',
                                    outputs=[collect], state_dir=state_dir, workers=2)
    async with pipeline:
        acks = [await pipeline.emit_events([Event("t", 0, {"n": b * 10 + i, "crash": b == 3}) for i in range(10)])
                for b in range(8)]
        reports = await asyncio.wait_for(asyncio.gather(*acks), 60)
        stats = pipeline.stats()["workers"]
    assert _numbers(collect.events) == [n for n in range(80) if not 30 <= n < 40]
    assert count.read_bytes() == b"xxx"
    assert stats["restarts"] == 3 and stats["poisoned_batches"] == 1
    dead = [json.loads(line) for line in (Path(state_dir) / "dead_letters" / "workers.jsonl").read_text().splitlines()]
    assert [d["event"]["record"]["n"] for d in dead] == list(range(30, 40))
    assert {d["reason"] for d in dead} == {"killed worker processes repeatedly"}
    poisoned = reports[3]
    assert poisoned is not None and poisoned.failed == 10 and not poisoned.ok
    assert pipeline.lost_events() == 10


async def test_stateful_filter_keeps_the_pipeline_in_one_process(state_dir: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    pipeline = Pipeline.from_string('filter { throttle { key => "%{host}" after_count => 1 period => 60 '
                                    'add_tag => ["throttled"] } }', outputs=[CollectOutput()],
                                    state_dir=state_dir, workers=2)
    assert pipeline.workers == 1
    assert "throttle" in caplog.text and "one process" in caplog.text


async def test_plugin_built_in_code_travels_as_its_settings(state_dir: str) -> None:
    """A filter object given in code is rebuilt in each worker from the settings it was built with."""
    mutate = logpipe.registry.create("filter", "mutate", add_field={"where": "code"})
    assert isinstance(mutate, Filter)
    collect = CollectOutput()
    pipeline = Pipeline(filters=[mutate, PidFilter()], outputs=[collect], state_dir=state_dir, workers=2)
    async with pipeline:
        await (await pipeline.emit_many("t", [{"n": i} for i in range(5)]))
    assert [ev.record["where"] for ev in collect.events] == ["code"] * 5
    assert os.getpid() not in {ev.record["pid"] for ev in collect.events}


def test_plugin_whose_settings_cannot_travel_is_a_config_error(state_dir: str) -> None:
    odd = PidFilter(note=lambda: None)
    with pytest.raises(ConfigError, match="cannot be sent to a worker process"):
        Pipeline(filters=[odd], outputs=[CollectOutput()], state_dir=state_dir, workers=2)


def _unimportable_filter(name: str) -> type[Filter]:
    """A filter class defined in an exec'd module no worker can import (as a script or the
    docs' guide test defines theirs)."""
    namespace: dict[str, object] = {"__name__": "not_importable_here", "Filter": Filter}
    exec(f"class Local(Filter):\n    name = {name!r}\n    def filter(self, events):\n        return events\n",
         namespace)
    cls = namespace["Local"]
    assert isinstance(cls, type) and issubclass(cls, Filter)
    return cls


async def test_an_unimportable_registration_stops_only_the_pipeline_that_uses_it(state_dir: str) -> None:
    """Another part of the program registered a class no worker can load: a pipeline that does
    not use it runs with workers (before: every worker pipeline of the process refused to start);
    one that names it is a ConfigError at its place."""
    logpipe.register(_unimportable_filter("local_only"))
    collect = CollectOutput()
    async with Pipeline.from_string(ORDER, outputs=[collect], state_dir=state_dir, workers=2) as pipeline:
        await (await pipeline.emit_many("t", [{"n": 1, "k": ""}]))
    assert [ev.record["n"] for ev in collect.events] == [1]
    with pytest.raises(ConfigError, match="'local_only' is registered in-process") as err:
        Pipeline.from_string("filter {\n  local_only {}\n}\n", outputs=[CollectOutput()], state_dir=state_dir,
                             workers=2)
    assert err.value.pos is not None and err.value.pos.line == 2


async def test_one_worker_is_the_single_process_pipeline(state_dir: str) -> None:
    collect = CollectOutput()
    pipeline = Pipeline.from_string(ORDER, outputs=[collect], state_dir=state_dir)
    assert pipeline.workers == 1
    async with pipeline:
        await (await pipeline.emit_many("t", [{"n": i, "k": ""} for i in range(3)]))
    assert {ev.record["pid"] for ev in collect.events} == {os.getpid()}
    assert pipeline.stats()["workers"] == {"processes": 1}


def test_nothing_for_workers_to_do_keeps_one_process(state_dir: str) -> None:
    assert Pipeline(outputs=[CollectOutput()], state_dir=state_dir, workers=2).workers == 1


def test_fluentd_system_workers_reach_the_pipeline(state_dir: str, tmp_path: Path) -> None:
    conf = tmp_path / "fluent.conf"
    conf.write_text("<system>\n  workers 3\n</system>\n<source>\n  @type sample\n</source>\n"
                    "<filter **>\n  @type record_transformer\n  <record>\n    a b\n  </record>\n</filter>\n"
                    f"<match **>\n  @type file\n  path {tmp_path}/out\n</match>\n")
    assert Pipeline.from_paths([str(conf)], state_dir=state_dir).workers == 3
    assert Pipeline.from_paths([str(conf)], state_dir=state_dir, workers=1).workers == 1
