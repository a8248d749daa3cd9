"""A small Kubernetes REST client on aiohttp: where the API server is, how to authenticate, JSON and watch streams.

Chosen over kubernetes_asyncio/lightkube because the filter needs four calls
(list, watch, get pod, get namespace) and aiohttp is already a dependency; the
generated clients load hundreds of model classes (RSS) and hide the watch stream,
whose bookmarks, 410s and broken connections this plugin must handle itself.

Where: `kubernetes_url` if given (it wins), else the in-cluster environment
(KUBERNETES_SERVICE_HOST/PORT, the service-account token and CA), else a kubeconfig
(`kubeconfig`, $KUBECONFIG, ~/.kube/config: current context; token, tokenFile,
client certificates, CA, insecure-skip-tls-verify). The token file is read again
whenever it changes on disk (kubelet rotates projected tokens).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import yaml

from logpipe.errors import ConfigError

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: A watch event (one pod object) larger than this ends the stream as broken.
MAX_EVENT_BYTES = 16 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass
class Endpoint:
    url: str
    token: str | None = None
    token_file: str | None = None
    ca_file: str | None = None
    verify: bool = True
    client_cert: str | None = None
    client_key: str | None = None


def resolve_endpoint(url: str | None, token_file: str | None, ca_file: str | None, verify: bool,
                     kubeconfig: str | None) -> Endpoint:
    if url:
        return Endpoint(url.rstrip("/"), token_file=token_file or _existing(f"{SA_DIR}/token"),
                        ca_file=ca_file or _existing(f"{SA_DIR}/ca.crt"), verify=verify)
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host:
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        return Endpoint(f"https://{host}:{port}", token_file=token_file or f"{SA_DIR}/token",
                        ca_file=ca_file or f"{SA_DIR}/ca.crt", verify=verify)
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser(
        "~/.kube/config")
    if not os.path.exists(path):
        raise ConfigError("no Kubernetes API server: set kubernetes_url, run in a cluster, or give a kubeconfig",
                          setting="kubernetes_url")
    return _from_kubeconfig(path, verify)


def _existing(path: str) -> str | None:
    return path if os.path.exists(path) else None


def _from_kubeconfig(path: str, verify: bool) -> Endpoint:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
        context = contexts[doc["current-context"]]
        cluster = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}[context["cluster"]]
        user = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}.get(context.get("user"), {})
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"kubeconfig {path}: {exc}", setting="kubeconfig") from None
    base = os.path.dirname(os.path.abspath(path))
    return Endpoint(
        url=str(cluster["server"]).rstrip("/"),
        token=user.get("token"),
        token_file=_file(user.get("tokenFile"), None, base),
        ca_file=_file(cluster.get("certificate-authority"), cluster.get("certificate-authority-data"), base),
        verify=verify and not cluster.get("insecure-skip-tls-verify", False),
        client_cert=_file(user.get("client-certificate"), user.get("client-certificate-data"), base),
        client_key=_file(user.get("client-key"), user.get("client-key-data"), base),
    )


def _file(path: str | None, data: str | None, base: str) -> str | None:
    """kubeconfig gives files or inline base64 data; ssl wants files."""
    if path:
        return path if os.path.isabs(path) else os.path.join(base, path)
    if data:
        fd, name = tempfile.mkstemp(prefix="logpipe-kube-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(data))
        return name
    return None


class KubeClient:
    def __init__(self, endpoint: Endpoint, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = endpoint.token
        self._token_mtime = 0.0

    def _ssl(self) -> ssl.SSLContext | bool:
        ep = self.endpoint
        if not ep.url.startswith("https"):
            return False
        ctx = ssl.create_default_context(cafile=ep.ca_file) if ep.ca_file else ssl.create_default_context()
        if not ep.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if ep.client_cert:
            ctx.load_cert_chain(ep.client_cert, ep.client_key)
        return ctx

    def _headers(self) -> dict[str, str]:
        """The token file is read again when its mtime changes (rotation)."""
        path = self.endpoint.token_file
        if path:
            try:
                mtime = os.stat(path).st_mtime
                if mtime != self._token_mtime:
                    with open(path, encoding="utf-8") as fh:
                        self._token = fh.read().strip()
                    self._token_mtime = mtime
            except OSError:
                pass
        headers = {"Accept": "application/json", "User-Agent": "logpipe-kubernetes-metadata"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl(), limit=16))
        return self._session

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self.session().get(self.endpoint.url + path, params=params, headers=self._headers(),
                                      timeout=timeout) as resp:
            body = await resp.read()
            if resp.status >= 300:
                raise ApiError(resp.status, body[:300].decode("utf-8", "replace"))
            value = orjson.loads(body)
            if not isinstance(value, dict):
                raise ApiError(resp.status, "not a JSON object")
            return value

    async def watch(self, path: str, params: dict[str, str], idle: float) -> AsyncIterator[dict[str, Any]]:
        """Watch events (`{"type", "object"}`), one JSON document per line of a chunked
        response; a stream quiet for `idle` seconds counts as broken."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=idle)
        async with self.session().get(self.endpoint.url + path, params=params, headers=self._headers(),
                                      timeout=timeout) as resp:
            if resp.status >= 300:
                body = await resp.content.read(4096)
                raise ApiError(resp.status, body.decode("utf-8", "replace"))
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1:]
                    if line.strip():
                        event = orjson.loads(line)
                        if isinstance(event, dict):
                            yield event
                if len(buf) > MAX_EVENT_BYTES:
                    raise ApiError(0, "watch event over 16 MiB")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
