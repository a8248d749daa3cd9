"""What the main process pays per event to use pipeline workers (issue 9), and which transport.

1. Serialisation, in this process: a tail-like batch (Apache line, path, host, `_origin`) out
   as logpipe.workers.wire does it (pickled columns) against msgpack and pickled tuples; the
   file output's formatted items back (unpickled).
2. Transport between two processes: frames of a batch's size sent through os.pipe, a Unix
   socket pair and multiprocessing.Pipe, the reader in a child process; ns per event and GB/s.

    python benchmarks/bench_workers.py [--events 2000] [--frames 400]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pickle
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import msgpack
import orjson

from logpipe.event import Event
from logpipe.workers.wire import OutputPart, Result, decode_result, encode_batch, encode_result

LINE = ('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"')


def batch(n: int) -> list[Event]:
    now = time.time_ns()
    return [Event("apache", now, {"message": f"{LINE} {i}", "path": "/var/log/apache/access.log", "host": "web-1"},
                  {"_origin": (1234567, "9f86d081884c7d65", 180 * i)}) for i in range(n)]


def per_event_ns(fn: Callable[[], Any], n: int, rounds: int = 30) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - t0) / rounds / n * 1e9)
    return best


def serialisation(n: int) -> None:
    events = batch(n)
    packer = msgpack.Packer()
    items = [orjson.dumps({"@timestamp": "2000-10-10T20:55:36.000Z", **ev.record}) + b"\n" for ev in events]
    result = encode_result(Result(0, n, [OutputPart("file", groups=[(("apache",), items)])]))
    rows = [
        ("batch out: pickled columns (logpipe)", lambda: encode_batch(0, events)),
        ("batch out: msgpack of tuples", lambda: packer.pack([(e.tag, e.time, e.record, e.meta) for e in events])),
        ("batch out: pickled tuples", lambda: pickle.dumps([(e.tag, e.time, e.record, e.meta) for e in events], 5)),
        ("result in: formatted items unpickled (logpipe)", lambda: decode_result(result)),
    ]
    print(f"serialisation, batch of {n} events ({len(encode_batch(0, events)) // n} B/event out, "
          f"{len(result) // n} B/event back), best of 5, ns/event in this process:")
    for name, fn in rows:
        print(f"  {name:50s} {per_event_ns(fn, n):8.0f}")


def _drain_fd(fd: int, total: int) -> None:
    buf = bytearray(1 << 20)
    got = 0
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while got < total:
            n = fh.readinto(buf)
            if not n:
                break
            got += n


def _drain_sock(sock: socket.socket, total: int) -> None:
    buf = bytearray(1 << 20)
    got = 0
    while got < total:
        n = sock.recv_into(buf)
        if not n:
            break
        got += n


def _drain_conn(conn: Any, frames: int) -> None:
    for _ in range(frames):
        conn.recv_bytes()


def transport(n: int, frames: int) -> None:
    frame = encode_batch(0, batch(n))
    header = struct.pack("<I", len(frame))
    total = frames * (len(frame) + len(header))
    ctx = multiprocessing.get_context("fork")  # a bare child that only reads: fork is fine here

    def timed(start_reader: Callable[[], Any], send: Callable[[], None], finish: Callable[[], None]) -> float:
        proc = start_reader()
        t0 = time.perf_counter()
        for _ in range(frames):
            send()
        finish()
        proc.join()
        return time.perf_counter() - t0

    def run_pipe() -> float:
        r, w = os.pipe()

        def send() -> None:
            os.write(w, header)
            view = memoryview(frame)
            while view:
                view = view[os.write(w, view):]

        def reader() -> Any:
            p = ctx.Process(target=_drain_fd, args=(r, total))
            p.start()
            return p

        try:
            return timed(reader, send, lambda: os.close(w))
        finally:
            os.close(r)

    def run_sock() -> float:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def send() -> None:
            a.sendall(header)
            a.sendall(frame)

        def reader() -> Any:
            p = ctx.Process(target=_drain_sock, args=(b, total))
            p.start()
            return p

        try:
            return timed(reader, send, a.close)
        finally:
            b.close()

    def run_conn() -> float:
        send_end, recv_end = multiprocessing.Pipe()

        def reader() -> Any:
            p = ctx.Process(target=_drain_conn, args=(recv_end, frames))
            p.start()
            return p

        return timed(reader, lambda: send_end.send_bytes(frame), send_end.close)

    best = {"os.pipe": float("inf"), "Unix socket pair (logpipe)": float("inf"), "multiprocessing.Pipe": float("inf")}
    for _ in range(3):  # interleaved, best of 3: the machine is shared
        for name, run in zip(best, (run_pipe, run_sock, run_conn)):
            best[name] = min(best[name], run())
    t_pipe, t_sock, t_conn = best.values()
    print(f"transport, {frames} frames of {len(frame) / 1024:.0f} KiB ({n} events each) to a reading child:")
    for name, t in (("os.pipe", t_pipe), ("Unix socket pair (logpipe)", t_sock), ("multiprocessing.Pipe", t_conn)):
        print(f"  {name:30s} {t / (frames * n) * 1e9:6.1f} ns/event  {total / t / 1e9:5.2f} GB/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000, help="events per batch")
    parser.add_argument("--frames", type=int, default=400)
    args = parser.parse_args()
    serialisation(args.events)
    transport(args.events, args.frames)


if __name__ == "__main__":
    main()
