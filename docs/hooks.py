"""MkDocs hook: the plugin reference, one page per plugin, generated at build time from the
plugins' own setting declarations — the same source `logpipe plugins` and the config checker
read, so the site cannot drift from the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from logpipe import registry
from logpipe.buffer.settings import BUFFER_SETTINGS
from logpipe.plugin_docs import setting_notes
from logpipe.settings import Setting


def _cell(text: Any) -> str:
    """Table-safe text: Logstash field references (`[log][file]`) must not read as Markdown links."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("[", "\\[")


def _default(s: Setting) -> str:
    if s.secret:
        return ""
    if s.default in (None, [], {}, ()):
        return ""
    return f"`{s.default!r}`"


def _notes(s: Setting) -> str:
    return "; ".join(setting_notes(s, code=lambda value: f"`{value}`", default=False))


def _table(settings: list[Setting], depth: int = 0) -> list[str]:
    rows = []
    for s in settings:
        name = ("↳ " * depth) + f"`{s.name}`"
        kind = s.type + (" (repeatable)" if s.multiple else "")
        rows.append(f"| {name} | {kind} | {_default(s)} | {_cell(s.doc)} | {_cell(_notes(s))} |")
        if s.settings:
            rows.extend(_table(list(s.settings), depth + 1))
    return rows


HEADER = ["| setting | type | default | meaning | notes |", "|---|---|---|---|---|"]


def plugin_page(kind: str, name: str) -> str:
    cls = registry.lookup(kind, name)
    lines = [f"# {kind} `{name}`", "", _cell(cls.doc or ""), "",
             f"Class `{cls.__module__}.{cls.__qualname__}`.", ""]
    if cls.__module__.startswith("logpipe_plugins"):
        module_doc = (__import__(cls.__module__, fromlist=["_"]).__doc__ or "").strip()
        if module_doc:
            lines += ["```text", module_doc, "```", ""]
    own = list(cls.settings)
    if own:
        lines += ["## Settings", "", *HEADER, *_table(own), ""]
    common = [s for s in cls.all_settings() if s.name not in {o.name for o in own}
              and s.name not in {b.name for b in BUFFER_SETTINGS}]
    if common:
        lines += [f"## Settings every {kind} takes", "", *HEADER, *_table(common), ""]
    if kind == "output":
        lines += ["## Buffer settings", "", "Flat in the Logstash DSL, a `<buffer>` section in Fluentd's.", "",
                  *HEADER, *_table(list(BUFFER_SETTINGS)), ""]
    return "\n".join(lines)


def on_files(files: Files, config: Any) -> Files:
    index = ["# Plugin reference", "",
             "Every built-in plugin, generated from its setting declarations "
             "(the same ones `logpipe plugins NAME` prints).", ""]
    for kind in registry.KINDS:
        index += [f"## {kind.capitalize()}s", ""]
        for name in registry.known(kind):
            path = f"plugins/{kind}-{name}.md"
            files.append(File.generated(config, path, content=plugin_page(kind, name)))
            cls = registry.lookup(kind, name)
            index.append(f"- [`{name}`]({kind}-{name}.md) — {_cell(cls.doc)}")
        index.append("")
    files.append(File.generated(config, "plugins/index.md", content="\n".join(index)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """The guide is the README itself; it links its images from the repository root, and on the
    site they sit next to the page, under docs/."""
    if page.file.src_uri == "index.md":
        readme = Path(config["config_file_path"]).parent / "README.md"
        return readme.read_text(encoding="utf-8").replace("](docs/images/", "](images/")
    return markdown
