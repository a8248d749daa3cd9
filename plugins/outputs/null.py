"""Discards events: for benchmarks and for measuring everything but the output."""

from __future__ import annotations

from logpipe.plugin import Event, Output, WriteResult


class NullOutput(Output):
    name = "null"
    doc = "Accepts and discards every event."
    buffer_defaults = {"flush_interval": 0.0}

    def format(self, events: list[Event]) -> list[bytes]:
        """Empty items: the buffer still counts events, nothing is encoded for nobody."""
        return [b""] * len(events)

    async def write(self, items: list[bytes]) -> WriteResult | None:
        return None
