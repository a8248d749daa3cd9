"""An output's oldest undelivered event age: grows while the output holds a batch, 0 once delivered."""

from __future__ import annotations

import asyncio
from typing import Any

from logpipe import CallbackOutput, Pipeline


async def test_oldest_undelivered_age(state_dir: str) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow(events: list[Any]) -> None:
        entered.set()
        await gate.wait()

    out = CallbackOutput(slow, id="slow")
    async with Pipeline(outputs=[out], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit("app", {"n": 1})
        await entered.wait()
        first = pipeline.stats()["outputs"]["slow"]["oldest_undelivered_seconds"]
        await asyncio.sleep(0.05)
        later = pipeline.stats()["outputs"]["slow"]["oldest_undelivered_seconds"]
        assert later > first >= 0 and later >= 0.05
        gate.set()
        await pipeline.delivered(ack)
        assert pipeline.stats()["outputs"]["slow"]["oldest_undelivered_seconds"] == 0.0
