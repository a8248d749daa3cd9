"""Network inputs throughput: syslog over TCP and UDP, http JSON batches with acks, and RSS
under a flood.

Senders run in their own processes (pre-encoded data, as fast as the socket takes it);
the figure is measured on the receiving side, from the first event to the last: framing,
RFC 3164 parsing and Event building on one core. The http client keeps `--inflight`
requests of `--batch` events open and each is answered only after its ack (acks complete
at once here: the input's cost, not an output's).

    python benchmarks/bench_network.py [--mode syslog-tcp|syslog-udp|http|flood] [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from typing import Any

from harness import peak_rss_mib, run_loop

from logpipe.plugin import Input, InputContext

LINE = "<34>Oct 11 22:14:15 web-{i} sshd[{p}]: Failed password for invalid user admin from 203.0.113.{h} port 22"


def sender(mode: str, port: int, events: int, batch: int, inflight: int) -> None:
    """The sending process."""
    import socket

    if mode == "syslog-tcp":
        data = "".join(LINE.format(i=i % 50, p=i % 30000, h=i % 250) + "\n" for i in range(events)).encode()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(data)
        return
    if mode == "syslog-udp":
        lines = [LINE.format(i=i % 50, p=i % 30000, h=i % 250).encode() for i in range(events)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
            for line in lines:
                s.sendto(line, ("127.0.0.1", port))
        return
    if mode == "http":
        import aiohttp
        import orjson

        body = orjson.dumps([{"message": f"GET /index.html?id={i} HTTP/1.1", "status": 200, "bytes": i}
                             for i in range(batch)])

        async def post_all() -> None:
            async with aiohttp.ClientSession() as session:
                todo = events // batch

                async def worker() -> None:
                    nonlocal todo
                    while todo > 0:
                        todo -= 1
                        async with session.post(f"http://127.0.0.1:{port}/bench", data=body,
                                                headers={"Content-Type": "application/json"}) as r:
                            assert r.status == 200, r.status

                await asyncio.gather(*(worker() for _ in range(inflight)))

        asyncio.run(post_all())
        return
    if mode == "flood":
        line = (LINE.format(i=1, p=1, h=1) + " " + "x" * 900 + "\n").encode() * 64
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(batch)]
        for s in socks:
            s.setblocking(False)
        deadline = time.time() + events / 1000
        while time.time() < deadline:
            for s in socks:
                with contextlib.suppress(BlockingIOError):
                    s.send(line)
            time.sleep(0.001)
        return
    raise SystemExit(f"unknown mode {mode}")


async def measure(inp: Input, mode: str, events: int, batch: int, inflight: int, slow: float = 0.0) -> dict[str, Any]:
    count = 0
    first = 0.0
    last = 0.0
    cpu0 = 0.0
    cpu = [0.0]
    done = asyncio.Event()

    async def emit(items: list[Any], on_ack: Any) -> None:
        nonlocal count, first, last, cpu0
        if not first:
            first = time.perf_counter()
            cpu0 = time.process_time()
        count += len(items)
        last = time.perf_counter()
        cpu[0] = time.process_time() - cpu0
        if on_ack is not None:
            on_ack()
        if count >= events:
            done.set()
        if slow:
            await asyncio.sleep(slow)

    await inp.start()
    port = inp.bound_port  # type: ignore[attr-defined]
    task = asyncio.create_task(inp.run(InputContext(emit, "/tmp", "bench")))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--send", mode, "--port", str(port), "--events", str(events),
        "--batch", str(batch), "--inflight", str(inflight), stdout=subprocess.DEVNULL)
    await proc.wait()
    if mode in ("syslog-udp", "flood"):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 2.0)
    else:
        await asyncio.wait_for(done.wait(), 120)
    kernel = None
    if mode == "syslog-udp":
        from logpipe.helpers.udp import kernel_udp_drops

        kernel = kernel_udp_drops(inp._udp._inode)  # type: ignore[attr-defined]  # now, not at the last poll
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await inp.close()
    elapsed = (last - first) or 1e-9
    from logpipe.metrics import REGISTRY

    labels = {"input": inp.id}
    drops = {"queue_drops": int(REGISTRY.value("logpipe_input_udp_dropped_total", **labels)),
             "kernel_drops": kernel, "sent": events} \
        if mode == "syslog-udp" else {}
    return {**drops, "events": count, "seconds": round(elapsed, 3), "rate": int(count / elapsed),
            "per_cpu_second": int(count / (cpu[0] or 1e-9)),
            "peak_rss_mib": round(peak_rss_mib(), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="syslog-tcp", choices=("syslog-tcp", "syslog-udp", "http", "flood"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--send")
    ap.add_argument("--port", type=int)
    args = ap.parse_args()
    if args.send:
        sender(args.send, args.port, args.events, args.batch, args.inflight)
        return
    from logpipe_plugins.inputs.http import HttpInput
    from logpipe_plugins.inputs.syslog import SyslogInput

    async def go() -> dict[str, Any]:
        if args.mode == "syslog-tcp":
            return await measure(SyslogInput(host="127.0.0.1", port=0, transport={"@args": "tcp"}, tag="bench"),
                                 args.mode, args.events, args.batch, args.inflight)
        if args.mode == "syslog-udp":
            return await measure(SyslogInput(host="127.0.0.1", port=0, transport={"@args": "udp"}, tag="bench",
                                             receive_buffer_bytes=16 << 20, queue_size=100_000),
                                 args.mode, args.events, args.batch, args.inflight)
        if args.mode == "http":
            return await measure(HttpInput(host="127.0.0.1", port=0), args.mode, args.events, args.batch,
                                 args.inflight)
        # flood: `--batch` connections push ~1 KiB lines for events/1000 seconds into a pipeline that
        # takes a batch every 50 ms; RSS must stay near the bounds (max_bytes_held + read-ahead).
        inp = SyslogInput(host="127.0.0.1", port=0, transport={"@args": "tcp"}, tag="bench",
                          max_bytes_held=16 << 20)
        result = await measure(inp, "flood", args.events, args.batch, args.inflight, slow=0.05)
        result["max_bytes_held_mib"] = 16
        return result

    print(run_loop(go))


if __name__ == "__main__":
    main()
