"""Pod, namespace, container and container id from a log file's name (or a Fluentd tag).

kubelet names files `/var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log`
(links) and `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`; Fluentd
tails the first and tags events `kube.var.log.containers.<same name>`. Names are
DNS labels/subdomains, so `_` only separates fields. Results are memoised per
string: a node has few files and each event asks again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONTAINERS = re.compile(
    r"(?:^|[/.])containers[/.](?P<pod>[a-z0-9][-a-z0-9.]*)_(?P<namespace>[a-z0-9][-a-z0-9]*)_"
    r"(?P<container>[a-z0-9][-a-z0-9]*)-(?P<id>[a-f0-9]{64})\.log$")
_PODS = re.compile(
    r"(?:^|/)pods/(?P<namespace>[a-z0-9][-a-z0-9]*)_(?P<pod>[a-z0-9][-a-z0-9.]*)_(?P<uid>[-a-f0-9]+)/"
    r"(?P<container>[a-z0-9][-a-z0-9]*)/\d+\.log(?:\.\d{8}-\d+(?:\.gz)?)?$")


@dataclass(frozen=True, slots=True)
class FileRef:
    pod: str
    namespace: str
    container: str
    container_id: str | None = None
    pod_uid: str | None = None


class NameParser:
    """Memoised `parse(source)`; bounded (a node's file names, not every event)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[str, FileRef | None] = {}

    def parse(self, source: str) -> FileRef | None:
        memo = self._memo
        try:
            return memo[source]
        except KeyError:
            pass
        ref = parse_name(source)
        if len(memo) > 10_000:
            memo.clear()
        memo[source] = ref
        return ref


def parse_name(source: str) -> FileRef | None:
    m = _CONTAINERS.search(source)
    if m is not None:
        return FileRef(m["pod"], m["namespace"], m["container"], m["id"])
    m = _PODS.search(source)
    if m is not None:
        return FileRef(m["pod"], m["namespace"], m["container"], None, m["uid"])
    return None
