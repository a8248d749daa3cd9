"""Forward input throughput: events/s from a forward sender into a collector.

The sender runs in its own process (as a real agent would) and pre-encodes its data,
so the figure is the input's cost: msgpack decoding, Event building, acks. Modes:

- packed:  PackedForward chunks with a `chunk` id, the way Fluentd/Fluent Bit (and
           fluent-logger-style batching senders) ship; the sender keeps `--inflight`
           chunks unacknowledged, like out_forward with require_ack_response.
- gzip:    the same as CompressedPackedForward.
- message: fluent-logger's FluentSender, one Message-mode message per event.
- output:  logpipe's own forward output (in the sender process) → forward input.

    python benchmarks/bench_forward.py [--events 1000000] [--mode packed|gzip|message|output] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import struct
import sys
import time
from typing import Any

import msgpack
from harness import peak_rss_mib, run_loop, serve_input

from logpipe.event import Event

NS = 1_000_000_000


def record(i: int) -> dict[str, Any]:
    return {"host": f"203.0.113.{i % 250}", "method": "GET", "path": f"/index.html?id={i}", "status": 200,
            "bytes": i % 5000, "agent": "Mozilla/5.0", "message": f"GET /index.html?id={i} HTTP/1.1"}


def event_time(ns: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", *divmod(ns, NS)))


def client(port: int, events: int, mode: str, chunk: int, inflight: int) -> float:
    """Runs in the sender process; returns seconds from connect to the last ack."""
    import socket

    now = time.time_ns()
    if mode == "message":
        from fluent import sender

        s = sender.FluentSender("bench", host="127.0.0.1", port=port, nanosecond_precision=True)
        records = [record(i) for i in range(events)]
        t0 = time.perf_counter()
        for r in records:
            s.emit("access", r)
        s.close()
        return time.perf_counter() - t0
    if mode == "output":
        from logpipe_plugins.outputs.forward import ForwardOutput

        batches = [[Event("bench.access", now, record(i)) for i in range(start, min(events, start + chunk))]
                   for start in range(0, events, chunk)]

        async def ship() -> float:
            out = ForwardOutput(port=port, require_ack_response=True, heartbeat_type="none")
            await out.start()
            t0 = time.perf_counter()
            for batch in batches:
                await out.write(batch)
            elapsed = time.perf_counter() - t0
            await out.close()
            return elapsed

        return asyncio.run(ship())
    frames = []
    for n, start in enumerate(range(0, events, chunk)):
        stop = min(events, start + chunk)
        entries = b"".join(msgpack.packb([event_time(now + i), record(i)]) for i in range(start, stop))
        option: dict[str, Any] = {"chunk": f"c{n}", "size": min(chunk, events - start)}
        if mode == "gzip":
            entries = gzip.compress(entries, 3)
            option["compressed"] = "gzip"
        frames.append(msgpack.packb(["bench.access", entries, option]))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go (Filebeat) and Fluentd do
    unpacker = msgpack.Unpacker(raw=False)
    pending: collections.deque[int] = collections.deque()
    t0 = time.perf_counter()
    for n, frame in enumerate(frames):
        while len(pending) >= inflight:
            _read_ack(sock, unpacker, pending)
        sock.sendall(frame)
        pending.append(n)
    while pending:
        _read_ack(sock, unpacker, pending)
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed


def _read_ack(sock: Any, unpacker: msgpack.Unpacker, pending: collections.deque[int]) -> None:
    for reply in unpacker:
        assert reply["ack"] == f"c{pending.popleft()}"
        return
    unpacker.feed(sock.recv(65536))
    _read_ack(sock, unpacker, pending)


async def serve(args: argparse.Namespace) -> tuple[float, int]:
    from logpipe_plugins.inputs.forward import ForwardInput

    inp = ForwardInput(bind="127.0.0.1", port=0)
    await inp.start()
    cmd = [sys.executable, __file__, "--client", str(inp.bound_port), "--events", str(args.events),
           "--mode", args.mode, "--chunk", str(args.chunk), "--inflight", str(args.inflight)]
    return await serve_input(inp, args.events, cmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--mode", choices=("packed", "gzip", "message", "output"), default="packed")
    ap.add_argument("--chunk", type=int, default=1000, help="events per PackedForward chunk")
    ap.add_argument("--inflight", type=int, default=4, help="unacknowledged chunks the sender allows")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        print(client(args.client, args.events, args.mode, args.chunk, args.inflight))
        return
    elapsed, count = run_loop(lambda: serve(args), uvloop=args.uvloop)
    rss = peak_rss_mib()
    print(f"forward {args.mode}: {count} events in {elapsed:.2f}s = {count / elapsed:,.0f} events/s "
          f"(chunk {args.chunk}, input peak RSS {rss:.0f} MiB)")


if __name__ == "__main__":
    main()
