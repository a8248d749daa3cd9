"""The layout's import rules (ARCHITECTURE.md, "Plugins"): a plugin imports only `logpipe.*` and
its own package, never another plugin; the core never imports a plugin module."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

PLUGINS = REPO / "plugins"


def _imported(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def _own_package(path: Path) -> str:
    """`logpipe_plugins.inputs.tail` for a module of the tail package, the module itself otherwise."""
    parts = path.relative_to(PLUGINS).with_suffix("").parts
    own = parts[:2]  # kind/plugin (a package's modules share it)
    return ".".join(("logpipe_plugins", *own))


def test_no_plugin_imports_another_plugin() -> None:
    modules = [p for p in PLUGINS.rglob("*.py") if len(p.relative_to(PLUGINS).parts) > 1]
    assert len(modules) > 60
    wrong = [f"{path.relative_to(REPO)}:{line} imports {module}"
             for path in modules for line, module in _imported(path)
             if module.startswith("logpipe_plugins") and not (module + ".").startswith(_own_package(path) + ".")]
    assert wrong == []


def test_the_core_imports_no_plugin() -> None:
    wrong = [f"{path.relative_to(REPO)}:{line} imports {module}"
             for path in (REPO / "logpipe").rglob("*.py") for line, module in _imported(path)
             if module.startswith("logpipe_plugins")]
    assert wrong == []
