"""Where the metadata goes in a record: Fluentd's layout (default) or ECS as Filebeat writes it.

Fluentd (fluent-plugin-kubernetes_metadata_filter): `kubernetes.{pod_name, namespace_name,
pod_id, container_name, container_image, container_image_id, host, labels, annotations,
namespace_labels, owner}` and `docker.container_id`; label and annotation keys de-dotted
(`app.kubernetes.io/name` → `app_kubernetes_io/name`) unless `de_dot false`, because
Elasticsearch would read their dots as object paths.

ECS (`ecs_compatibility => v8`, Filebeat's add_kubernetes_metadata): `kubernetes.pod.{name,uid}`,
`kubernetes.namespace`, `kubernetes.node.name`, `kubernetes.container.name`,
`kubernetes.labels.*`, `kubernetes.annotations.*`, `kubernetes.namespace_labels.*`,
`kubernetes.<owner kind>.name` (deployment derived from its ReplicaSet), `container.{id,
image.name, runtime}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from logpipe_plugins.filters.kubernetes_metadata.cache import PodMeta
from logpipe_plugins.filters.kubernetes_metadata.names import FileRef

_RS_HASH = re.compile(r"^(?P<deployment>.+)-[a-z0-9]{5,10}$")


@dataclass(frozen=True, slots=True)
class ShapeOptions:
    ecs: bool = False
    labels: bool = True
    annotation_match: tuple[re.Pattern[str], ...] = ()
    annotation_exclude: tuple[re.Pattern[str], ...] = ()
    container_metadata: bool = True
    de_dot: bool = True
    de_dot_separator: str = "_"
    master_url: str | None = None


def _dedot(values: dict[str, str], opts: ShapeOptions) -> dict[str, str]:
    if not opts.de_dot:
        return dict(values)
    sep = opts.de_dot_separator
    return {k.replace(".", sep): v for k, v in values.items()}


def _annotations(pod: PodMeta, opts: ShapeOptions) -> dict[str, str]:
    if not opts.annotation_match:
        return {}
    return {k: v for k, v in pod.annotations.items()
            if any(p.search(k) for p in opts.annotation_match)
            and not any(p.search(k) for p in opts.annotation_exclude)}


def shape(ref: FileRef, pod: PodMeta | None, namespace_meta: dict[str, Any] | None,
          opts: ShapeOptions) -> dict[str, Any]:
    """Fields to merge into the record (top-level keys → values), built once per pod and container."""
    container = pod.containers.get(ref.container) if pod is not None else None
    cid = ref.container_id or (container.container_id if container else None)
    if opts.ecs:
        return _ecs(ref, pod, container, cid, namespace_meta, opts)
    k8s: dict[str, Any] = {"pod_name": ref.pod, "namespace_name": ref.namespace, "container_name": ref.container}
    uid = pod.uid if pod is not None else ref.pod_uid
    if uid:
        k8s["pod_id"] = uid
    if pod is not None:
        if container is not None and opts.container_metadata:
            if container.image:
                k8s["container_image"] = container.image
            if container.image_id:
                k8s["container_image_id"] = container.image_id
        if pod.node:
            k8s["host"] = pod.node
        if opts.labels and pod.labels:
            k8s["labels"] = _dedot(pod.labels, opts)
        annotations = _annotations(pod, opts)
        if annotations:
            k8s["annotations"] = _dedot(annotations, opts)
        if pod.owner is not None:
            k8s["owner"] = {"kind": pod.owner[0], "name": pod.owner[1]}
    if namespace_meta:
        if namespace_meta.get("uid"):
            k8s["namespace_id"] = namespace_meta["uid"]
        if opts.labels and namespace_meta.get("labels"):
            k8s["namespace_labels"] = _dedot(namespace_meta["labels"], opts)
    if opts.master_url:
        k8s["master_url"] = opts.master_url
    out: dict[str, Any] = {"kubernetes": k8s}
    if cid:
        out["docker"] = {"container_id": cid}
    return out


def _ecs(ref: FileRef, pod: PodMeta | None, container: Any, cid: str | None,
         namespace_meta: dict[str, Any] | None, opts: ShapeOptions) -> dict[str, Any]:
    k8s: dict[str, Any] = {"pod": {"name": ref.pod}, "namespace": ref.namespace,
                           "container": {"name": ref.container}}
    uid = pod.uid if pod is not None else ref.pod_uid
    if uid:
        k8s["pod"]["uid"] = uid
    cont: dict[str, Any] = {}
    if cid:
        cont["id"] = cid
    if pod is not None:
        if pod.node:
            k8s["node"] = {"name": pod.node}
        if opts.labels and pod.labels:
            k8s["labels"] = _dedot(pod.labels, opts)
        annotations = _annotations(pod, opts)
        if annotations:
            k8s["annotations"] = _dedot(annotations, opts)
        if pod.owner is not None:
            kind, name = pod.owner
            k8s[kind.lower()] = {"name": name}
            m = _RS_HASH.match(name) if kind == "ReplicaSet" else None
            if m is not None:
                k8s["deployment"] = {"name": m["deployment"]}
        if container is not None and opts.container_metadata:
            if container.image:
                cont["image"] = {"name": container.image}
            if container.runtime:
                cont["runtime"] = container.runtime
    if namespace_meta:
        if namespace_meta.get("uid"):
            k8s["namespace_uid"] = namespace_meta["uid"]
        if opts.labels and namespace_meta.get("labels"):
            k8s["namespace_labels"] = _dedot(namespace_meta["labels"], opts)
    out: dict[str, Any] = {"kubernetes": k8s}
    if cont:
        out["container"] = cont
    return out
