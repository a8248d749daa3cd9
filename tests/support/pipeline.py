"""In-process plugins for tests: a collecting output and a controllable input."""

from __future__ import annotations

import asyncio
from typing import Any

from logpipe.config.model import IfNode, Node, PluginNode
from logpipe.event import Event
from logpipe.plugin import Input, InputContext, Output, Setting, WriteResult


class CollectOutput(Output):
    """Keeps every delivered event; can be paused to simulate a stuck destination."""

    name = "collect"
    buffer_defaults = {"flush_interval": 0.0}

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.events: list[Event] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.arrived = asyncio.Condition()

    async def write(self, events: list[Event]) -> WriteResult | None:
        await self.gate.wait()
        self.events.extend(events)
        async with self.arrived:
            self.arrived.notify_all()
        return None

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.events) >= count)

        await asyncio.wait_for(enough(), timeout)


class ScriptedInput(Input):
    """Emits the given batches, recording when each batch's acknowledgement fires."""

    name = "scripted"
    settings = [Setting("batches", "any", default=[])]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.acked: list[int] = []
        self.emitted = 0

    async def run(self, ctx: InputContext) -> None:
        for number, batch in enumerate(self.params["batches"]):
            events = [Event(self.event_tag, None, dict(record)) for record in batch]
            await ctx.emit(events, lambda n=number: self.acked.append(n))
            self.emitted += 1


def first_plugin(nodes: list[Node]) -> PluginNode:
    """The first plugin block of a config section (a Fluentd <match> is a tag condition
    around its plugin)."""
    node = nodes[0]
    while isinstance(node, IfNode):
        node = node.branches[0].body[0]
    return node
