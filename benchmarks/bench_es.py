"""Elasticsearch output throughput: documents/s from generated events into the ES stand-in.

The stand-in (tests/es_standin.py, which parses every NDJSON line and keeps every
document like a node would) runs in its own process, so the figure is logpipe's side:
building the bulk bodies (orjson, deterministic ids, @timestamp), HTTP through the
official client, and mapping the per-item outcomes, driven by the real buffer engine
(OutputRunner, memory buffer). Parts:

    build   the body builder alone, no I/O (events/s)
    client  the same documents serialised the client's way (`operations=[dict, …]`),
            to show what building the NDJSON ourselves saves
    e2e     generator → OutputRunner → ElasticsearchOutput → stand-in (docs/s)

    python benchmarks/bench_es.py [--events 300000] [--batch 1000] [--bulk-docs 5000] [--gzip]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import peak_rss_mib

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.event import Event
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput

REPO = Path(__file__).resolve().parent.parent
T0 = 1_714_979_289_123_000_000


def make_events(start: int, n: int) -> list[Event]:
    """Shaped like a grok-parsed access log line, as the generator → grok → ES pipelines carry."""
    return [
        Event("web.access", T0 + i * 1_000_000, {
            "message": f'203.0.113.{i % 250} - - [06/May/2024:07:08:09 +0000] "GET /index.html?id={i} HTTP/1.1" '
                       f'200 {i % 5000}',
            "clientip": f"203.0.113.{i % 250}", "verb": "GET", "request": f"/index.html?id={i}",
            "httpversion": "1.1", "response": 200, "bytes": i % 5000, "host": {"name": "web-1"},
        }, {"path": "/var/log/nginx/access.log", "offset": i * 100})
        for i in range(start, start + n)
    ]


def serve(port_file: str) -> None:
    """Child process: run the stand-in until killed."""
    sys.path.insert(0, str(REPO))
    from tests.standins.elasticsearch import ESStandIn

    async def main() -> None:
        es = ESStandIn(keep_actions=False)
        await es.start()
        Path(port_file).write_text(str(es.port))
        await asyncio.Event().wait()

    asyncio.run(main())


def bench_build(n: int) -> float:
    out = ElasticsearchOutput(hosts=["localhost:9200"])
    events = make_events(0, n)
    start = time.perf_counter()
    out.format(events)
    return n / (time.perf_counter() - start)


def bench_client_way(n: int) -> float:
    """What the client does with a list of action/source dicts (its NDJSON serializer)."""
    from elasticsearch.serializer import NdjsonSerializer

    out = ElasticsearchOutput(hosts=["localhost:9200"])
    events = make_events(0, n)
    start = time.perf_counter()
    ids = out._formatter._ids(events)
    ops: list[Any] = []
    for ev, doc_id in zip(events, ids, strict=True):
        ops.append({"index": {"_index": "logstash-2024.05.06", "_id": doc_id}})
        ops.append({**ev.record, "@timestamp": "2024-05-06T07:08:09.123Z"})
    NdjsonSerializer().dumps(ops)
    return n / (time.perf_counter() - start)


async def bench_e2e(url: str, n: int, batch: int, bulk_docs: int, gzip: bool,
                    state_dir: str) -> tuple[float, float]:
    """(docs/s wall clock, docs per CPU-second of this process). The stand-in runs in its
    own process and is the slower side; the CPU figure is what logpipe itself can do."""
    out = ElasticsearchOutput(hosts=[url], bulk_max_docs=bulk_docs, http_compression=gzip,
                              flush_interval=0.2, chunk_limit_records=bulk_docs, flush_thread_count=2)
    runner = OutputRunner(out, state_dir=state_dir)
    await runner.start()
    events = [make_events(i, min(batch, n - i)) for i in range(0, n, batch)]
    start = time.perf_counter()
    cpu = time.process_time()
    for part in events:
        ack = Ack()
        await runner.put(part, ack)
        ack.release()
    await runner.flush()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    delivered = runner.counts["delivered"]
    await runner.stop(10)
    assert delivered == n, f"delivered {delivered} of {n}"
    return n / elapsed, n / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per put (an input's batch)")
    parser.add_argument("--bulk-docs", type=int, default=5000, help="bulk_max_docs and chunk_limit_records")
    parser.add_argument("--gzip", action="store_true", help="http_compression => true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        child = subprocess.Popen([sys.executable, __file__, "--serve", port_file])
        try:
            while not os.path.exists(port_file) or not Path(port_file).read_text():
                time.sleep(0.05)
            url = f"http://127.0.0.1:{Path(port_file).read_text()}"
            sample = min(args.events, 100_000)
            print(f"build:  {bench_build(sample):>10,.0f} events/s (bulk body, no I/O)")
            print(f"client: {bench_client_way(sample):>10,.0f} events/s (client-side NDJSON from dicts)")
            rate, per_cpu = asyncio.run(
                bench_e2e(url, args.events, args.batch, args.bulk_docs, args.gzip, tmp))
            rss = peak_rss_mib()
            print(f"e2e:    {rate:>10,.0f} docs/s into the stand-in ({args.events:,} events, "
                  f"bulk {args.bulk_docs}, gzip {args.gzip}); peak RSS {rss:.0f} MB")
            print(f"        {per_cpu:>10,.0f} docs per CPU-second of logpipe's process "
                  f"({1e6 / per_cpu:.1f} µs/doc: buffer engine, bulk body, HTTP client, outcomes)")
        finally:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
