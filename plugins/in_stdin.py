"""Logstash's stdin input: one event per line until EOF, which ends a finite pipeline
(`echo x | logpipe run -e …`)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

from logpipe.event import Event
from logpipe.plugin import Input, InputContext, Setting

CHUNK = 1 << 16


class StdinInput(Input):
    name = "stdin"
    doc = "Reads lines from standard input; the pipeline ends at EOF once every event is delivered."
    settings = [
        Setting("fd", "int", default=None, doc="file descriptor to read (default: standard input)"),
    ]

    async def run(self, ctx: InputContext) -> None:
        fd = self.params["fd"] if self.params["fd"] is not None else sys.stdin.fileno()
        loop = asyncio.get_running_loop()
        tag = self.event_tag
        hostname = socket.gethostname()
        codec = self.params["codec"]
        pending = b""
        while True:
            chunk = await loop.run_in_executor(None, os.read, fd, CHUNK)
            if chunk:
                data = pending + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    pending = data
                    continue
                pending = data[cut + 1:]
                raw_lines = data[:cut].split(b"\n")
            else:
                if not pending:
                    return
                raw_lines, pending = [pending], b""
            lines = [line.decode("utf-8", "replace").rstrip("\r") for line in raw_lines]
            now = time.time_ns()
            if codec is None:
                batch = [Event(tag, now, {"message": line, "host": {"name": hostname}}) for line in lines]
            else:
                batch = [Event(tag, now, record) for record in codec.decode(lines)]
            await ctx.emit(batch, None)
            if not chunk:
                return
