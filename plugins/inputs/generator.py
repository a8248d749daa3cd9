"""Logstash's generator input: synthetic events for tests and benchmarks.

As Logstash's: `count` is how many times the `lines` (or the one `message`) are emitted, so
`lines => [a, b] count => 3` gives 6 events, and `sequence` is the round an event belongs to
(both lines of a round share it).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from logpipe.plugin import Event, Input, InputContext, Setting


class GeneratorInput(Input):
    name = "generator"
    doc = "Emits `message` (or all of `lines`) `count` times; count 0 runs forever."
    settings = [
        Setting("message", "string", default="Hello world!", doc="the message of every event"),
        Setting("lines", "array", doc="messages to cycle through instead of `message`"),
        Setting("count", "int", default=0, min=0, doc="how many times the lines are emitted (0 = endless)"),
        Setting("batch_size", "int", default=1000, doc="events per emitted batch"),
    ]

    async def run(self, ctx: InputContext) -> None:
        lines: list[Any] = [str(x) for x in self.params["lines"]] if self.params["lines"] else [
            self.params["message"]
        ]
        per_cycle = len(lines)
        count: int = self.params["count"] * per_cycle
        size = max(1, self.params["batch_size"])
        tag = self.event_tag
        hostname = socket.gethostname()
        codec = self.params["codec"]
        sequence = 0
        while count == 0 or sequence < count:
            n = size if count == 0 else min(size, count - sequence)
            now = time.time_ns()
            if codec is None:
                batch = [
                    Event(tag, now, {"message": lines[(sequence + i) % per_cycle], "host": {"name": hostname},
                                     "sequence": (sequence + i) // per_cycle})
                    for i in range(n)
                ]
            else:
                records = codec.decode([lines[(sequence + i) % per_cycle] for i in range(n)])
                batch = codec.events(tag, now, records)
            sequence += n
            await ctx.emit(batch, None)
