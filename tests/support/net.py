"""Shared helpers for the forward/beats input and forward output tests (no tests here).

`Collector` is an InputContext whose acknowledgements the test controls, so ack timing
can be asserted; `running` serves an input on a free loopback port; `make_certs`
creates a throw-away self-signed certificate with the openssl CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from logpipe.event import Event
from logpipe.plugin import AckCallback, InputContext


class Collector:
    """Records every emitted batch. With `auto_ack` the acknowledgement completes at
    once (as with a memory buffer that delivered); otherwise the test calls `ack(i)`."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.batches: list[list[Event]] = []
        self.acks: list[AckCallback | None] = []
        self._changed = asyncio.Event()

    async def emit(self, events: list[Event], on_ack: AckCallback | None) -> None:
        self.batches.append(events)
        self.acks.append(on_ack)
        if self.auto_ack and on_ack is not None:
            on_ack()
        self._changed.set()

    def ack(self, index: int) -> None:
        callback = self.acks[index]
        assert callback is not None, "batch had no acknowledgement callback"
        self.acks[index] = None
        callback()

    def context(self, state_dir: str = "/nonexistent") -> InputContext:
        return InputContext(self.emit, state_dir, "test")

    @property
    def events(self) -> list[Event]:
        return [ev for batch in self.batches for ev in batch]

    async def wait_events(self, count: int, timeout: float = 10.0) -> list[Event]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events

    async def wait_batches(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.batches) < count:
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def running(plugin: Any, collector: Collector) -> AsyncIterator[Any]:
    """Start an input (bound in `start`), run it, cancel and close it afterwards — the way
    the pipeline does (`lifecycle_start`/`lifecycle_close`: placed errors, timers cancelled)."""
    await plugin.lifecycle_start()
    task = asyncio.create_task(plugin.run(collector.context()))
    try:
        yield plugin
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await plugin.lifecycle_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_certs(directory: Path, name: str = "server") -> tuple[str, str]:
    """A self-signed certificate (also usable as its own CA) for localhost/127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        import pytest

        pytest.skip("openssl CLI not available")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    if not cert.exists():
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True,
        )
    return str(cert), str(key)
