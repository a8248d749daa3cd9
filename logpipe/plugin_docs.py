"""`logpipe plugins`: every plugin with its settings, from their single declaration.

`logpipe plugins` lists every plugin, a line per setting; `logpipe plugins NAME` with the
exact name of a plugin shows that plugin whole: its settings and the settings of the
helpers it composes, each with its type, default, range, choices, old and other-language
names and example, nested sections indented under their section. Secret defaults are
never shown. The generated plugin reference (docs/hooks.py) takes its notes from here.
"""

from __future__ import annotations

from collections.abc import Callable

from logpipe import registry
from logpipe.buffer.settings import BUFFER_SETTINGS
from logpipe.errors import ConfigError
from logpipe.plugin import Filter, Input, Output, Plugin, Setting


def describe_plugins(contains: str | None = None) -> str:
    """Everything, or with `contains` the exact plugin of that name (every kind that has
    one) in detail; any other text narrows the list to plugin names holding it."""
    if contains and any(contains in registry.known(kind) for kind in registry.KINDS):
        return describe_plugin(contains)
    lines: list[str] = []
    outputs_shown = False
    for kind, cls in _classes(lambda name: not contains or contains in name, lines.append):
        lines.append(f"{kind} {cls.name}: {cls.doc}".rstrip(": "))
        lines.extend(_setting_lines(cls.settings))
        outputs_shown = outputs_shown or kind == "output"
    lines.append("")
    lines.append(_common_settings())
    if outputs_shown:
        lines.append("buffer settings of every output (defaults in the text: they depend on the buffer type):")
        lines.extend(_setting_lines(BUFFER_SETTINGS))
    return "\n".join(lines)


def describe_plugin(name: str) -> str:
    """One plugin of every kind that has that name, in full."""
    parts: list[str] = []
    parts += [_plugin_detail(kind, cls) for kind, cls in _classes(lambda known: known == name, parts.append)]
    return "\n\n".join(parts)


def _classes(wanted: Callable[[str], bool], unavailable: Callable[[str], None]) -> list[tuple[str, type[Plugin]]]:
    """(kind, class) of every plugin whose name is wanted; one that cannot be loaded is reported."""
    found = []
    for kind in registry.KINDS:
        for name in filter(wanted, registry.known(kind)):
            try:
                found.append((kind, registry.lookup(kind, name)))
            except ConfigError as exc:
                unavailable(f"{kind} {name}: unavailable ({exc.message})")
    return found


def _plugin_detail(kind: str, cls: type[Plugin]) -> str:
    lines = [f"{kind} {cls.name}: {cls.doc}".rstrip(": "), f"  class {cls.__module__}.{cls.__qualname__}"]
    own = {s.name for s in cls.settings}
    common = {s.name for s in cls.common_settings}
    buffer = {s.name for s in BUFFER_SETTINGS}
    lines += ["", "  settings:"]
    lines += _detail_lines(list(cls.settings), 2) or ["    (none of its own)"]
    for helper in cls.helpers:
        from_helper = [s for s in helper.settings_for(cls) if s.name not in own]
        if from_helper:
            lines += ["", f"  settings from the {helper.__name__} helper:", *_detail_lines(from_helper, 2)]
    shared = [s for s in cls.all_settings() if s.name in common and s.name not in own and s.name not in buffer]
    lines += ["", f"  settings every {kind} takes:", *_detail_lines(shared, 2)]
    if kind == "output":
        lines += ["", "  buffer settings (flat in the Logstash DSL, a <buffer> section in Fluentd's):",
                  *_detail_lines(list(BUFFER_SETTINGS), 2)]
    return "\n".join(lines)


def _detail_lines(settings: list[Setting], depth: int) -> list[str]:
    lines = []
    pad = "  " * depth
    for s in settings:
        kind = "section" + (", repeatable" if s.multiple else "") if s.type == "section" else s.type
        lines.append(f"{pad}{s.name:<{max(8, 32 - len(pad))}} {kind:<10} {s.doc}".rstrip())
        notes = setting_notes(s)
        if notes:
            lines.append(f"{pad}{'':<{max(8, 32 - len(pad))}} {'':<10} {'; '.join(notes)}")
        if s.settings:
            lines.extend(_detail_lines(list(s.settings), depth + 1))
    return lines


def setting_notes(s: Setting, code: Callable[[object], str] = str, default: bool = True) -> list[str]:
    """What a reader needs beside the doc line: default (never a secret's; left out with
    `default=False`), required, choices, range, secret, old and other-language names, example.
    `code` quotes a value (Markdown: backticks)."""
    notes = []
    if s.required:
        notes.append("required")
    elif default and s.default not in (None, [], {}, ()) and not s.secret:
        notes.append(f"default {code(repr(s.default))}")
    if s.choices:
        notes.append("one of " + ", ".join(code(c) for c in s.choices if c is not None))
    if s.min is not None and s.max is not None:
        notes.append(f"{s.min:g} to {s.max:g}")
    elif s.min is not None:
        notes.append(f"at least {s.min:g}")
    elif s.max is not None:
        notes.append(f"at most {s.max:g}")
    if s.secret:
        notes.append("secret (never shown or logged)")
    if s.old_names:
        notes.append("deprecated names: " + ", ".join(code(a) for a in s.old_names))
    if s.spellings:
        notes.append("also spelled " + ", ".join(code(a) for a in s.spellings))
    if s.example is not None:
        notes.append(f"example: {code(s.example)}")
    return notes


def _setting_lines(settings: list[Setting]) -> list[str]:
    lines = []
    for s in settings:
        flags = " (required)" if s.required else (f" (default {s.default!r})" if s.default not in (
            None, [], {}) and not s.secret else "")
        lines.append(f"    {s.name:<31} {s.type:<9} {s.doc}{flags}")
    return lines


def _common_settings() -> str:
    """Derived from the base classes' declarations, so the summary cannot drift from them."""
    buffer = {s.name for s in BUFFER_SETTINGS}

    def names(cls: type[Plugin]) -> str:
        return ", ".join(s.name for s in cls.common_settings if s.name != "id" and s.name not in buffer)

    return (f"common settings: id; inputs: {names(Input)}; filters: {names(Filter)}; "
            f"outputs: {names(Output)} and the buffer settings")
