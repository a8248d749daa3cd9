"""`kubernetes_metadata` (alias `kubernetes`): pod metadata on container log events.

Names first: the pod, namespace, container and container id come from the log
file's name (names.py) — from the event's tag (`kube.var.log.containers.…`, as
Fluentd's tail tags it) or its path field (`[log][file][path]`, `path`). Then the
API server: a background watch of this node's pods (watcher.py) fills a cache
(cache.py) that the filter reads without waiting, so a slow or absent API server
never holds a batch: those events get the names only, the tag
`_kubernetes_metadata_unavailable`, and a count. A pod not yet in the cache is
fetched once (bounded concurrency) for the events after it.

A deleted pod's entry stays `deleted_pod_ttl` seconds (default 300) after the last
event that used it, so the last lines of a finished Job, read after the DELETED
event, still get their labels; the tail input keeps reading a deleted file until
its end, so within that window nothing loses its metadata.

Hints (pod annotations; Fluent Bit's `fluentbit.io/…` read as well):
`logpipe.io/exclude: "true"` drops the pod's events; `logpipe.io/parser: <named
format or grok pattern>` parses the message (`-<container>` suffix: one container).

Settings carry fluent-plugin-kubernetes_metadata_filter's names, Fluent Bit's as
spellings (`Kube_URL`, `Kube_CA_File`, `Kube_Token_File`, `Labels`, `Annotations`).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from typing import Any

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import Filter, Setting
from logpipe_plugins.filters.kubernetes_metadata.cache import PodCache, PodMeta
from logpipe_plugins.filters.kubernetes_metadata.client import KubeClient, resolve_endpoint
from logpipe_plugins.filters.kubernetes_metadata.names import FileRef, NameParser
from logpipe_plugins.filters.kubernetes_metadata.shape import ShapeOptions, shape
from logpipe_plugins.filters.kubernetes_metadata.watcher import Watcher

UNAVAILABLE_TAG = "_kubernetes_metadata_unavailable"
_HINT_PREFIXES = ("logpipe.io/", "fluentbit.io/")
_NOT_KUBE = object()


class KubernetesMetadataFilter(Filter):
    name = "kubernetes_metadata"
    doc = "add pod labels, annotations, image … from the file name and the Kubernetes API (node-scoped watch)"
    settings = [
        Setting("kubernetes_url", "string", spellings=("Kube_URL", "kube_url"),
                doc="API server URL; wins over the in-cluster environment and kubeconfig"),
        Setting("bearer_token_file", "path", spellings=("Kube_Token_File", "kube_token_file"),
                doc="token file (default: the service account's), read again when it changes"),
        Setting("ca_file", "path", spellings=("Kube_CA_File", "kube_ca_file"), doc="CA bundle of the API server"),
        Setting("verify_ssl", "bool", True, spellings=("tls.verify",), doc="verify the API server's certificate"),
        Setting("kubeconfig", "path", doc="kubeconfig for running outside a cluster (default $KUBECONFIG)"),
        Setting("watch", "bool", True, doc="watch this node's pods (else one GET per pod, refreshed after cache_ttl)"),
        Setting("node_name", "string", doc="node whose pods are watched (default $NODE_NAME; none: all pods)"),
        Setting("cache_size", "int", 1000, min=1, doc="pods kept in the cache"),
        Setting("cache_ttl", "duration", 3600.0, doc="namespace metadata (and pods when not watching) kept this long"),
        Setting("deleted_pod_ttl", "duration", 300.0,
                doc="a deleted pod's metadata is kept this long after the last event that used it"),
        Setting("annotation_match", "array", [], doc="regexes of annotation keys to include (default: none)"),
        Setting("annotation_exclude", "array", [], doc="regexes of annotation keys to leave out"),
        Setting("annotations", "bool", False, spellings=("Annotations",),
                doc="Fluent Bit's switch: include every annotation (annotation_match ['.*'])"),
        Setting("labels", "bool", True, spellings=("Labels",), doc="Fluent Bit's switch: include labels"),
        Setting("skip_labels", "bool", False, doc="leave labels out"),
        Setting("skip_container_metadata", "bool", False, doc="leave container image and image id out"),
        Setting("skip_master_url", "bool", True, doc="leave kubernetes.master_url out"),
        Setting("skip_namespace_metadata", "bool", True,
                doc="leave namespace uid and labels out (false: one GET per namespace)"),
        Setting("de_dot", "bool", True, doc="replace dots in label/annotation keys (Elasticsearch paths)"),
        Setting("de_dot_separator", "string", "_", doc="what dots become"),
        Setting("ecs_compatibility", "string", "disabled", choices=("disabled", "v1", "v8"),
                doc="disabled: Fluentd's kubernetes.* layout; v1/v8: ECS as Filebeat writes it"),
        Setting("source_field", "string",
                doc="field holding the log file path (default: the tag, then [log][file][path], then path)"),
        Setting("k8s_logging_exclude", "bool", True, spellings=("K8S-Logging.Exclude",),
                doc="honour the logpipe.io/exclude (fluentbit.io/exclude) annotation"),
        Setting("k8s_logging_parser", "bool", True, spellings=("K8S-Logging.Parser",),
                doc="honour the logpipe.io/parser (fluentbit.io/parser) annotation"),
        Setting("request_concurrency", "int", 4, min=1, doc="concurrent GETs for pods missing from the cache"),
        Setting("max_pending_requests", "int", 1000, min=1, doc="GETs queued at most (more: names only)"),
        Setting("watch_idle_timeout", "duration", 120.0, doc="a watch stream silent this long is reopened"),
        Setting("max_backoff", "duration", 30.0, doc="longest wait between reconnections"),
        Setting("startup_wait", "duration", 5.0,
                doc="how long start waits for the first pod list (then events flow with names only)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self._annotation_match = [_regex(x, "annotation_match") for x in p["annotation_match"]]
        if p["annotations"] and not self._annotation_match:
            self._annotation_match = [re.compile(".*")]
        self._options = ShapeOptions(
            ecs=p["ecs_compatibility"] != "disabled",
            labels=p["labels"] and not p["skip_labels"],
            annotation_match=tuple(self._annotation_match),
            annotation_exclude=tuple(_regex(x, "annotation_exclude") for x in p["annotation_exclude"]),
            container_metadata=not p["skip_container_metadata"],
            de_dot=p["de_dot"], de_dot_separator=p["de_dot_separator"],
        )
        self.cache = PodCache(p["cache_size"], p["deleted_pod_ttl"])
        self.names = NameParser()
        self.watcher: Watcher | None = None
        self._parsers: dict[str, Any] = {}
        self._next_expire = 0.0
        self._message_keys = ("log", "message")
        self.m_unavailable = self.metrics.counter(
            "kubernetes_metadata_unavailable", "events enriched from the file name only (pod not known / API down)")
        self.m_excluded = self.metrics.counter("kubernetes_metadata_excluded",
                                               "events dropped by the exclude annotation")
        self.m_enriched = self.metrics.counter("kubernetes_metadata_enriched", "events with metadata from the API")

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        p = self.params
        try:
            endpoint = resolve_endpoint(p["kubernetes_url"], p["bearer_token_file"], p["ca_file"],
                                        p["verify_ssl"], p["kubeconfig"])
        except ConfigError as exc:
            self.log.error("%s: %s; events get file-name metadata only", self.id, exc.message)
            return
        if not p["skip_master_url"]:
            self._options = _replace(self._options, master_url=endpoint.url)
        node = p["node_name"] or os.environ.get("NODE_NAME") or None
        if p["watch"] and node is None:
            self.log.warning("%s: no node_name / $NODE_NAME: watching every pod of the cluster", self.id)
        self.watcher = Watcher(KubeClient(endpoint), self.cache, node=node, watch=p["watch"],
                               namespaces=not p["skip_namespace_metadata"],
                               concurrency=p["request_concurrency"], max_pending=p["max_pending_requests"],
                               watch_idle=p["watch_idle_timeout"], max_backoff=p["max_backoff"])
        self.watcher.start()
        if p["watch"] and p["startup_wait"] > 0:
            try:
                await asyncio.wait_for(self.watcher.synced.wait(), p["startup_wait"])
            except TimeoutError:
                self.log.warning("%s: no pod list from %s within %ss; starting with file-name metadata",
                                 self.id, endpoint.url, p["startup_wait"])

    async def close(self) -> None:
        if self.watcher is not None:
            await self.watcher.close()
            self.watcher = None

    # ---- the filter ----------------------------------------------------------------------

    def filter(self, events: list[Event]) -> list[Event]:
        now = time.monotonic()
        if now >= self._next_expire:
            self.cache.expire()
            self._next_expire = now + 10.0
        field = self.params["source_field"]
        resolved: dict[Any, Any] = {}
        out: list[Event] = []
        append = out.append
        enriched = unavailable = excluded = 0
        decorate = self.decorates
        for ev in events:
            # The tag (Fluentd's kube.var.log.containers.…) is the common key: one lookup per event.
            entry = resolved.get(ev.tag) if field is None else None
            if entry is None:
                src = _source(ev, field)
                entry = _NOT_KUBE if src is None else resolved.get(src)
                if entry is None:
                    assert src is not None
                    entry = resolved[src] = self._resolve(src)
                if field is None and src == ev.tag:
                    resolved[ev.tag] = entry
            if entry is _NOT_KUBE:
                append(ev)
                continue
            fields, known, drop, parser = entry  # type: ignore[misc]
            if drop:
                excluded += 1
                continue
            record = ev.record
            # Top-level dicts are copied per event; labels/annotations inside are shared, as
            # Fluentd's filter shares its cached hashes (treat them as read-only, or copy first).
            for key, value in fields.items():
                record[key] = value.copy()
            if known:
                enriched += 1
            else:
                unavailable += 1
                tags = record.get("tags")
                if type(tags) is list:
                    if UNAVAILABLE_TAG not in tags:
                        tags.append(UNAVAILABLE_TAG)
                else:
                    record["tags"] = [UNAVAILABLE_TAG]
            if parser is not None:
                self._parse(record, parser)
            if decorate:
                self.matched(ev)
            append(ev)
        if enriched:
            self.m_enriched.inc(enriched)
        if unavailable:
            self.m_unavailable.inc(unavailable)
        if excluded:
            self.m_excluded.inc(excluded)
        return out

    def _resolve(self, src: str) -> Any:
        ref = self.names.parse(src)
        if ref is None:
            return _NOT_KUBE
        pod = self.cache.get(ref.namespace, ref.pod)
        if pod is not None and ref.pod_uid and pod.uid and pod.uid != ref.pod_uid:
            pod = None  # a newer pod of the same name (StatefulSet): not this file's
        if pod is None:
            if self.watcher is not None:
                self.watcher.request("pod", ref.namespace, ref.pod)
            return shape(ref, None, None, self._options), False, False, None
        ns_meta = self._namespace(ref.namespace)
        key = (ref.container, ref.container_id, ref.pod_uid, ns_meta is not None)
        cached = pod.shaped.get(key)
        if cached is None:
            hints = self._hints(pod, ref)
            cached = pod.shaped[key] = (shape(ref, pod, ns_meta, self._options), True) + hints
        return cached

    def _namespace(self, namespace: str) -> dict[str, Any] | None:
        if self.params["skip_namespace_metadata"]:
            return None
        entry = self.cache.namespaces.get(namespace)
        if entry is not None and time.monotonic() - entry[0] < self.params["cache_ttl"]:
            return entry[1]
        if self.watcher is not None:
            self.watcher.request("namespace", namespace)
        return entry[1] if entry is not None else None

    def _hints(self, pod: PodMeta, ref: FileRef) -> tuple[bool, Any]:
        notes = pod.annotations
        drop = False
        parser = None
        if self.params["k8s_logging_exclude"]:
            value = _hint(notes, "exclude", ref.container)
            drop = value is not None and value.strip().lower() in ("true", "on", "yes")
        if self.params["k8s_logging_parser"]:
            value = _hint(notes, "parser", ref.container)
            if value:
                parser = self._compile(value)
        return drop, parser

    def _compile(self, spec: str) -> Any:
        """A named format (apache2, nginx, syslog …) or a grok pattern; bad ones are logged once."""
        if spec in self._parsers:
            return self._parsers[spec]
        from logpipe.grok.engine import Grok
        from logpipe.grok.errors import GrokError
        from logpipe.grok.formats import compile_named_format

        grok: Any
        try:
            grok = compile_named_format(spec) if "%{" not in spec and "(" not in spec else Grok(spec, timeout=1.0)
        except (ConfigError, GrokError, KeyError, ValueError) as exc:
            self.log.warning("%s: parser hint %r unusable: %s", self.id, spec, exc)
            grok = None
        if len(self._parsers) > 256:
            self._parsers.clear()
        self._parsers[spec] = grok
        return grok

    def _parse(self, record: dict[str, Any], grok: Any) -> None:
        from logpipe.grok.errors import GrokTimeout

        key = "log" if "log" in record else "message"
        text = record.get(key)
        if not isinstance(text, str):
            return
        try:
            captures = grok.match(text)
        except GrokTimeout:
            captures, tag = None, "_groktimeout"
        else:
            tag = "_grokparsefailure"
        if captures is None:
            tags = record.setdefault("tags", [])
            if isinstance(tags, list) and tag not in tags:
                tags.append(tag)
            return
        record.update(captures)


class KubernetesFilter(KubernetesMetadataFilter):
    """Fluent Bit's name for the same filter."""

    name = "kubernetes"


def _source(ev: Event, field: str | None) -> str | None:
    record = ev.record
    if field:
        value = record.get(field)
        return value if isinstance(value, str) else None
    tag = ev.tag
    if tag and "containers." in tag:
        return tag
    log = record.get("log")
    if type(log) is dict:
        file = log.get("file")
        if type(file) is dict and isinstance(file.get("path"), str):
            return str(file["path"])
    path = record.get("path")
    return path if isinstance(path, str) else tag


def _hint(annotations: dict[str, str], what: str, container: str) -> str | None:
    for prefix in _HINT_PREFIXES:
        value = annotations.get(f"{prefix}{what}-{container}")
        if value is None:
            value = annotations.get(f"{prefix}{what}")
        if value is not None:
            return value
    return None


def _regex(text: Any, setting: str) -> re.Pattern[str]:
    try:
        return re.compile(str(getattr(text, "source", text)))
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {text!r}: {exc}", setting=setting) from None


def _replace(opts: ShapeOptions, **changes: Any) -> ShapeOptions:
    from dataclasses import replace

    return replace(opts, **changes)
