"""Module sizes and the import graph of the source tree at one or more git revisions.

    .venv/bin/python benchmarks/module_graph.py ca3bb6d^ ca3bb6d HEAD

For each revision, read from git (no checkout): how many modules each part of the tree has
and how big they are, the largest modules, and the imports between the parts — the core
(`logpipe/` but its helpers), the plugin helpers (`logpipe/helpers/`), the plugins
(`plugins/`, imported as `logpipe_plugins`). The layout's rules are counted as numbers: a
plugin importing a module of another plugin, the core importing a plugin, plugins importing
the core other than through `logpipe.plugin`, and import cycles among the core's modules
(top-level imports only: an import inside a function is how a cycle is hidden, and is
counted apart). `--dot FILE` writes the part-level graph of the last revision for Graphviz.
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Module:
    name: str
    path: str
    part: str
    lines: int
    unit: str  # the plugin a module belongs to (its package), or the module itself
    entry_point: bool  # a plugin class lives here (named by an entry point)
    top: set[str] = field(default_factory=set)  # modules imported at module level
    deferred: set[str] = field(default_factory=set)  # imported inside functions


#: An import as written: the module named (`from X import …`, `import X`) and the names taken.
Written = tuple[str, tuple[str, ...]]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def _module_name(path: str) -> str:
    dotted = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return "logpipe_plugins" + dotted[len("plugins"):] if dotted.startswith("plugins") else dotted


def _part(path: str) -> str:
    if path.startswith("plugins/"):
        return "plugins"
    return "helpers" if path.startswith("logpipe/helpers/") else "core"


def _unit(path: str) -> str:
    """A plugin package (`plugins/inputs/tail/…`) is one unit; a flat module is its own."""
    parts = path.split("/")
    if parts[0] == "plugins" and len(parts) > 3:
        return "/".join(parts[:3])
    return path.removesuffix(".py")


def _entry_point_modules(rev: str) -> set[str]:
    text = _git("show", f"{rev}:pyproject.toml")
    return set(re.findall(r'=\s*"(logpipe_plugins[\w.]*):\w+"', text))


def _imports(tree: ast.Module, name: str, is_package: bool) -> tuple[set[Written], set[Written]]:
    top: set[Written] = set()
    deferred: set[Written] = set()
    package = name if is_package else name.rpartition(".")[0]

    def targets(node: ast.Import | ast.ImportFrom) -> list[Written]:
        if isinstance(node, ast.Import):
            return [(a.name, ()) for a in node.names]
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        return [(base, tuple(a.name for a in node.names))]

    def visit(node: ast.AST, inside_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and not type_only:
                (deferred if inside_function else top).update(targets(child))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, inside_function, True)
            else:
                visit(child, inside_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
                      type_only)

    visit(tree, False, False)
    return top, deferred


def load(rev: str) -> dict[str, Module]:
    paths = [p for p in _git("ls-tree", "-r", "--name-only", rev).splitlines()
             if p.endswith(".py") and (p.startswith("logpipe/") or p.startswith("plugins/"))]
    plugin_modules = _entry_point_modules(rev)
    modules: dict[str, Module] = {}
    written: dict[str, tuple[set[Written], set[Written]]] = {}
    for path in paths:
        text = _git("show", f"{rev}:{path}")
        name = _module_name(path)
        module = Module(name, path, _part(path), text.count("\n") + 1, _unit(path), name in plugin_modules)
        written[name] = _imports(ast.parse(text), name, path.endswith("__init__.py"))
        modules[name] = module
    for name, module in modules.items():
        top, deferred = written[name]
        module.top = _resolve(top, modules) - {name}
        module.deferred = _resolve(deferred, modules) - {name}
    return modules


def _resolve(imports: set[Written], modules: dict[str, Module]) -> set[str]:
    """The tree's own modules an import uses: `from pkg import sub` is the submodule, not the
    package's namespace (else every package importing its own submodules would look like a cycle)."""
    found: set[str] = set()
    for base, names in imports:
        subs = {f"{base}.{n}" for n in names if f"{base}.{n}" in modules}
        found |= subs
        if len(subs) < len(names) or not names:
            found.add(base)
    return found & set(modules)


def _cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components (more than one module) of the core's top-level imports."""
    graph = {n: [t for t in m.top if modules[t].part != "plugins"] for n, m in modules.items() if m.part != "plugins"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return found


def report(rev: str, modules: dict[str, Module]) -> list[str]:
    commit = _git("log", "-1", "--format=%h %cs %s", rev).strip()
    out = [f"## {rev} ({commit[:90]})", "", "| part | modules | lines | median | largest |", "|---|---:|---:|---:|---|"]
    for part in ("core", "helpers", "plugins"):
        sizes = sorted(((m.lines, m.path) for m in modules.values() if m.part == part), reverse=True)
        if sizes:
            out.append(f"| {part} | {len(sizes)} | {sum(s for s, _ in sizes):,} | "
                       f"{statistics.median(s for s, _ in sizes):.0f} | {sizes[0][1]} ({sizes[0][0]}) |")
    big = sorted(((m.lines, m.path) for m in modules.values()), reverse=True)[:8]
    out += ["", "Largest modules: " + ", ".join(f"`{p}` {n}" for n, p in big), ""]
    edges: Counter[tuple[str, str]] = Counter()
    for m in modules.values():
        for t in m.top | m.deferred:
            edges[(m.part, modules[t].part)] += 1
    out += ["| imports from → to | core | helpers | plugins |", "|---|---:|---:|---:|"]
    for src in ("core", "helpers", "plugins"):
        out.append(f"| {src} | " + " | ".join(str(edges[(src, dst)]) for dst in ("core", "helpers", "plugins")) + " |")
    cross = sorted({(m.path, modules[t].path) for m in modules.values() if m.part == "plugins"
                    for t in m.top | m.deferred if modules[t].part == "plugins" and modules[t].unit != m.unit})
    to_plugins = sum(1 for _, target in cross if modules[_module_name(target)].entry_point)
    core_to_plugins = sorted({(m.path, modules[t].path) for m in modules.values() if m.part != "plugins"
                              for t in m.top | m.deferred if modules[t].part == "plugins"})
    api_only = [m for m in modules.values() if m.part == "plugins" and
                {t for t in m.top | m.deferred if modules[t].part != "plugins"} <= {"logpipe.plugin"}]
    plugin_count = sum(1 for m in modules.values() if m.part == "plugins")
    deferred = sum(len(m.deferred) for m in modules.values() if m.part != "plugins")
    cycles = _cycles(modules)
    out += [
        "",
        f"- imports across plugins (a plugin module → a module of another plugin or a loose helper in plugins/): "
        f"**{len(cross)}** ({to_plugins} of them into another plugin)"
        + (": " + ", ".join(f"`{a}` → `{b}`" for a, b in cross[:12]) if cross else ""),
        f"- core or helpers importing a plugin module: **{len(core_to_plugins)}**"
        + (": " + ", ".join(f"`{a}` → `{b}`" for a, b in core_to_plugins[:8]) if core_to_plugins else ""),
        f"- plugin modules whose only core import is `logpipe.plugin`: {len(api_only)} of {plugin_count}",
        f"- imports inside functions in the core and helpers: {deferred}",
        f"- import cycles among the core's and helpers' top-level imports: **{len(cycles)}**"
        + ("".join(f"\n  - {' ↔ '.join(c[:6])}{' …' if len(c) > 6 else ''} ({len(c)} modules)" for c in cycles)),
        "",
    ]
    return out


def dot(modules: dict[str, Module]) -> str:
    """The part-level graph (core, helpers, plugin kinds) with import counts on the edges."""
    def node(m: Module) -> str:
        parts = m.path.split("/")
        return f"plugins/{parts[1]}" if m.part == "plugins" and len(parts) > 2 else m.part

    weights: defaultdict[tuple[str, str], int] = defaultdict(int)
    for m in modules.values():
        for t in m.top | m.deferred:
            if node(m) != node(modules[t]):
                weights[(node(m), node(modules[t]))] += 1
    lines = ["digraph logpipe {", "  rankdir=LR;"]
    lines += [f'  "{a}" -> "{b}" [label="{n}"];' for (a, b), n in sorted(weights.items())]
    return "\n".join([*lines, "}"]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("revs", nargs="+", help="git revisions, oldest first")
    ap.add_argument("--dot", help="write the last revision's part-level graph (Graphviz) here")
    args = ap.parse_args()
    loaded = {}
    for rev in args.revs:
        loaded[rev] = load(rev)
        print("\n".join(report(rev, loaded[rev])))
    if args.dot:
        with open(args.dot, "w") as fh:
            fh.write(dot(loaded[args.revs[-1]]))


if __name__ == "__main__":
    main()
