"""A node's shipper: tail /var/log/containers (CRI) → kubernetes_metadata (cache warm) → null.

--pods files in the kubelet layout (pods/<ns>_<pod>_<uid>/app/0.log, links in containers/),
--lines CRI lines spread over them (one in 20 a P+F pair, joined); the API server stand-in
(tests/standins/kubernetes.py) serves --cached pods on this node, listed before the clock
starts (cache warm). Measures events/s end to end and the process's peak RSS.

    python benchmarks/bench_kubernetes.py [--lines 1000000] [--pods 500] [--cached 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from harness import peak_rss_mib, run_loop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logpipe import CallbackOutput  # noqa: E402
from logpipe.event import Event  # noqa: E402
from logpipe.pipeline import Pipeline  # noqa: E402
from logpipe.process import tune_gc  # noqa: E402
from tests.standins.kubernetes import KubeStandIn, container_id, make_pod  # noqa: E402

CONFIG = """
input {{ tail {{ path => "{root}/containers/*.log" format => "cri" read_from_head => true
                tag => "kube.*" pos_file => "{root}/pos" }} }}
filter {{ kubernetes_metadata {{ kubernetes_url => "{url}" node_name => "node-1" }} }}
"""


def write_node(root: Path, pods: list[dict], lines: int, files: int) -> int:
    (root / "containers").mkdir(parents=True)
    per_file = lines // files
    events = 0
    for pod in pods[:files]:
        meta = pod["metadata"]
        directory = root / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / "app"
        directory.mkdir(parents=True)
        log = directory / "0.log"
        out = []
        for i in range(per_file):
            stamp = f"2024-05-01T10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}456789Z"
            if i % 20 == 0:
                out.append(f"{stamp} stdout P GET /api/v1/items/{i} 200 ")
                out.append(f"{stamp} stdout F 12ms user=alice")
            else:
                out.append(f"{stamp} stdout F GET /api/v1/items/{i} 200 12ms user=alice trace=abcdef0123")
            events += 1
        log.write_text("\n".join(out) + "\n")
        cid = container_id(meta["name"], "app")
        (root / "containers" / f"{meta['name']}_{meta['namespace']}_app-{cid}.log").symlink_to(log)
    return events


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--pods", type=int, default=500, help="pods whose files are read")
    parser.add_argument("--cached", type=int, default=1000, help="pods on the node (in the cache)")
    parser.add_argument("--no-filter", action="store_true", help="tail → cri → null only (the filter's share)")
    args = parser.parse_args()
    api = KubeStandIn(token=None)
    pods = [make_pod(f"app-{i}", f"ns-{i % 20}", labels={"app": f"app-{i}", "tier": "web",
                                                        "app.kubernetes.io/version": "1.2.3"},
                     annotations={"deployment.kubernetes.io/revision": "3"})
            for i in range(max(args.cached, args.pods))]
    for pod in pods:
        api.add_pod(pod)
    await api.start()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = write_node(root, pods, args.lines, args.pods)
        seen = 0
        done = asyncio.Event()

        def count(events: list[Event]) -> None:
            nonlocal seen
            seen += len(events)
            if seen >= total:
                done.set()

        config = CONFIG.format(root=root, url=api.url)
        if args.no_filter:
            config = config[:config.index("filter")]
        pipeline = Pipeline.from_string(config,
                                        outputs=[CallbackOutput(count, id="count")], state_dir=tmp)
        tune_gc()
        await pipeline.start()  # the filter's start lists the node's pods: the cache is warm here
        flt = pipeline.built.filters[0] if pipeline.built.filters else None
        cached = len(flt.cache) if flt is not None else 0  # type: ignore[attr-defined]
        started = time.perf_counter()
        await done.wait()
        await pipeline.flush()
        elapsed = time.perf_counter() - started
        enriched = flt.m_enriched.value if flt is not None else 0  # type: ignore[attr-defined]
        await pipeline.stop()
    await api.stop()
    print(f"tail→cri→kubernetes_metadata→null: {total} events from {args.pods} pods ({cached} cached) in "
          f"{elapsed:.2f}s = {total / elapsed:,.0f} events/s, {enriched / total:.0%} enriched, "
          f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    run_loop(main)
