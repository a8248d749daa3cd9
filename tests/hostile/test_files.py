"""Unlucky files (issue 12, items 8–14). Here: item 13, a damaged chunk of the file
buffer. One flipped byte in the middle frame used to cost every frame after it; the
scan now resynchronises on the next frame whose length fits and whose CRC matches, so
the damage costs exactly the damaged frame."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.buffer.file import FRAME, MAGIC, scan_chunk
from logpipe.event import Event
from logpipe.plugin import Output, WriteResult


class Recorder(Output):
    name = "recorder"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.writes: list[Event] = []
        self.gate = asyncio.Event()

    async def write(self, events: list[Event]) -> WriteResult | None:
        await self.gate.wait()
        self.writes.extend(events)
        return None


def runner(tmp_path: Path, open_gate: bool) -> tuple[OutputRunner, Recorder]:
    out = Recorder(buffer="file", buffer_path=str(tmp_path / "buf"), flush_interval=3600)
    if open_gate:
        out.gate.set()
    return OutputRunner(out, state_dir=str(tmp_path)), out


async def test_salvage_resynchronises_after_a_damaged_frame(tmp_path: Path) -> None:
    first, _ = runner(tmp_path, open_gate=False)
    await first.start()
    for batch in range(3):
        await first.put([Event("t", 1, {"n": batch * 10 + i}) for i in range(10)], Ack())
    await first.stop(0.1)
    [path] = sorted((tmp_path / "buf").glob("*.chunk"))
    data = bytearray(path.read_bytes())
    scan = scan_chunk(bytes(data))
    assert scan.error is None and len(scan.spans) == 3
    middle_start, middle_end = scan.spans[1]
    data[(middle_start + FRAME.size + middle_end) // 2] ^= 0xFF  # one flipped byte in frame 2
    path.write_bytes(bytes(data))

    damaged = scan_chunk(bytes(data))
    assert damaged.error is not None and "CRC mismatch" in damaged.error
    assert damaged.spans == (scan.spans[0], scan.spans[2]) and damaged.records == 20

    second, out = runner(tmp_path, open_gate=True)
    await second.start()
    await second.flush()
    await second.stop(1)
    assert sorted(ev.record["n"] for ev in out.writes) == [*range(10), *range(20, 30)]
    assert second.stats()["quarantined_chunks"] == 1
    [reason] = (tmp_path / "buf" / "quarantine").glob("*.reason")
    assert "salvaged events: 20" in reason.read_text()
    assert data.startswith(MAGIC)
