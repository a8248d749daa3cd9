"""Background tasks that keep the pod cache filled: a node-scoped list+watch and GETs on a miss.

The watch is Kubernetes' informer protocol done by hand: list the node's pods
(`fieldSelector=spec.nodeName=<node>`), then watch from the list's resourceVersion
with bookmarks; every event moves the resourceVersion on, a clean end of the stream
resumes from there, `410 Gone` (or an ERROR event with code 410) relists, and 429,
5xx, 401/403 and broken or silent streams retry with capped, jittered exponential
backoff. A miss in the cache queues one GET for that pod (deduplicated, bounded
queue, a fixed number of concurrent requests); a 404 is remembered for a while so a
stream of lines from an unknown pod costs one request, not one per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from logpipe_plugins.filters.kubernetes_metadata.cache import PodCache, pod_meta
from logpipe_plugins.filters.kubernetes_metadata.client import ApiError, KubeClient

log = logging.getLogger("logpipe.filter.kubernetes_metadata")

_BROKEN = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)


class Watcher:
    def __init__(self, client: KubeClient, cache: PodCache, *, node: str | None, watch: bool,
                 namespaces: bool, concurrency: int, max_pending: int, watch_idle: float,
                 max_backoff: float, negative_ttl: float = 30.0) -> None:
        self.client = client
        self.cache = cache
        self.node = node
        self.watching = watch
        self.namespaces = namespaces
        self.concurrency = concurrency
        self.max_pending = max_pending
        self.watch_idle = watch_idle
        self.max_backoff = max_backoff
        self.negative_ttl = negative_ttl
        self.synced = asyncio.Event()
        #: False while the API server cannot be reached (the filter tags what it enriches from names only).
        self.healthy = False
        self.resource_version: str | None = None
        self.relists = 0
        self.requests: dict[tuple[str, str], None] = {}
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._missing: dict[tuple[str, str], float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.watching:
            self._tasks.append(asyncio.create_task(self._watch_loop(), name="kubernetes-watch"))
        for i in range(self.concurrency):
            self._tasks.append(asyncio.create_task(self._fetch_loop(), name=f"kubernetes-get-{i}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.client.close()

    # ---- misses --------------------------------------------------------------------

    def request(self, kind: str, namespace: str, name: str = "") -> bool:
        """Queue one GET (kind "pod" or "namespace"); False when it was dropped (bounded)."""
        key = (kind, f"{namespace}/{name}")
        if key in self.requests:
            return True
        until = self._missing.get(key)
        if until is not None and time.monotonic() < until:
            return True
        if len(self.requests) >= self.max_pending:
            return False
        self.requests[key] = None
        self._queue.put_nowait(key)
        return True

    async def _fetch_loop(self) -> None:
        while True:
            key = await self._queue.get()
            kind, ref = key
            namespace, _, name = ref.partition("/")
            try:
                if kind == "pod":
                    obj = await self.client.get(f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}")
                    self.cache.put(pod_meta(obj))
                else:
                    obj = await self.client.get(f"/api/v1/namespaces/{quote(namespace)}")
                    self.cache.namespaces[namespace] = (time.monotonic(), obj.get("metadata") or {})
                self.healthy = True
            except ApiError as exc:
                if exc.status == 404:
                    self._missing[key] = time.monotonic() + self.negative_ttl
                    if len(self._missing) > 10_000:
                        self._missing.clear()
                else:
                    log.warning("GET %s %s failed: %s", kind, ref, exc)
            except _BROKEN as exc:
                self.healthy = False
                log.warning("GET %s %s failed: %s", kind, ref, exc)
            finally:
                self.requests.pop(key, None)

    # ---- list + watch ----------------------------------------------------------------

    def _selector(self) -> dict[str, str]:
        return {"fieldSelector": f"spec.nodeName={self.node}"} if self.node else {}

    async def relist(self) -> None:
        doc = await self.client.get("/api/v1/pods", {**self._selector(), "limit": "500"})
        items = list(doc.get("items") or [])
        meta = doc.get("metadata") or {}
        while meta.get("continue"):
            doc = await self.client.get("/api/v1/pods", {**self._selector(), "limit": "500",
                                                          "continue": meta["continue"]})
            items.extend(doc.get("items") or [])
            meta = doc.get("metadata") or {}
        self.cache.replace_all([pod_meta(obj) for obj in items if isinstance(obj, dict)])
        self.resource_version = str(meta.get("resourceVersion", "")) or None
        self.relists += 1
        self.healthy = True
        self.synced.set()

    async def _watch_loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self.resource_version is None:
                    await self.relist()
                await self._watch_once()
                backoff = 0.5
                continue
            except ApiError as exc:
                if exc.status == 410:
                    log.info("watch resourceVersion expired (410 Gone); listing again")
                    self.resource_version = None
                    continue
                self.healthy = exc.status not in (0, 429) and exc.status < 500 and exc.status not in (401, 403)
                log.warning("kubernetes API: %s; retrying in %.1fs", exc, backoff)
            except _BROKEN as exc:
                self.healthy = False
                log.warning("kubernetes watch broken (%s); retrying in %.1fs", exc or type(exc).__name__, backoff)
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, self.max_backoff)

    async def _watch_once(self) -> None:
        params = {**self._selector(), "watch": "true", "allowWatchBookmarks": "true",
                  "resourceVersion": self.resource_version or "", "timeoutSeconds": "300"}
        async for event in self.client.watch("/api/v1/pods", params, self.watch_idle):
            self.healthy = True
            kind = event.get("type")
            obj: Any = event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code", 0) or 0)
                raise ApiError(code or 500, str(obj.get("message", "watch error")))
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = str(rv)
            if kind in ("ADDED", "MODIFIED"):
                self.cache.put(pod_meta(obj))
            elif kind == "DELETED":
                pod = pod_meta(obj)
                self.cache.put(pod)
                self.cache.deleted(pod.namespace, pod.name)
        self.cache.expire()
