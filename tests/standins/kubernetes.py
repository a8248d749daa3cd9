"""A Kubernetes API server stand-in: the core/v1 pods and namespaces REST API, list and watch.

No API server runs here, so this aiohttp server speaks the protocol the way
kube-apiserver does, strictly enough for the real kubectl (tests run it against
this server):

- discovery (`/version`, `/api`, `/api/v1`, `/apis`), `Status` objects for errors;
- list (`/api/v1/pods`, `/api/v1/namespaces/<ns>/pods`) with `fieldSelector`
  (`spec.nodeName=`, `metadata.name=`), `labelSelector` (`k=v`), `limit`/`continue`
  pages and the list's `metadata.resourceVersion`;
- watch (`?watch=true`): a chunked response of one JSON event per line
  (`ADDED`/`MODIFIED`/`DELETED` with the object, `BOOKMARK` with only
  `metadata.resourceVersion` when `allowWatchBookmarks`), replayed from
  `resourceVersion`, `410 Gone` for a version older than the compaction point
  (as an HTTP status when the watch starts, as an `ERROR` event once it runs),
  `timeoutSeconds` ending the stream cleanly;
- GET of one pod / namespace (404 `NotFound` Status);
- bearer-token auth (401), a forbidden switch (403);
- fault switches: `fail_next(status, n)`, `delay` per request, `drop_watches()`
  (connections cut mid-stream), `stop()`/`start()` on the same port.

Pod objects are shaped like real ones (metadata with uid, resourceVersion,
ownerReferences; spec.containers; status.containerStatuses with
`containerd://<id>` and image ids).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.support.net import free_port


def make_pod(name: str, namespace: str = "default", node: str = "node-1", *,
             labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
             containers: list[str] | None = None, image: str = "docker.io/library/nginx:1.27",
             owner: tuple[str, str] | None = ("ReplicaSet", "web-5d9c7b8f6"), uid: str | None = None,
             phase: str = "Running") -> dict[str, Any]:
    uid = uid or str(uuid.uuid4())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = containers or ["app"]
    meta: dict[str, Any] = {
        "name": name, "namespace": namespace, "uid": uid, "creationTimestamp": now,
        "labels": labels if labels is not None else {"app": name.split("-")[0],
                                                      "app.kubernetes.io/name": name.split("-")[0]},
        "annotations": annotations or {},
    }
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, owner[1])),
                                    "controller": True, "blockOwnerDeletion": True}]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {
            "nodeName": node, "serviceAccountName": "default", "restartPolicy": "Always",
            "containers": [{"name": c, "image": image, "imagePullPolicy": "IfNotPresent",
                            "resources": {}, "terminationMessagePath": "/dev/termination-log"} for c in names],
        },
        "status": {
            "phase": phase, "hostIP": "10.0.0.1", "podIP": "10.244.0.5", "startTime": now,
            "containerStatuses": [{
                "name": c, "image": image, "ready": True, "restartCount": 0, "started": True,
                "imageID": "docker.io/library/nginx@sha256:" + hashlib.sha256(image.encode()).hexdigest(),
                "containerID": "containerd://" + container_id(name, c),
                "state": {"running": {"startedAt": now}},
            } for c in names],
        },
    }


def container_id(pod: str, container: str) -> str:
    """The 64-hex id the stand-in gives a pod's container (the tests name files with it)."""
    return hashlib.sha256(f"{pod}/{container}".encode()).hexdigest()


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


_POD_RESOURCE = {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["po"],
                 "categories": ["all"]}
_NS_RESOURCE = {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"]}


class KubeStandIn:
    def __init__(self, token: str | None = "test-token", port: int | None = None,
                 tls: tuple[str, str] | None = None) -> None:
        """`tls` (cert, key): serve HTTPS, as kube-apiserver does (kubectl sends no token over http)."""
        self.token = token
        self.tls = tls
        self.port = port or free_port()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.rv = 100
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.compacted = 0
        self.forbidden = False
        self.delay = 0.0
        self.failures: list[int] = []
        self.requests: list[str] = []
        self.watches_opened = 0
        self._watchers: set[asyncio.Queue[tuple[str, dict[str, Any]] | None]] = set()
        self._runner: web.AppRunner | None = None
        self.changed = asyncio.Event()

    # ---- state ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _bump(self, kind: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        snapshot = copy.deepcopy(obj)
        self.history.append((self.rv, kind, snapshot))
        for queue in list(self._watchers):
            queue.put_nowait((kind, snapshot))

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.namespaces[name] = {"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name, "uid": str(uuid.uuid4()),
                                              "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
                                 "status": {"phase": "Active"}}
        self._bump("ADDED", self.namespaces[name])

    def add_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        kind = "MODIFIED" if key in self.pods else "ADDED"
        self.pods[key] = pod
        self._bump(kind, pod)
        return pod

    def delete_pod(self, namespace: str, name: str) -> None:
        pod = self.pods.pop((namespace, name))
        pod["metadata"]["deletionTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._bump("DELETED", pod)

    def compact(self) -> None:
        """Etcd compaction: watches from older versions get 410 Gone; running ones an ERROR event."""
        self.compacted = self.rv
        self.history.clear()
        for queue in list(self._watchers):
            queue.put_nowait(("ERROR", {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "message": "too old resource version", "reason": "Expired", "code": 410}))

    def bookmark(self) -> None:
        for queue in list(self._watchers):
            queue.put_nowait(("BOOKMARK", {"kind": "Pod", "apiVersion": "v1",
                                           "metadata": {"resourceVersion": str(self.rv)}}))

    def drop_watches(self) -> None:
        for queue in list(self._watchers):
            queue.put_nowait(None)

    def fail_next(self, status: int, count: int = 1) -> None:
        self.failures.extend([status] * count)

    # ---- server --------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/version", self._version)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/api/v1", self._api_v1)
        app.router.add_get("/api/v1/pods", self._pods)
        app.router.add_get("/api/v1/namespaces", self._namespace_list)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}", self._pod)
        app.router.add_get("/api/v1/namespaces/{ns}", self._namespace)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        context = None
        if self.tls is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()

    async def stop(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> KubeStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        if self.forbidden:
            return _status(403, "Forbidden", f'pods is forbidden: User "system:serviceaccount:logging:logpipe" '
                                             f'cannot {request.method.lower()} resource')
        if self.failures and request.path.startswith("/api/v1/"):
            code = self.failures.pop(0)
            return _status(code, {429: "TooManyRequests", 410: "Expired"}.get(code, "InternalError"),
                           f"injected {code}")
        response: web.StreamResponse = await handler(request)
        return response

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"})

    async def _api(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})

    async def _apis(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def _api_v1(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1",
                                  "resources": [_POD_RESOURCE, _NS_RESOURCE]})

    def _select(self, request: web.Request) -> list[dict[str, Any]]:
        ns = request.match_info.get("ns")
        fields = dict(f.split("=", 1) for f in request.query.get("fieldSelector", "").split(",") if "=" in f)
        labels = dict(s.split("=", 1) for s in request.query.get("labelSelector", "").split(",") if "=" in s)
        return [p for (pns, _), p in sorted(self.pods.items())
                if (ns is None or pns == ns) and _matches(p, fields, labels)]

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") in ("true", "1"):
            return await self._watch(request)
        items = self._select(request)
        limit = int(request.query.get("limit", "0") or 0)
        start = int(request.query.get("continue", "0") or 0)
        page = items[start:start + limit] if limit else items[start:]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(items) - start - limit
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page},
                                 dumps=lambda v: orjson.dumps(v).decode())

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        since = request.query.get("resourceVersion", "")
        if since not in ("", "0") and int(since) < self.compacted:
            return _status(410, "Expired", f"too old resource version: {since} ({self.compacted})")
        ns = request.match_info.get("ns")
        fields = dict(f.split("=", 1) for f in request.query.get("fieldSelector", "").split(",") if "=" in f)
        labels = dict(s.split("=", 1) for s in request.query.get("labelSelector", "").split(",") if "=" in s)
        bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(request.query.get("timeoutSeconds", "1800"))
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        if since in ("", "0"):
            backlog = [("ADDED", copy.deepcopy(p)) for p in self._select(request)]
        else:
            backlog = [(k, o) for rv, k, o in self.history if rv > int(since) and o.get("kind") == "Pod"]
        for item in backlog:
            queue.put_nowait(item)
        self._watchers.add(queue)
        self.watches_opened += 1
        self.changed.set()
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                if item is None:  # dropped connection: no clean chunked end
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                kind, obj = item
                if kind == "BOOKMARK" and not bookmarks:
                    continue
                if kind not in ("ERROR", "BOOKMARK"):
                    if obj.get("kind") != "Pod":
                        continue
                    pns = obj["metadata"]["namespace"]
                    if (ns is not None and pns != ns) or not _matches(obj, fields, labels):
                        continue
                await response.write(orjson.dumps({"type": kind, "object": obj}) + b"\n")
                if kind == "ERROR":
                    break
            await response.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self._watchers.discard(queue)
        return response

    async def _pod(self, request: web.Request) -> web.Response:
        pod = self.pods.get((request.match_info["ns"], request.match_info["name"]))
        if pod is None:
            return _status(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        return web.json_response(pod)

    async def _namespace(self, request: web.Request) -> web.Response:
        ns = self.namespaces.get(request.match_info["ns"])
        if ns is None:
            return _status(404, "NotFound", f'namespaces "{request.match_info["ns"]}" not found')
        return web.json_response(ns)

    async def _namespace_list(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "NamespaceList", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": str(self.rv)},
                                  "items": list(self.namespaces.values())})


def _matches(pod: dict[str, Any], fields: dict[str, str], labels: dict[str, str]) -> bool:
    for key, value in fields.items():
        if key == "spec.nodeName" and pod.get("spec", {}).get("nodeName") != value:
            return False
        if key == "metadata.name" and pod["metadata"]["name"] != value:
            return False
        if key == "metadata.namespace" and pod["metadata"]["namespace"] != value:
            return False
    pod_labels = pod["metadata"].get("labels") or {}
    return all(pod_labels.get(k) == v for k, v in labels.items())


def kubeconfig(path: str, url: str, token: str | None, ca_file: str | None = None) -> str:
    """A kubeconfig pointing kubectl (or the filter) at the stand-in."""
    import yaml

    user: dict[str, Any] = {"token": token} if token else {}
    cluster: dict[str, Any] = {"server": url}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "standin",
           "clusters": [{"name": "standin", "cluster": cluster}],
           "users": [{"name": "standin", "user": user}],
           "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin",
                                                       "namespace": "default"}}]}
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh)
    return path
