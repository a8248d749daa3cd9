"""Hostile Fluentd forward peers (issue 12, items 2, 3 and 7's input side): gzip member
floods, a small gzip that expands to a million events, records nested 600 deep, idle
connections that squat on every slot, and half-sent messages that pin memory. Each costs
only the attacker's connection; RSS and the health check are measured from outside the
daemon where the attack is about memory or the event loop.

Bounds under test (README, "Limits and guarantees"): gunzip is linear and stops after
MAX_GZIP_MEMBERS members; a chunk is decoded and handed on in slices of 2048 events;
a record nested deeper than MAX_DEPTH is rejected alone; a connection silent for
`idle_timeout` is closed; all connections together hold at most `max_buffered_bytes`
(plus one read each) before the ones over their equal share are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

from logpipe.helpers.forward_protocol import MAX_GZIP_MEMBERS, TooLarge, gunzip
from logpipe.metrics import REGISTRY
from logpipe_plugins.inputs.forward import ForwardInput
from tests.support.hostile import Watch, daemon
from tests.support.net import Collector, free_port, running

MIB_KIB = 1024


def config(port: int) -> str:
    return f"""
input {{ forward {{ id => "fwd" bind => "127.0.0.1" port => {port} }} }}
output {{ null {{ id => "sink" }} }}
"""


def compressed_message(tag: str, entries: bytes, chunk: str) -> bytes:
    return msgpack.packb([tag, entries, {"compressed": "gzip", "chunk": chunk}], use_bin_type=True)


def read_reply(sock: socket.socket) -> Any:
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        data = sock.recv(65536)
        if not data:
            return None
        unpacker.feed(data)
        for obj in unpacker:
            return obj


def closed(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def test_gzip_member_flood_is_refused_and_the_loop_keeps_answering(tmp_path: Path) -> None:
    """30 MB of empty gzip members (1.5M). Before: each member copied the rest of the
    buffer — minutes of a frozen loop, SIGTERM could not run. Now: linear, capped."""
    member = gzip.compress(b"")
    flood = member * (30 * 1024 * 1024 // len(member))
    port = free_port()
    with daemon(tmp_path, config(port), port) as proc:
        with Watch(proc) as watch, socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(compressed_message("flood", flood, "c1"))
            started = time.monotonic()
            assert closed(sock)
            took = time.monotonic() - started
        assert proc.alive()
        assert proc.metric("logpipe_input_protocol_errors_total", reason="oversized") == 1
    assert took < 10, f"refusing the flood took {took:.1f}s"
    assert watch.health_failures == 0 and watch.worst_health < 1.0, watch.worst_health


def test_gunzip_is_linear_in_members() -> None:
    member = gzip.compress(b"x")

    def timed(n: int) -> float:
        started = time.perf_counter()
        assert gunzip(member * n, 1 << 30) == b"x" * n
        return time.perf_counter() - started

    small, large = timed(5_000), timed(50_000)
    assert large < 30 * small + 0.1, f"{large:.3f}s for 10x the members vs {small:.3f}s"
    with pytest.raises(TooLarge):
        gunzip(member * (MAX_GZIP_MEMBERS + 1), 1 << 30)


def test_small_gzip_of_a_million_events_is_streamed(tmp_path: Path) -> None:
    """~12 KB of gzip → 1M `[0, {}]` entries. Before: all decoded into one list, then one
    Event each, before the first was handed on (the issue saw ~3 GB for 10M)."""
    count = 1_000_000
    entries = b"\x92\x00\x80" * count
    message = compressed_message("bomb", gzip.compress(entries, 9), "c1")
    assert len(message) < 64 * 1024
    port = free_port()
    with daemon(tmp_path, config(port), port) as proc:
        baseline = proc.rss_kib()
        with Watch(proc) as watch, socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(message)
            assert read_reply(sock) == {"ack": "c1"}
        assert proc.metric("logpipe_output_events_delivered_total", output="sink") == count
    growth = (watch.peak_rss_kib - baseline) // MIB_KIB
    assert growth < 60, f"RSS grew by {growth} MiB"
    assert watch.health_failures == 0 and watch.worst_health < 1.0, watch.worst_health


def nested(depth: int) -> dict[str, Any]:
    record: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        record = {"a": record}
    return record


async def test_record_nested_600_deep_is_rejected_and_the_connection_kept() -> None:
    """Before: a RecursionError killed the connection (and everything after it on it)."""
    col = Collector()
    inp = ForwardInput(id="hostile-deep", bind="127.0.0.1", port=0)
    async with running(inp, col):
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_bytes = {"raw": b"\xff"}  # a bin value: the batch takes the cleaning path
        writer.write(msgpack.packb(["t", [[1, nested(600)], [1, bad_bytes], [1, nested(253)]], {"chunk": "a"}]))
        writer.write(msgpack.packb(["t", 2, {"after": True}, {"chunk": "b"}]))
        unpacker = msgpack.Unpacker(raw=False)
        replies: list[Any] = []
        async with asyncio.timeout(5):
            while len(replies) < 2:
                data = await reader.read(65536)
                assert data, "connection closed"
                unpacker.feed(data)
                replies += list(unpacker)
        writer.close()
    assert replies == [{"ack": "a"}, {"ack": "b"}]
    assert [ev.record for ev in col.events] == [{"raw": "\ufffd"}, nested(253), {"after": True}]
    assert REGISTRY.value("logpipe_input_events_rejected_total", input="hostile-deep",
                          reason="too_deep") == 1


async def test_idle_connections_do_not_lock_senders_out() -> None:
    """Before: idle peers without shared_key were never timed out; max_connections of
    them locked every legitimate sender out for good."""
    col = Collector()
    inp = ForwardInput(id="hostile-idle", bind="127.0.0.1", port=0, max_connections=4, idle_timeout=0.3)
    async with running(inp, col):
        squatters = [await asyncio.open_connection("127.0.0.1", inp.bound_port) for _ in range(4)]
        async with asyncio.timeout(5):
            for reader, _ in squatters:
                assert await reader.read() == b""  # closed by the server once idle
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["t", 1, {"ok": True}, {"chunk": "x"}]))
        async with asyncio.timeout(5):
            assert msgpack.unpackb(await reader.read(100)) == {"ack": "x"}
        writer.close()
        for _, w in squatters:
            w.close()


async def test_half_sent_messages_are_capped_across_connections() -> None:
    """Twelve peers each send 1 MiB of a message declared as 2 MiB and stop. Before:
    each pinned its bytes (1024 such peers: ~32 GB). Now all together hold at most
    max_buffered_bytes; the peers over their share are closed, a small sender still gets in."""
    col = Collector()
    limit = 4 * 1024 * 1024
    inp = ForwardInput(id="hostile-halfsent", bind="127.0.0.1", port=0, chunk_size_limit="4mb",
                       max_buffered_bytes=limit)
    half = msgpack.packb(["t", b"\x00" * (2 * 1024 * 1024), {}])[:1024 * 1024]
    async with running(inp, col):
        peers = [await asyncio.open_connection("127.0.0.1", inp.bound_port) for _ in range(12)]
        for _, writer in peers:
            writer.write(half)
            await writer.drain()
        closed_peers = 0
        async with asyncio.timeout(10):
            while closed_peers < 8:
                closed_peers = 0
                for reader, _ in peers:
                    if reader.at_eof():
                        closed_peers += 1
                    else:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(reader.read(1), 0.05)
        assert inp._budget.total <= limit
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["t", 1, {"ok": True}, {"chunk": "s"}]))
        async with asyncio.timeout(5):
            assert msgpack.unpackb(await reader.read(100)) == {"ack": "s"}
        for _, w in [*peers, (reader, writer)]:
            w.close()
    assert REGISTRY.value("logpipe_input_protocol_errors_total", input="hostile-halfsent",
                          reason="buffer_limit") >= 8
