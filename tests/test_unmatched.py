"""Events no <match> takes: counted per tag (bounded label set) and warned as Fluentd does."""

from __future__ import annotations

import logging

import pytest

from logpipe import unmatched as unmatched_module
from logpipe.event import Event
from logpipe.metrics import REGISTRY
from logpipe.pipeline import Pipeline
from logpipe.unmatched import Unmatched

CONFIG = """
<match app.**>
  @type null
</match>
<label @OTHER>
  <match x.**>
    @type null
  </match>
</label>
"""


def value(tag: str) -> float:
    return sum(c.value for (name, labels), c in REGISTRY._items.items()
               if name == "logpipe_events_unmatched_total" and ("tag", tag) in labels)


async def test_unmatched_events_are_counted_and_warned(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    before = value("nomatch.web")
    caplog.set_level(logging.WARNING, logger="logpipe.router")
    async with Pipeline.from_string(CONFIG, state_dir=str(tmp_path)) as pipeline:
        for _ in range(3):
            ack = await pipeline.emit("nomatch.web", {"n": 1})
            await pipeline.delivered(ack)  # routed nowhere: acknowledged at once
        ack = await pipeline.emit("app.ok", {"n": 1})
        await pipeline.delivered(ack)
    assert value("nomatch.web") - before == 3
    warned = [r.getMessage() for r in caplog.records if "no patterns matched" in r.getMessage()]
    assert len(warned) == 2  # the 1st and 2nd batch; the 3rd waits for the 4th (Fluentd's schedule)
    assert warned[0].startswith('no patterns matched tag="nomatch.web"')
    assert not any("app.ok" in w for w in warned)


def test_schedule_and_bounded_labels(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(unmatched_module, "MAX_TAG_LABELS", 2)
    caplog.set_level(logging.WARNING, logger="logpipe.router")
    u = Unmatched()
    for _ in range(1, 1025):
        u.count([Event("sched", 0, {})])
    warned = [r for r in caplog.records if 'tag="sched"' in r.getMessage()]
    assert len(warned) == 9 + 2  # 1, 2, 4 … 256, then 512 and 1024
    before = value("_other")
    for tag in ("t1", "t2", "t3"):
        u.count([Event(tag, 0, {})])
    assert value("_other") - before == 2  # sched and t1 hold the two labels; t2, t3 share _other
