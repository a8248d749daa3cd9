"""The pods this node runs, as the filter needs them, kept by (namespace, name).

Filled by the watch (and by single GETs on a miss); read by the filter without
awaiting anything. A deleted pod stays for `deleted_ttl` seconds after the last
event that used it, so a finished Job's last lines, read after the DELETED event,
still get their labels; entries beyond `size` go oldest first (deleted ones first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ContainerInfo:
    image: str | None = None
    image_id: str | None = None
    container_id: str | None = None  # without the runtime:// prefix
    runtime: str | None = None


@dataclass(slots=True)
class PodMeta:
    name: str
    namespace: str
    uid: str | None
    node: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    owner: tuple[str, str] | None
    containers: dict[str, ContainerInfo]
    resource_version: str = ""
    deleted_at: float | None = None
    last_used: float = field(default_factory=time.monotonic)
    #: Shaped output per (container, shape): built once, copied per event.
    shaped: dict[Any, Any] = field(default_factory=dict)


def pod_meta(obj: dict[str, Any]) -> PodMeta:
    """From a Pod object of the REST API (v1)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    containers: dict[str, ContainerInfo] = {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []) + (
            spec.get("ephemeralContainers") or []):
        if isinstance(c, dict) and c.get("name"):
            containers[c["name"]] = ContainerInfo(image=c.get("image"))
    for s in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []) + (
            status.get("ephemeralContainerStatuses") or []):
        if not isinstance(s, dict) or not s.get("name"):
            continue
        info = containers.setdefault(s["name"], ContainerInfo())
        info.image = s.get("image") or info.image
        info.image_id = s.get("imageID") or None
        cid = s.get("containerID") or ""
        if "://" in cid:
            info.runtime, _, cid = cid.partition("://")
        info.container_id = cid or None
    owner = None
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller", True):
            owner = (str(ref.get("kind", "")), str(ref.get("name", "")))
            break
    return PodMeta(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")), uid=meta.get("uid"),
        node=spec.get("nodeName"), labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}), owner=owner, containers=containers,
        resource_version=str(meta.get("resourceVersion", "")),
        deleted_at=time.monotonic() if meta.get("deletionTimestamp") and status.get("phase") in (
            "Succeeded", "Failed") else None,
    )


class PodCache:
    def __init__(self, size: int = 1000, deleted_ttl: float = 300.0) -> None:
        self.size = size
        self.deleted_ttl = deleted_ttl
        self._pods: OrderedDict[tuple[str, str], PodMeta] = OrderedDict()
        self.namespaces: dict[str, tuple[float, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._pods)

    def get(self, namespace: str, name: str) -> PodMeta | None:
        pod = self._pods.get((namespace, name))
        if pod is not None:
            pod.last_used = time.monotonic()
        return pod

    def put(self, pod: PodMeta) -> None:
        key = (pod.namespace, pod.name)
        old = self._pods.get(key)
        if old is not None and old.uid == pod.uid and old.resource_version == pod.resource_version:
            return
        self._pods[key] = pod
        self._pods.move_to_end(key)
        if len(self._pods) > self.size:
            self._evict()

    def deleted(self, namespace: str, name: str) -> None:
        pod = self._pods.get((namespace, name))
        if pod is not None and pod.deleted_at is None:
            pod.deleted_at = time.monotonic()

    def replace_all(self, pods: list[PodMeta]) -> None:
        """After a (re)list: pods missing from it were deleted while we were not watching."""
        seen = {(p.namespace, p.name) for p in pods}
        for key, pod in self._pods.items():
            if key not in seen:
                pod.deleted_at = pod.deleted_at or time.monotonic()
        for pod in pods:
            self.put(pod)

    def expire(self) -> None:
        now = time.monotonic()
        ttl = self.deleted_ttl
        for key in [k for k, p in self._pods.items()
                    if p.deleted_at is not None and now - max(p.deleted_at, p.last_used) >= ttl]:
            del self._pods[key]

    def _evict(self) -> None:
        deleted = [k for k, p in self._pods.items() if p.deleted_at is not None]
        for key in deleted[: len(self._pods) - self.size]:
            del self._pods[key]
        while len(self._pods) > self.size:
            self._pods.popitem(last=False)
