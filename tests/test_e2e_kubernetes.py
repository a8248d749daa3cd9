"""End to end on a node's layout: kubelet's /var/log/pods files and /var/log/containers links in a
temp dir, the tail input (auto: CRI and docker per file) → kubernetes_metadata (stand-in API server)
→ a collecting output. Partials and 16 KiB splits, kubelet rotation with gzip, a pod deleted while
its last lines are still being read, the API server restarting: every line once, joined, with
the right pod's metadata."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson

from logpipe.pipeline import Pipeline
from tests.standins.kubernetes import KubeStandIn, container_id, make_pod
from tests.support.pipeline import CollectOutput


class Node:
    """/var/log of one node, written as containerd (CRI) and dockerd (json-file) write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "containers").mkdir(parents=True)
        self.files: dict[str, Path] = {}

    def start_container(self, pod: dict, container: str = "app") -> Path:
        meta = pod["metadata"]
        pod_dir = self.root / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container
        pod_dir.mkdir(parents=True)
        log = pod_dir / "0.log"
        log.touch()
        cid = container_id(meta["name"], container)
        (self.root / "containers" / f"{meta['name']}_{meta['namespace']}_{container}-{cid}.log").symlink_to(log)
        self.files[meta["name"]] = log
        return log

    def remove_pod(self, pod: dict) -> None:
        meta = pod["metadata"]
        shutil.rmtree(self.root / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}")
        for link in (self.root / "containers").glob(f"{meta['name']}_*"):
            link.unlink()

    def rotate(self, name: str, stamp: str) -> None:
        """kubelet: rename 0.log to 0.log.<stamp>, gzip the previous rotated file, new 0.log."""
        log = self.files[name]
        previous = sorted(p for p in log.parent.glob("0.log.*") if not p.name.endswith(".gz"))
        os.rename(log, log.with_name(f"0.log.{stamp}"))
        log.touch()
        for old in previous:
            with open(old, "rb") as src, gzip.open(f"{old}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            old.unlink()


def cri(text: str, stream: str = "stdout", partial: bool = False) -> bytes:
    return f"2024-05-01T10:00:00.123456789Z {stream} {'P' if partial else 'F'} {text}\n".encode()


def docker(text: str, stream: str = "stdout") -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": "2024-05-01T10:00:01.5Z"}) + b"\n"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_node_end_to_end(tmp_path: Path) -> None:
    node = Node(tmp_path / "var-log")
    api = KubeStandIn(token=None)
    await api.start()
    web = api.add_pod(make_pod("web-1", labels={"app": "web"}))
    job = api.add_pod(make_pod("job-1", labels={"app": "batch"}, owner=("Job", "job-1"), image="busybox:1.36"))
    web_log = node.start_container(web)
    job_log = node.start_container(job)
    config = f"""
    input {{ file {{
        path => "{node.root}/containers/*.log"  format => "auto"  start_position => "beginning"
        stat_interval => 0.02  discover_interval => 2  rotate_wait => 0.5
    }} }}
    filter {{ kubernetes_metadata {{
        kubernetes_url => "{api.url}"  node_name => "node-1"  max_backoff => 0.2  deleted_pod_ttl => 60
    }} }}
    """
    sink = CollectOutput()
    pipeline = Pipeline.from_string(config, outputs=[sink], state_dir=str(tmp_path / "state"))
    expected: dict[str, str] = {}  # joined text → pod name
    try:
        await pipeline.start()
        big = "x" * 16384
        for i in range(50):
            append(web_log, cri(f"web {i} part a,", partial=True) + cri(f"web {i} err", "stderr")
                   + cri(f" part b {i}"))
            expected[f"web {i} part a, part b {i}"] = "web-1"
            expected[f"web {i} err"] = "web-1"
            append(job_log, docker(big) + docker(f"{i} end\n"))
            expected[f"{big}{i} end"] = "job-1"
        await until(lambda: len(sink.events) >= 150)
        # kubelet rotates web-1 twice (the second rotation gzips the first rotated file)
        for generation in range(2):
            append(web_log, b"".join(cri(f"web g{generation} {i}") for i in range(100)))
            expected.update({f"web g{generation} {i}": "web-1" for i in range(100)})
            node.rotate("web-1", f"20240501-10000{generation}")
            append(web_log, cri(f"web after rotation {generation}"))
            expected[f"web after rotation {generation}"] = "web-1"
            # kubelet checks sizes every 10 s: a rotated file is found before it is rotated again
            await until(lambda g=generation: any(e.record.get("message") == f"web after rotation {g}"
                                                 for e in sink.events))
        # the Job finishes: its pod is deleted from the API, its last lines are still read, then kubelet
        # removes its directory
        api.delete_pod("default", "job-1")
        append(job_log, docker("last words\n", "stderr"))
        expected["last words"] = "job-1"
        await until(lambda: any(e.record.get("message") == "last words" for e in sink.events))
        node.remove_pod(job)
        # the API server restarts; a pod scheduled meanwhile is learnt from the resumed watch / a GET
        await api.stop()
        web2 = api.add_pod(make_pod("web-2", labels={"app": "web2"}))
        await api.start()
        web2_log = node.start_container(web2)
        append(web2_log, cri("hello from web-2 ", partial=True) + cri("joined"))
        expected["hello from web-2 joined"] = "web-2"
        try:
            await until(lambda: len(sink.events) >= len(expected))
        except TimeoutError:
            got = {e.record["message"] for e in sink.events}
            print("MISSING", len(sink.events), len(expected), [t[:40] for t in expected if t not in got][:10])
            raise
        await asyncio.sleep(0.3)  # nothing else may arrive (duplicates would)
    finally:
        await pipeline.stop()
        await api.stop()

    texts = [e.record["message"] for e in sink.events]
    assert sorted(texts) == sorted(expected), "every line exactly once, partials joined"
    by_text = {e.record["message"]: e for e in sink.events}
    for text, pod in expected.items():
        k8s = by_text[text].record["kubernetes"]
        assert k8s["pod_name"] == pod
        assert by_text[text].record["docker"]["container_id"] == container_id(pod, "app")
    assert by_text["last words"].record["kubernetes"]["labels"] == {"app": "batch"}
    assert by_text["last words"].record["kubernetes"]["container_image"] == "busybox:1.36"
    assert by_text["web 3 err"].record["stream"] == "stderr"
    assert by_text["web 0 part a, part b 0"].time == 1714557600_123456789
    web2_event = by_text["hello from web-2 joined"]
    labelled = web2_event.record["kubernetes"].get("labels")
    # web-2's first line may be read before the watch has resumed: then it has its names and is tagged
    assert labelled == {"app": "web2"} or "_kubernetes_metadata_unavailable" in web2_event.record["tags"]
