"""One metric scheme for every plugin: `logpipe_<kind>_<thing>[_total]{<kind>="<id>", …}`,
made through the plugin (`self.metrics`), never by hand."""

from __future__ import annotations

import ast
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from logpipe import registry
from logpipe.build import assign_unique_ids
from logpipe.metrics import REGISTRY, PluginMetrics
from tests.paths import REPO

#: The least each plugin that cannot be built from defaults needs, beside the `example` of each
#: required setting (a new plugin whose required settings have no example must be added here).
MINIMAL: dict[tuple[str, str], dict[str, Any]] = {
    ("input", "file"): {"path": ["/var/log/*.log"]},
    ("input", "tail"): {"path": ["/var/log/*.log"]},
    ("input", "redis"): {"key": "logs", "data_type": "list"},
    ("input", "tcp"): {"port": 0},
    ("input", "udp"): {"port": 0},
    ("filter", "date"): {"match": ["ts", "ISO8601"]},
    ("filter", "geoip"): {"source": "ip"},
    ("filter", "grok"): {"match": {"message": "%{WORD:w}"}},
    ("filter", "json"): {"source": "message"},
    ("filter", "parser"): {"key_name": "message", "parse": {"@type": "json"}},
    ("filter", "relabel"): {"@label": "@OTHER"},
    ("filter", "throttle"): {"key": "%{host}", "after_count": 1},
    ("filter", "translate"): {"source": "code", "dictionary": {"1": "one"}},
    ("filter", "truncate"): {"length_bytes": 10},
    ("filter", "useragent"): {"source": "agent"},
    ("filter", "uuid"): {"target": "uuid"},
    ("output", "file"): {"path": "/tmp/out.log"},
    ("output", "http"): {"url": "http://127.0.0.1:1/"},
    ("output", "mongo"): {"database": "logs"},
    ("output", "mongodb"): {"database": "logs"},
    ("output", "redis"): {"key": "logs", "data_type": "list"},
    ("codec", "multiline"): {"pattern": "^\\s", "what": "previous"},
    ("filter", "rewrite_tag_filter"): {"rule": {"key": "message", "pattern": "^x", "tag": "x.${tag}"}},
    ("output", "rabbitmq"): {"exchange": "logs", "exchange_type": "direct"},
    ("output", "s3"): {"bucket": "logs"},
    ("output", "fluent_file"): {"path": "/tmp/logpipe-test-metrics/out"},
    ("output", "secondary_file"): {"directory": "/tmp/logpipe-test-metrics"},
}
#: Runs code from the config, which logpipe refuses to build at all.
NOT_BUILDABLE = {("filter", "ruby")}

THING = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def _every_plugin() -> list[tuple[str, str]]:
    """Every plugin installed through the entry points (not the ones tests register in-process)."""
    found = {tuple(ep.name.split(".", 1)) for ep in entry_points(group="logpipe.plugins")}
    return sorted((kind, name) for kind, name in found if (kind, name) not in NOT_BUILDABLE)


@pytest.mark.parametrize(("kind", "name"), _every_plugin(), ids=[f"{k}-{n}" for k, n in _every_plugin()])
def test_every_plugin_metric_follows_the_scheme(kind: str, name: str) -> None:
    examples = {s.name: s.example for s in registry.lookup(kind, name).all_settings()
                if s.required and s.example is not None}
    plugin = registry.create(kind, name, id=f"scheme-{name}", **{**examples, **MINIMAL.get((kind, name), {})})
    for metric in plugin.metrics.declared:
        prefix = f"logpipe_{kind}_"
        assert metric.name.startswith(prefix), metric.name
        assert THING.fullmatch(metric.name.removeprefix(prefix)), metric.name
        assert not {"plugin", "id", *registry.KINDS} & set(metric.labels), (metric.name, metric.labels)
        metric.inc(0)  # binds the series
        (series,) = [c for c in REGISTRY if c.name == metric.name and (kind, plugin.id) in c.labels
                     and set(dict(c.labels)) == {kind, *metric.labels}]
        assert dict(series.labels)[kind] == f"scheme-{name}"


def test_the_label_is_the_id_the_pipeline_settles() -> None:
    """Two unnamed grok filters: each counts under its own final id, not under "grok"."""
    first, second = (registry.create("filter", "grok", match={"message": pattern})
                     for pattern in ("%{INT:n}", "%{WORD:w}"))
    assign_unique_ids([first, second])
    assert first.id != second.id

    def matches() -> list[float]:
        return [REGISTRY.value("logpipe_filter_grok_matches_total", filter=i) for i in (first.id, second.id, "grok")]

    before = matches()
    first.filter([_event("12")])  # type: ignore[attr-defined]
    second.filter([_event("x"), _event("y")])  # type: ignore[attr-defined]
    assert [now - then for now, then in zip(matches(), before)] == [1, 2, 0]


def test_a_metric_cannot_set_the_id_label_itself() -> None:
    plugin = registry.create("filter", "drop")
    with pytest.raises(ValueError, match="the label 'filter' is the plugin's id"):
        plugin.metrics.counter("dropped", "events dropped", filter="other")
    assert isinstance(plugin.metrics, PluginMetrics)


def _raw_metric_uses(path: Path) -> list[str]:
    """Names a module takes from logpipe.metrics other than the plugin API's metrics."""
    tree = ast.parse(path.read_text(), str(path))
    return [f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name}"
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "logpipe.metrics"
            for alias in node.names if alias.name not in {"PluginMetrics", "PluginMetric"}]


def test_plugins_and_helpers_make_no_metrics_by_hand() -> None:
    modules = [*(REPO / "plugins").rglob("*.py"), *(REPO / "logpipe" / "helpers").rglob("*.py")]
    assert len(modules) > 50
    assert [use for path in modules for use in _raw_metric_uses(path)] == []


def _event(message: str) -> Any:
    from logpipe.event import Event

    return Event("t", None, {"message": message})

