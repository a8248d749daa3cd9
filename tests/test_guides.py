"""The guide's examples run: every Python block of docs/writing-plugins.md is executed, in order,
in one namespace, and the plugins it defines then work as the guide says."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from logpipe import CallbackOutput, Pipeline, register
from logpipe.event import Event
from logpipe.metrics import REGISTRY
from tests.paths import REPO

GUIDE = REPO / "docs" / "writing-plugins.md"


def test_the_writing_plugins_guide_runs(tmp_path: Any) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {"__name__": "guide"}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - the guide's own code, on purpose
    asyncio.run(namespace["test_status_class"]())  # the guide's test passes
    register(namespace["StatusClass"])
    register(namespace["Printer"])

    async def through_a_config() -> list[Any]:
        seen = CallbackOutput()
        config = 'filter { status_class { field => "code" } } output { printer {} }'
        async with Pipeline.from_string(config, outputs=[seen], state_dir=str(tmp_path)) as pipeline:
            await pipeline.delivered(await pipeline.emit("web", {"code": 404, "message": "hi"}))
        return seen.events

    [event] = asyncio.run(through_a_config())
    assert event.record["status_class"] == "4xx"
    ticker = namespace["Ticker"](interval=0.01)
    assert ticker.interval == 0.01
    counting = namespace["CountingStatusClass"](id="guide-counting")
    counting.filter([Event("t", None, {"status": 200}), Event("t", None, {"status": "?"}), Event("t", None, {})])
    assert REGISTRY.value("logpipe_filter_status_class_unknown_total", filter="guide-counting") == 2
