"""kubernetes_metadata against the API server stand-in: names, watch, faults, shapes, hints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logpipe.event import Event
from logpipe.registry import lookup
from logpipe_plugins.filters.kubernetes_metadata import UNAVAILABLE_TAG, KubernetesFilter, KubernetesMetadataFilter
from logpipe_plugins.filters.kubernetes_metadata.names import parse_name
from tests.standins.kubernetes import KubeStandIn, container_id, kubeconfig, make_pod
from tests.support.net import free_port

FAST = {"startup_wait": 5.0, "max_backoff": 0.2, "watch_idle_timeout": 5.0, "node_name": "node-1"}


def link(pod: str, ns: str = "default", container: str = "app") -> str:
    return f"/var/log/containers/{pod}_{ns}_{container}-{container_id(pod, container)}.log"


def event(pod: str, ns: str = "default", container: str = "app", **record: Any) -> Event:
    return Event("kube.var.log.containers." + link(pod, ns, container).rsplit("/", 1)[1], time.time_ns(),
                 {"log": "hello", "stream": "stdout", **record})


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def test_names_from_both_kubelet_paths_and_the_fluentd_tag() -> None:
    cid = "0123456789abcdef" * 4
    ref = parse_name(f"/var/log/containers/web-7d4b9c-x2x9k_shop_nginx-{cid}.log")
    assert ref is not None and (ref.pod, ref.namespace, ref.container, ref.container_id) == (
        "web-7d4b9c-x2x9k", "shop", "nginx", cid)
    tag = parse_name(f"kube.var.log.containers.my.dotted.pod_ns_c-{cid}.log")
    assert tag is not None and tag.pod == "my.dotted.pod"
    pods = parse_name("/var/log/pods/shop_web-0_6f1c7c3e-1111-4222-8333-444455556666/nginx/0.log.20240501-101010.gz")
    assert pods is not None and (pods.namespace, pods.pod, pods.container, pods.pod_uid) == (
        "shop", "web-0", "nginx", "6f1c7c3e-1111-4222-8333-444455556666")
    assert parse_name("/var/log/syslog") is None


def test_both_names_are_registered() -> None:
    assert lookup("filter", "kubernetes") is KubernetesFilter
    assert lookup("filter", "kubernetes_metadata") is KubernetesMetadataFilter


async def test_watch_fills_cache_and_events_get_fluentd_shape() -> None:
    async with KubeStandIn(token=None) as api:
        api.add_pod(make_pod("web-1", labels={"app": "web", "app.kubernetes.io/name": "web"},
                             annotations={"team": "shop", "secret/x": "no"}))
        api.add_pod(make_pod("other", node="node-2"))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, annotation_match=["^team$"], **FAST)
        await f.start()
        try:
            assert any("fieldSelector=spec.nodeName%3Dnode-1" in r or "spec.nodeName=node-1" in r
                       for r in api.requests)
            assert f.cache.get("default", "other") is None
            (out,) = f.filter([event("web-1")])
            pod = api.pods[("default", "web-1")]
            k8s = out.record["kubernetes"]
            assert k8s == {
                "pod_name": "web-1", "namespace_name": "default", "container_name": "app",
                "pod_id": pod["metadata"]["uid"], "container_image": "docker.io/library/nginx:1.27",
                "container_image_id": pod["status"]["containerStatuses"][0]["imageID"], "host": "node-1",
                "labels": {"app": "web", "app_kubernetes_io/name": "web"}, "annotations": {"team": "shop"},
                "owner": {"kind": "ReplicaSet", "name": "web-5d9c7b8f6"},
            }
            assert out.record["docker"] == {"container_id": container_id("web-1", "app")}
            assert "tags" not in out.record
            # a pod created later arrives through the watch
            api.add_pod(make_pod("web-2", labels={"app": "web2"}))
            await until(lambda: f.cache.get("default", "web-2") is not None)
            (late,) = f.filter([event("web-2")])
            assert late.record["kubernetes"]["labels"] == {"app": "web2"}
        finally:
            await f.close()


async def test_ecs_shape_as_filebeat_writes_it() -> None:
    async with KubeStandIn(token=None) as api:
        api.add_pod(make_pod("web-5d9c7b8f6-abcde", labels={"app": "web"}))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, ecs_compatibility="v8", **FAST)
        await f.start()
        try:
            (out,) = f.filter([event("web-5d9c7b8f6-abcde")])
        finally:
            await f.close()
    k8s = out.record["kubernetes"]
    assert k8s["pod"]["name"] == "web-5d9c7b8f6-abcde" and "uid" in k8s["pod"]
    assert k8s["namespace"] == "default" and k8s["node"] == {"name": "node-1"}
    assert k8s["labels"] == {"app": "web"} and k8s["container"] == {"name": "app"}
    assert k8s["replicaset"] == {"name": "web-5d9c7b8f6"} and k8s["deployment"] == {"name": "web"}
    assert out.record["container"]["id"] == container_id("web-5d9c7b8f6-abcde", "app")
    assert out.record["container"]["image"] == {"name": "docker.io/library/nginx:1.27"}
    assert out.record["container"]["runtime"] == "containerd"


async def test_api_down_names_only_tagged_counted_and_never_waits() -> None:
    f = KubernetesMetadataFilter(kubernetes_url=f"http://127.0.0.1:{free_port()}", startup_wait=0.3,
                                 max_backoff=0.2, node_name="node-1")
    await f.start()
    try:
        begin = time.monotonic()
        out = f.filter([event("web-1") for _ in range(1000)])
        assert time.monotonic() - begin < 0.5
        assert len(out) == 1000
        assert out[0].record["kubernetes"] == {"pod_name": "web-1", "namespace_name": "default",
                                               "container_name": "app"}
        assert out[0].record["tags"] == [UNAVAILABLE_TAG]
        assert f.m_unavailable.value >= 1000
        assert f.watcher is not None and not f.watcher.healthy
    finally:
        await f.close()


async def test_gone_relists_dropped_streams_reconnect_and_errors_back_off() -> None:
    async with KubeStandIn(token=None) as api:
        api.add_pod(make_pod("a"))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, **FAST)
        await f.start()
        w = f.watcher
        assert w is not None
        try:
            await until(lambda: api.watches_opened == 1)
            api.bookmark()
            api.add_pod(make_pod("b"))
            await until(lambda: f.cache.get("default", "b") is not None)
            assert w.resource_version == str(api.rv)
            api.compact()  # running watch: ERROR 410 → relist
            await until(lambda: w.relists == 2)
            api.fail_next(429)
            api.fail_next(503)
            api.drop_watches()
            await until(lambda: api.watches_opened >= 3)
            api.add_pod(make_pod("c"))
            await until(lambda: f.cache.get("default", "c") is not None)
            # restart of the API server: the stream breaks, the filter reconnects from its version
            await api.stop()
            api.add_pod(make_pod("d"))
            await api.start()
            await until(lambda: f.cache.get("default", "d") is not None)
        finally:
            await f.close()


async def test_token_file_reread_after_rotation(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("old")
    async with KubeStandIn(token="new") as api:
        api.add_pod(make_pod("a"))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, bearer_token_file=str(token), **{
            **FAST, "startup_wait": 0.3})
        await f.start()
        try:
            assert f.cache.get("default", "a") is None  # 401 with the old token
            token.write_text("new")
            import os

            os.utime(token, (time.time() + 5, time.time() + 5))
            await until(lambda: f.cache.get("default", "a") is not None)
        finally:
            await f.close()


async def test_forbidden_then_allowed() -> None:
    async with KubeStandIn(token=None) as api:
        api.forbidden = True
        api.add_pod(make_pod("a"))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, **{**FAST, "startup_wait": 0.3})
        await f.start()
        try:
            assert f.filter([event("a")])[0].record["tags"] == [UNAVAILABLE_TAG]
            api.forbidden = False
            await until(lambda: f.cache.get("default", "a") is not None)
        finally:
            await f.close()


async def test_get_on_miss_is_bounded_and_fills_the_cache() -> None:
    async with KubeStandIn(token=None) as api:
        for i in range(20):
            api.add_pod(make_pod(f"p{i}"))
        api.delay = 0.05
        f = KubernetesMetadataFilter(kubernetes_url=api.url, watch=False, request_concurrency=2,
                                     max_pending_requests=5, **FAST)
        await f.start()
        try:
            out = f.filter([event(f"p{i}") for i in range(20)])
            assert all(UNAVAILABLE_TAG in e.record["tags"] for e in out)
            assert f.watcher is not None and len(f.watcher.requests) == 5  # the rest: names only, asked later
            await until(lambda: not f.watcher.requests)  # type: ignore[union-attr]
            assert sum(1 for r in api.requests if "/pods/" in r) == 5
            for _ in range(4):  # each batch asks for at most max_pending more
                await until(lambda: not f.watcher.requests)  # type: ignore[union-attr]
                f.filter([event(f"p{i}") for i in range(20)])
            await until(lambda: len(f.cache) == 20)
        finally:
            await f.close()


async def test_deleted_pod_keeps_metadata_for_its_last_lines() -> None:
    async with KubeStandIn(token=None) as api:
        api.add_pod(make_pod("job-x", labels={"job": "x"}, owner=("Job", "job-x")))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, deleted_pod_ttl=0.5, **FAST)
        await f.start()
        try:
            api.delete_pod("default", "job-x")
            await until(lambda: (p := f.cache.get("default", "job-x")) is not None and p.deleted_at is not None)
            (late,) = f.filter([event("job-x")])
            assert late.record["kubernetes"]["labels"] == {"job": "x"}
            assert late.record["kubernetes"]["owner"] == {"kind": "Job", "name": "job-x"}
            await asyncio.sleep(0.6)  # the TTL itself is what is tested
            f.cache.expire()
            assert f.cache.get("default", "job-x") is None
        finally:
            await f.close()


async def test_hints_exclude_and_parser() -> None:
    async with KubeStandIn(token=None) as api:
        api.add_pod(make_pod("noisy", annotations={"logpipe.io/exclude": "true"}))
        api.add_pod(make_pod("web", annotations={"fluentbit.io/parser": "apache2"}))
        api.add_pod(make_pod("kv", annotations={"logpipe.io/parser-app": "%{WORD:verb} %{NUMBER:code:int}"}))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, **FAST)
        await f.start()
        try:
            line = '1.2.3.4 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"'
            out = f.filter([event("noisy"), event("web", log=line), event("kv", log="GET 200"),
                            event("kv", log="nope")])
        finally:
            await f.close()
    assert [e.record["kubernetes"]["pod_name"] for e in out] == ["web", "kv", "kv"]
    assert out[0].record.get("code") == 200 or out[0].record.get("response") in ("200", 200)
    assert out[1].record["verb"] == "GET" and out[1].record["code"] == 200
    assert out[2].record["tags"] == ["_grokparsefailure"]


async def test_kubeconfig_outside_a_cluster(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    async with KubeStandIn(token="t0k") as api:
        api.add_pod(make_pod("a"))
        config = kubeconfig(str(tmp_path / "kc"), api.url, "t0k")
        monkeypatch.setenv("KUBECONFIG", config)
        f = KubernetesMetadataFilter(**FAST)
        await f.start()
        try:
            assert f.cache.get("default", "a") is not None
        finally:
            await f.close()


async def test_explicit_url_wins_over_in_cluster_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "192.0.2.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    async with KubeStandIn(token=None) as api:
        api.add_pod(make_pod("a"))
        f = KubernetesMetadataFilter(kubernetes_url=api.url, **FAST)
        await f.start()
        try:
            assert f.cache.get("default", "a") is not None
        finally:
            await f.close()
