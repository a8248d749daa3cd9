"""Beats input throughput: events/s from a Lumberjack v2 sender into a collector.

The sender runs in its own process and pre-encodes Filebeat-shaped documents into
windows the way Filebeat ships them (`--window` events per window, zlib level 3
compressed 'C' frames of 'J' frames, `--inflight` windows unacknowledged like
Filebeat's pipelining); it stops the clock at the last ACK. `--plain` sends
uncompressed 'J' frames instead.

    python benchmarks/bench_beats.py [--events 500000] [--window 2048] [--plain]
"""

from __future__ import annotations

import argparse
import collections
import struct
import sys
import time
import zlib
from typing import Any

import orjson
from harness import peak_rss_mib, run_loop, serve_input


def document(i: int) -> dict[str, Any]:
    return {
        "@timestamp": "2024-05-06T07:08:09.123Z",
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.0"},
        "message": f'203.0.113.{i % 250} - - [06/May/2024:07:08:09 +0000] "GET /index.html?id={i} HTTP/1.1" 200 {i}',
        "host": {"name": "web-1"},
        "agent": {"type": "filebeat", "version": "8.13.0", "name": "web-1"},
        "log": {"file": {"path": "/var/log/nginx/access.log"}, "offset": i * 100},
        "input": {"type": "filestream"},
        "ecs": {"version": "8.0.0"},
    }


def client(port: int, events: int, window: int, inflight: int, plain: bool) -> float:
    import socket

    frames = []
    for start in range(0, events, window):
        n = min(window, events - start)
        body = b"".join(
            b"2J" + struct.pack(">II", seq + 1, len(doc)) + doc
            for seq, doc in enumerate(orjson.dumps(document(start + k)) for k in range(n))
        )
        if not plain:
            packed = zlib.compress(body, 3)
            body = b"2C" + struct.pack(">I", len(packed)) + packed
        frames.append((n, b"2W" + struct.pack(">I", n) + body))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go (Filebeat) and Fluentd do
    pending: collections.deque[int] = collections.deque()
    buf = b""
    t0 = time.perf_counter()
    for n, frame in frames:
        while len(pending) >= inflight:
            buf = _ack(sock, buf, pending)
        sock.sendall(frame)
        pending.append(n)
    while pending:
        buf = _ack(sock, buf, pending)
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed


def _ack(sock: Any, buf: bytes, pending: collections.deque[int]) -> bytes:
    while len(buf) < 6:
        buf += sock.recv(65536)
    seq = struct.unpack(">I", buf[2:6])[0]
    if seq:  # 0 is a keep-alive
        assert seq == pending.popleft()
    return buf[6:]


async def serve(args: argparse.Namespace) -> tuple[float, int]:
    from logpipe_plugins.inputs.beats import BeatsInput

    inp = BeatsInput(host="127.0.0.1", port=0)
    await inp.start()
    cmd = [sys.executable, __file__, "--client", str(inp.bound_port), "--events", str(args.events),
           "--window", str(args.window), "--inflight", str(args.inflight)] + (["--plain"] if args.plain else [])
    return await serve_input(inp, args.events, cmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--window", type=int, default=2048, help="events per window (Filebeat's bulk_max_size)")
    ap.add_argument("--inflight", type=int, default=2, help="windows in flight (Filebeat's pipelining)")
    ap.add_argument("--plain", action="store_true", help="uncompressed J frames")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        print(client(args.client, args.events, args.window, args.inflight, args.plain))
        return
    elapsed, count = run_loop(lambda: serve(args), uvloop=args.uvloop)
    rss = peak_rss_mib()
    kind = "plain" if args.plain else "zlib"
    print(f"beats {kind}: {count} events in {elapsed:.2f}s = {count / elapsed:,.0f} events/s "
          f"(window {args.window}, input peak RSS {rss:.0f} MiB)")


if __name__ == "__main__":
    main()
