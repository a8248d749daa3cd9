"""Hostile Beats peers (issue 12, items 1 and 4): compression bombs, nested compressed
frames, a window that never ends, and v1 data frames with an absurd pair count or sent
a few bytes at a time. Each costs only the attacker's connection; the daemon's RSS and
health check are measured while it happens.

Bounds under test (README, "Limits and guarantees"): one compressed frame inflates to at
most `max_frame_size`; compressed frames do not nest; a connection holds one slice of a
window (2048 events or 4 MiB) however large the window it declares; a v1 data frame is
at most `max_frame_size` bytes and is parsed once, pair by pair.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest

from logpipe.metrics import REGISTRY
from logpipe_plugins.inputs.beats import BeatsInput
from logpipe_plugins.inputs.beats.protocol import FrameParser
from tests.support.hostile import Watch, daemon
from tests.support.net import Collector, free_port, running

MIB_KIB = 1024


def window(n: int, version: bytes = b"2") -> bytes:
    return version + b"W" + struct.pack(">I", n)


def jframe(seq: int, body: bytes = b"{}") -> bytes:
    return b"2J" + struct.pack(">II", seq, len(body)) + body


def compressed(frames: bytes) -> bytes:
    body = zlib.compress(frames, 9)
    return b"2C" + struct.pack(">I", len(body)) + body


def dframe_head(seq: int, pairs: int) -> bytes:
    return b"1D" + struct.pack(">II", seq, pairs)


def dframe(seq: int, pairs: int) -> bytes:
    body = b"".join(struct.pack(">I", 1) + b"k" + struct.pack(">I", len(v := str(i).encode())) + v
                    for i in range(pairs))
    return dframe_head(seq, pairs) + body


def read_ack(sock: socket.socket) -> int:
    data = b""
    while len(data) < 6:
        chunk = sock.recv(6 - len(data))
        assert chunk, "connection closed before the ACK"
        data += chunk
    assert data[1:2] == b"A"
    return int(struct.unpack(">I", data[2:])[0])


def config(port: int, max_frame_size: str = "8mb") -> str:
    return f"""
input {{ beats {{ id => "beats" host => "127.0.0.1" port => {port} max_frame_size => "{max_frame_size}" }} }}
output {{ null {{ id => "sink" }} }}
"""


def test_one_level_bomb_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A compressed frame of a few KB inflating to 8 MiB of empty documents (~700k events) is
    delivered and ACKed; the daemon never holds the whole window. Before: every event of
    the window sat in one list (the issue saw 900 MB for a 125 KB bomb)."""
    count = (8 * 1024 * 1024) // 12 - 1
    inner = jframe(1) * (count - 1) + jframe(count)  # repeated sequences: what makes it compress
    bomb = window(count) + compressed(inner)
    assert len(bomb) < 64 * 1024
    port = free_port()
    with daemon(tmp_path, config(port), port) as proc:
        baseline = proc.rss_kib()
        with Watch(proc) as watch, socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(bomb)
            while (seq := read_ack(sock)) == 0:  # keep-alive ACKs while the window drains
                pass
        assert seq == count
        assert proc.metric("logpipe_output_events_delivered_total", output="sink") == count
        assert proc.alive()
    growth = (watch.peak_rss_kib - baseline) // MIB_KIB
    assert growth < 60, f"RSS grew by {growth} MiB"
    assert watch.health_failures == 0 and watch.worst_health < 1.0, watch.worst_health


def test_window_of_2_32_minus_1_streams_to_the_outputs(tmp_path: Path) -> None:
    """A window that declares 2³²−1 frames never completes; its events still flow on and
    the connection's memory stays one slice. Before: every frame was kept until the
    window completed — never."""
    port = free_port()
    sent = 200_000
    with daemon(tmp_path, config(port), port) as proc:
        baseline = proc.rss_kib()
        with Watch(proc) as watch, socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(window(2**32 - 1))
            doc = b'{"message":"' + b"x" * 200 + b'"}'
            for start in range(0, sent, 10_000):
                sock.sendall(compressed(b"".join(jframe(start + i + 1, doc) for i in range(10_000))))
            deadline = time.monotonic() + 60
            delivered = 0.0
            while delivered < sent - 2048 and time.monotonic() < deadline:
                delivered = proc.metric("logpipe_output_events_delivered_total", output="sink")
                time.sleep(0.05)
        assert delivered >= sent - 2048, f"only {delivered} of {sent} events reached the output"
    growth = (watch.peak_rss_kib - baseline) // MIB_KIB
    assert growth < 60, f"RSS grew by {growth} MiB"
    assert watch.health_failures == 0 and watch.worst_health < 1.0


def errors(plugin_id: str, reason: str) -> float:
    return REGISTRY.value("logpipe_input_protocol_errors_total", input=plugin_id, reason=reason)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        # C inside C: the 911-byte road to 3.2 GB starts with one such frame.
        (window(1) + compressed(compressed(jframe(1))), "nested_compression"),
        # v1 D frame declaring 2³²−1 pairs: refused from its header.
        (window(1, b"1") + dframe_head(1, 2**32 - 1), "oversized"),
        # A D frame whose strings add up past max_frame_size.
        (window(1, b"1") + dframe_head(1, 3) + struct.pack(">I", 600_000) + b"k" * 600_000
         + struct.pack(">I", 600_000) + b"v" * 600_000, "oversized"),
    ],
    ids=["nested-compressed", "2^32-1-pairs", "data-frame-too-big"],
)
async def test_refused_at_once_and_others_unaffected(attack: bytes, reason: str) -> None:
    col = Collector()
    inp = BeatsInput(id=f"hostile-{reason}-{len(attack)}", host="127.0.0.1", port=0, max_frame_size=1 << 20)
    async with running(inp, col):
        bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        good_reader, good_writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_writer.write(attack)
        async with asyncio.timeout(5):
            assert await bad_reader.read() == b""  # closed by the server
        good_writer.write(window(1) + compressed(jframe(9)))
        async with asyncio.timeout(5):
            assert (await good_reader.readexactly(6))[2:] == struct.pack(">I", 9)
        for writer in (bad_writer, good_writer):
            writer.close()
    assert errors(inp.id, reason) == 1
    assert len(col.events) == 1


def test_data_frame_in_small_pieces_parses_in_linear_time() -> None:
    """A v1 frame of 50k pairs arriving 4 KiB at a time costs about what it costs in one
    piece. Before: every read re-parsed the frame from its start (quadratic; other
    clients waited seconds for their ACK)."""
    data = window(1, b"1") + dframe(1, 50_000)

    def parse(piece: int) -> float:
        parser = FrameParser(64 << 20)
        started = time.perf_counter()
        frames = []
        for i in range(0, len(data), piece):
            frames += parser.feed(data[i:i + piece])
        assert len(frames) == 2 and len(frames[1][3]) == 1  # one key "k", the last value wins
        return time.perf_counter() - started

    whole = parse(len(data))
    pieces = parse(4096)
    assert pieces < 5 * whole + 0.2, f"{pieces:.3f}s in pieces vs {whole:.3f}s whole"
