"""The API server stand-in is faithful: the real kubectl (v1.33) lists and watches pods from it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

from tests.standins.kubernetes import KubeStandIn, kubeconfig, make_pod
from tests.support.k8s_tools import tool
from tests.support.net import make_certs


def tls_api(tmp_path: Path) -> KubeStandIn:
    return KubeStandIn(tls=make_certs(tmp_path))


def config_for(api: KubeStandIn, tmp_path: Path, token: str | None = None) -> str:
    assert api.tls is not None
    return kubeconfig(str(tmp_path / "config"), api.url, token or api.token, ca_file=api.tls[0])


async def kubectl(config: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(tool("kubectl")), "--kubeconfig", config, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": os.path.dirname(config)})


async def test_kubectl_lists_pods_as_json(tmp_path: Path) -> None:
    async with tls_api(tmp_path) as api:
        api.add_pod(make_pod("web-1", labels={"app": "web"}))
        api.add_pod(make_pod("db-0", "data", labels={"app": "db"}))
        config = config_for(api, tmp_path)
        proc = await kubectl(config, "get", "pods", "-A", "-o", "json")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        doc = orjson.loads(out)
        assert sorted(p["metadata"]["name"] for p in doc["items"]) == ["db-0", "web-1"]
        proc = await kubectl(config, "get", "pods", "-n", "default", "-l", "app=web", "-o", "name")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert out.decode().split() == ["pod/web-1"], err.decode()


async def test_kubectl_watch_sees_added_and_deleted_pods(tmp_path: Path) -> None:
    async with tls_api(tmp_path) as api:
        api.add_pod(make_pod("web-1"))
        config = config_for(api, tmp_path)
        proc = await kubectl(config, "get", "pods", "--watch", "--output-watch-events", "-o",
                             "jsonpath={.type} {.object.metadata.name}{\"\\n\"}")
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert first.decode().split() == ["ADDED", "web-1"]
        api.add_pod(make_pod("web-2"))
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split() == ["ADDED", "web-2"]
        api.delete_pod("default", "web-1")
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split() == ["DELETED", "web-1"]
        proc.kill()
        await proc.wait()
        assert any("watch=true" in r for r in api.requests)


async def test_kubectl_is_refused_without_the_token(tmp_path: Path) -> None:
    async with tls_api(tmp_path) as api:
        config = config_for(api, tmp_path, "wrong")
        proc = await kubectl(config, "get", "pods", "-o", "json")
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode != 0
        assert b"Unauthorized" in err or b"must be logged in" in err
