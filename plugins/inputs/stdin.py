"""Logstash's stdin input: one event per line until EOF, which ends a finite pipeline
(`echo x | logpipe run -e …`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time

from logpipe.plugin import Event, Input, InputContext, Setting

CHUNK = 1 << 16
#: An unterminated line is cut into events of this size rather than held whole: input
#: without newlines (a binary stream) must not grow memory without bound.
MAX_LINE = 1 << 20


class StdinInput(Input):
    name = "stdin"
    doc = "Reads lines from standard input; the pipeline ends at EOF once every event is delivered."
    settings = [
        Setting("fd", "int", default=None, doc="file descriptor to read (default: standard input)"),
    ]

    async def run(self, ctx: InputContext) -> None:
        fd = self.params["fd"] if self.params["fd"] is not None else sys.stdin.fileno()
        tag = self.event_tag
        hostname = socket.gethostname()
        codec = self.params["codec"]
        pending = b""
        read = asyncio.ensure_future(_read(fd))
        try:
            while True:
                interval = codec.flush_interval if codec is not None else None
                done, _ = await asyncio.wait({read}, timeout=interval)
                if not done:  # a codec holding an event (multiline) was quiet for its flush interval
                    held = codec.flush()
                    if held:
                        await ctx.emit(codec.events(tag, time.time_ns(), held), None)
                    continue
                chunk = read.result()
                if chunk:
                    read = asyncio.ensure_future(_read(fd))
                    data = pending + chunk
                    cut = data.rfind(b"\n")
                    if cut < 0 and len(data) < MAX_LINE:
                        pending = data
                        continue
                    if cut < 0:
                        raw_lines, pending = [data], b""
                    else:
                        pending = data[cut + 1:]
                        raw_lines = data[:cut].split(b"\n")
                elif pending:
                    raw_lines, pending = [pending], b""
                else:
                    raw_lines = []
                lines = [line.decode("utf-8", "replace").rstrip("\r") for line in raw_lines]
                now = time.time_ns()
                if codec is None:
                    batch = [Event(tag, now, {"message": line, "host": {"name": hostname}}) for line in lines]
                else:
                    records = codec.decode(lines) if lines else []
                    if not chunk:
                        records.extend(codec.flush())
                    batch = codec.events(tag, now, records)
                if batch:
                    await ctx.emit(batch, None)
                if not chunk:
                    return
        finally:
            read.cancel()


async def _read(fd: int) -> bytes:
    """os.read in a daemon thread of its own, not the loop's executor: a read blocked on an
    idle terminal or pipe cannot be interrupted, and asyncio.run joins the executor's threads
    at exit, so a stop (SIGTERM) would hang until the next line arrived."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()

    def deliver(data: bytes | None, exc: BaseException | None) -> None:
        if future.done():
            return  # the input was cancelled meanwhile
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(data or b"")

    def work() -> None:
        try:
            data, exc = os.read(fd, CHUNK), None
        except OSError as error:
            data, exc = None, error
        with contextlib.suppress(RuntimeError):  # the loop closed while we were blocked
            loop.call_soon_threadsafe(deliver, data, exc)

    threading.Thread(target=work, name="logpipe-stdin", daemon=True).start()
    return await future
