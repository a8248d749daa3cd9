"""Routing semantics of both front-ends, end to end through the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe import If, registry
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from tests.support.pipeline import CollectOutput


@pytest.fixture(autouse=True)
def _collect_plugin() -> None:
    registry.register(CollectOutput)


async def _run(cfg: str, state_dir: str, events: list[tuple[str, dict]]) -> dict[str, list]:
    pipeline = Pipeline.from_string(cfg, state_dir=state_dir)
    async with pipeline:
        for tag, record in events:
            ack = await pipeline.emit(tag, record)
            await pipeline.delivered(ack)
    return {out.id: [(ev.tag, ev.record) for ev in out.events] for out in pipeline.built.outputs}


async def test_fluentd_first_match_wins(state_dir: str) -> None:
    cfg = """
<match web.access>
  @type collect
  @id access
</match>
<match web.**>
  @type collect
  @id web
</match>
<match **>
  @type collect
  @id rest
</match>
"""
    got = await _run(cfg, state_dir, [("web.access", {"n": 1}), ("web.error", {"n": 2}), ("db", {"n": 3}),
                                     ("web", {"n": 4})])
    assert got == {
        "access": [("web.access", {"n": 1})],
        "web": [("web.error", {"n": 2}), ("web", {"n": 4})],
        "rest": [("db", {"n": 3})],
    }


async def test_fluentd_copy_fans_out_and_filter_applies_by_tag(state_dir: str) -> None:
    cfg = """
<filter app.*>
  @type record_transformer
  <record>
    seen_by ${tag}
  </record>
</filter>
<match {app,web}.*>
  @type copy
  <store>
    @type collect
    @id one
  </store>
  <store>
    @type collect
    @id two
  </store>
</match>
"""
    got = await _run(cfg, state_dir, [("app.x", {"n": 1}), ("web.y", {"n": 2}), ("other", {"n": 3})])
    assert got["one"] == got["two"] == [("app.x", {"n": 1, "seen_by": "app.x"}), ("web.y", {"n": 2})]


async def test_fluentd_labels_route_inputs(state_dir: str, tmp_path: Path) -> None:
    cfg = """
<source>
  @type generator
  @label @STAGING
  tag staged
  count 2
</source>
<source>
  @type generator
  tag plain
  count 1
</source>
<match **>
  @type collect
  @id main
</match>
<label @STAGING>
  <match **>
    @type collect
    @id staging
  </match>
</label>
"""
    pipeline = Pipeline.from_string(cfg, state_dir=state_dir)
    assert await pipeline.run() == 0
    got = {out.id: [ev.tag for ev in out.events] for out in pipeline.built.outputs}
    assert got == {"main": ["plain"], "staging": ["staged", "staged"]}


async def test_logstash_fan_out_conditionals_and_match_option(state_dir: str) -> None:
    cfg = """
filter {
  if [status] >= 500 { mutate { add_tag => ["server_error"] } }
  else if [status] in [401, 403] { mutate { add_tag => ["denied"] } }
  else { mutate { add_tag => ["ok"] } }
}
output {
  collect { id => "all" }
  if "server_error" in [tags] or "denied" in [tags] { collect { id => "alerts" } }
  collect { id => "web_only" match => ["web.*"] }
}
"""
    got = await _run(cfg, state_dir, [("web.a", {"status": 503}), ("app", {"status": 403}),
                                     ("web.b", {"status": 200})])
    assert [r["tags"] for _, r in got["all"]] == [["server_error"], ["denied"], ["ok"]]
    assert [r["status"] for _, r in got["alerts"]] == [503, 403]
    assert [t for t, _ in got["web_only"]] == ["web.a", "web.b"]


def test_routes_name_outputs_by_id_not_position(state_dir: str) -> None:
    """Two unnamed outputs of one plugin get settled ids; the router names them by those ids,
    so a runner, a metric or a worker process can refer to an output without knowing its place."""
    cfg = """
output {
  collect { id => "audit" }
  if [level] == "error" { collect { match => ["t"] } }
  collect { match => ["t*"] }
}
"""
    pipeline = Pipeline.from_string(cfg, state_dir=state_dir)
    ids = [out.id for out in pipeline.built.outputs]
    assert ids[0] == "audit" and len(set(ids)) == 3
    assert all(i.startswith("collect-") for i in ids[1:])
    events = [Event("t", None, {"level": "error"}), Event("t", None, {"level": "info"})]
    routed = pipeline._route(events)
    assert [output_id for output_id, _ in routed] == ["audit", ids[1], ids[2]]
    assert [len(part) for _, part in routed] == [2, 1, 2]
    by_object = pipeline.route_batch(events)
    assert [out.id for out, _ in by_object] == ["audit", ids[1], ids[2]]


async def test_one_output_object_in_two_branches_is_one_output(state_dir: str) -> None:
    """A pipeline built in code may place the same output in both branches: it is one output
    with one buffer, and each event reaches it once."""
    seen = CollectOutput(id="seen")
    pipeline = Pipeline(outputs=[If("[n] > 1", [seen], else_=[seen])], state_dir=state_dir)
    assert pipeline.built.outputs == [seen]
    async with pipeline:
        await pipeline.delivered(await pipeline.emit_many("t", [{"n": 1}, {"n": 2}, {"n": 3}]))
    assert sorted(ev.record["n"] for ev in seen.events) == [1, 2, 3]
