"""RSS and health-check latency of a running daemon under each hostile flood (issue 12).

Each flood starts a fresh `logpipe run` (tests/support/hostile.Daemon), samples its VmRSS
and /healthz latency from outside while the attack runs, and prints one row: baseline
and peak RSS, worst /healthz latency, how long the daemon took to deal with the attack,
and what happened to it.

    python benchmarks/bench_hostile.py [--only NAME]
"""

from __future__ import annotations

import argparse
import gzip
import socket
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgpack  # noqa: E402

from tests.support.hostile import Daemon, Watch  # noqa: E402
from tests.support.net import free_port  # noqa: E402


def _beats_config(port: int) -> str:
    return (f'input {{ beats {{ host => "127.0.0.1" port => {port} max_frame_size => "8mb" }} }} '
            'output { null { id => "sink" } }')


def _forward_config(port: int) -> str:
    return f'input {{ forward {{ bind => "127.0.0.1" port => {port} }} }} output {{ null {{ id => "sink" }} }}'


def _jframe(seq: int, body: bytes = b"{}") -> bytes:
    return b"2J" + struct.pack(">II", seq, len(body)) + body


def _compressed(frames: bytes) -> bytes:
    body = zlib.compress(frames, 9)
    return b"2C" + struct.pack(">I", len(body)) + body


def _read_until_closed_or(sock: socket.socket, want: int) -> str:
    got = b""
    try:
        while len(got) < want:
            chunk = sock.recv(65536)
            if not chunk:
                return "connection closed by logpipe"
            got += chunk
    except ConnectionResetError:
        return "connection reset by logpipe"
    return "answered"


def beats_bomb(port: int) -> str:
    count = (8 * 1024 * 1024) // 12 - 1
    bomb = b"2W" + struct.pack(">I", count) + _compressed(_jframe(1) * (count - 1) + _jframe(count))
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(bomb)
        while True:
            ack = sock.recv(6)
            if struct.unpack(">I", ack[2:6])[0] == count:
                return f"{len(bomb) // 1024} KiB → {count:,} events delivered, window ACKed"


def beats_endless_window(port: int) -> str:
    doc = b'{"message":"' + b"x" * 200 + b'"}'
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"2W" + struct.pack(">I", 2**32 - 1))
        for start in range(0, 200_000, 10_000):
            sock.sendall(_compressed(b"".join(_jframe(start + i + 1, doc) for i in range(10_000))))
    return "window of 2^32-1, 200,000 events sent (streamed to the output)"


def beats_nested(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"2W\x00\x00\x00\x01" + _compressed(_compressed(_jframe(1))))
        return _read_until_closed_or(sock, 6)


def forward_gzip_members(port: int) -> str:
    member = gzip.compress(b"")
    flood = member * (30 * 1024 * 1024 // len(member))
    message = msgpack.packb(["flood", flood, {"compressed": "gzip", "chunk": "c"}], use_bin_type=True)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(message)
        return f"30 MiB of empty gzip members: {_read_until_closed_or(sock, 1)}"


def forward_gzip_million(port: int) -> str:
    message = msgpack.packb(["bomb", gzip.compress(b"\x92\x00\x80" * 1_000_000, 9),
                             {"compressed": "gzip", "chunk": "c"}], use_bin_type=True)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(message)
        outcome = _read_until_closed_or(sock, len(msgpack.packb({"ack": "c"})))
    return f"{len(message) // 1024} KiB gzip → 1,000,000 events: {outcome}"


def forward_idle(port: int) -> str:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(500)]
    time.sleep(2)
    for s in socks:
        s.close()
    return "500 idle connections held for 2 s"


FLOODS: dict[str, tuple[Callable[[int], str], Callable[[int], str]]] = {
    "beats-bomb": (_beats_config, beats_bomb),
    "beats-endless-window": (_beats_config, beats_endless_window),
    "beats-nested-compression": (_beats_config, beats_nested),
    "forward-gzip-members": (_forward_config, forward_gzip_members),
    "forward-gzip-million": (_forward_config, forward_gzip_million),
    "forward-idle-connections": (_forward_config, forward_idle),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(FLOODS))
    args = parser.parse_args()
    print("| flood | RSS before → peak (MiB) | worst /healthz (s) | took (s) | outcome |")
    print("|---|---|---|---|---|")
    for name, (config, attack) in FLOODS.items():
        if args.only and name != args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            proc = Daemon(Path(tmp), config(port))
            try:
                proc.wait_listening(port)
                baseline = proc.rss_kib() / 1024
                started = time.monotonic()
                with Watch(proc) as watch:
                    outcome = attack(port)
                    time.sleep(0.5)  # the last samples after the attack
                took = time.monotonic() - started - 0.5
                alive = "alive" if proc.alive() else "DEAD"
                print(f"| {name} | {baseline:.0f} → {watch.peak_rss_kib / 1024:.0f} | {watch.worst_health:.3f} "
                      f"| {took:.2f} | {outcome}; daemon {alive}, {watch.health_failures} failed health checks |",
                      flush=True)
            finally:
                proc.stop()


if __name__ == "__main__":
    main()
