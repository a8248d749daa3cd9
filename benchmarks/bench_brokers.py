"""Broker round trip: shipper → Redis or RabbitMQ → indexer → null, events/s.

A real redis-server (Debian's) is started on a free port. The shipper — logpipe's redis
output, in its own process as on a real shipper host — writes `--events` events in
chunks of `--chunk`; the indexer — the redis input in this process — reads them
(reliable list, or a stream consumer group), acknowledges every batch at once (the null
output) and so commits (LREM / XACK) as in production. The figure is events / seconds
from the shipper's first write to the indexer's last event, and, since wall time on a shared
machine depends on the neighbours, the CPU seconds each side used (events per CPU second;
the shipper's include its start-up and the harness building the events).

`--mode rabbitmq`: a real rabbitmq-server node (Debian's, booted as the tests boot it,
tests/support/rabbitmq_server.py); the shipper is the rabbitmq output (persistent messages,
publisher confirms: a chunk counts only once the broker confirmed it) to a direct exchange,
the indexer the rabbitmq input on a durable queue (prefetch `--prefetch`, basic.ack per
acknowledged run of batches).

    python benchmarks/bench_brokers.py [--mode list|stream|rabbitmq] [--events 1000000] [--chunk 2000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import peak_rss_mib, run_loop

from logpipe.event import Event
from logpipe.plugin import InputContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ship(port: int, mode: str, events: int, chunk: int) -> None:
    """The shipper process: the output's write, chunk after chunk."""
    from logpipe_plugins.outputs.rabbitmq import RabbitMQOutput
    from logpipe_plugins.outputs.redis import RedisOutput

    async def main() -> None:
        out: Any
        if mode == "rabbitmq":
            out = RabbitMQOutput(port=port, exchange="bench", exchange_type="direct", key="bench")
        else:
            out = RedisOutput(port=port, key="bench", data_type=mode, stream_maxlen=0)
        now = time.time_ns()
        for start in range(0, events, chunk):
            batch = [Event("bench", now, {"message": f"GET /index.html?id={i} HTTP/1.1", "status": 200,
                                          "bytes": i % 5000, "host": {"name": "web-1"}, "seq": i})
                     for i in range(start, min(events, start + chunk))]
            assert await out.write(out.format(batch) if mode == "rabbitmq" else batch) is None
        await out.close()

    run_loop(main)


async def rabbitmq_queue_ready(port: int) -> None:
    """The input declares and binds its queue when it connects: wait for that before shipping."""
    import aio_pika

    async with await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{port}/") as conn:
        for _ in range(300):
            try:
                await (await conn.channel()).declare_queue("bench", durable=True, passive=True)
                return
            except aio_pika.exceptions.ChannelNotFoundEntity:
                await asyncio.sleep(0.05)
    raise RuntimeError("the rabbitmq input never declared its queue")


async def consume(port: int, mode: str, events: int, batch: int) -> tuple[float, int]:
    from logpipe_plugins.inputs.rabbitmq import RabbitMQInput
    from logpipe_plugins.inputs.redis import RedisInput

    inp: Any
    if mode == "rabbitmq":
        inp = RabbitMQInput(port=port, queue="bench", durable=True, exchange="bench", exchange_type="direct",
                            key="bench", batch_size=batch, prefetch_count=args.prefetch)
    else:
        inp = RedisInput(port=port, key="bench", data_type=mode, batch_count=batch, consumer="bench")
    count = 0
    done = asyncio.Event()
    first: list[float] = []

    async def emit(evs: list[Event], on_ack: Any) -> None:
        nonlocal count
        if not first:
            first.append(time.perf_counter())
        count += len(evs)
        if on_ack is not None:
            on_ack()
        if count >= events:
            done.set()

    cpu0 = _cpu(resource.RUSAGE_SELF)
    task = asyncio.create_task(inp.run(InputContext(emit, "/tmp", "bench")))
    if mode == "rabbitmq":
        await rabbitmq_queue_ready(port)
    shipper = multiprocessing.get_context("spawn").Process(target=ship, args=(port, mode, events, args.chunk))
    t0 = time.perf_counter()
    shipper.start()
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - t0
    cpu["indexer"] = _cpu(resource.RUSAGE_SELF) - cpu0
    shipper.join()
    cpu["shipper"] = _cpu(resource.RUSAGE_CHILDREN)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await inp.close()
    return elapsed, count


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds of each side: on a shared machine events per CPU second is the steadier figure.
cpu: dict[str, float] = {}


def main() -> None:
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("list", "stream", "rabbitmq"), default="list")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--prefetch", type=int, default=4000, help="rabbitmq input prefetch_count")
    args = parser.parse_args()
    if args.mode == "rabbitmq":
        bench_rabbitmq()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        elapsed, count = run_loop(lambda: consume(port, args.mode, args.events, args.batch))
        print(f"redis {args.mode}: {count} events in {elapsed:.2f}s = {count / elapsed:,.0f} events/s "
              f"(chunk {args.chunk}, batch_count {args.batch}); indexer peak RSS {peak_rss_mib():.0f} MiB; "
              f"CPU: indexer {cpu['indexer']:.2f}s = {count / cpu['indexer']:,.0f} events/CPU-s, "
              f"shipper {cpu['shipper']:.2f}s = {count / cpu['shipper']:,.0f} events/CPU-s")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def bench_rabbitmq() -> None:
    from tests.support.rabbitmq_server import AVAILABLE, start_rabbitmq

    if not AVAILABLE:
        sys.exit("rabbitmq-server is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="bench-rabbitmq-"))
    server = start_rabbitmq(workdir)
    print(f"rabbitmq-server booted in {server.boot_seconds:.1f}s")
    try:
        elapsed, count = run_loop(lambda: consume(server.port, "rabbitmq", args.events, args.batch))
        print(f"rabbitmq: {count} events in {elapsed:.2f}s = {count / elapsed:,.0f} events/s "
              f"(chunk {args.chunk}, batch_size {args.batch}, prefetch {args.prefetch}, persistent, confirms); "
              f"indexer peak RSS {peak_rss_mib():.0f} MiB")
    finally:
        server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


args: argparse.Namespace

if __name__ == "__main__":
    main()
