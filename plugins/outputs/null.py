"""Discards events: for benchmarks and for measuring everything but the output."""

from __future__ import annotations

from logpipe.event import Event
from logpipe.plugin import Output, WriteResult


class NullOutput(Output):
    name = "null"
    doc = "Accepts and discards every event."
    buffer_defaults = {"flush_interval": 0.0}

    async def write(self, events: list[Event]) -> WriteResult | None:
        return None
