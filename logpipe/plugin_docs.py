"""`logpipe plugins`: every plugin with its settings, from their single declaration."""

from __future__ import annotations

from logpipe import registry
from logpipe.buffer.settings import BUFFER_SETTINGS
from logpipe.errors import ConfigError
from logpipe.plugin import Filter, Input, Output, Plugin, Setting


def describe_plugins(contains: str | None = None) -> str:
    """One line a plugin and one a setting; `contains` narrows to plugin names holding it."""
    lines: list[str] = []
    outputs_shown = False
    for kind in registry.KINDS:
        for name in registry.known(kind):
            if contains and contains not in name:
                continue
            try:
                cls = registry.lookup(kind, name)
            except ConfigError as exc:
                lines.append(f"{kind} {name}: unavailable ({exc.message})")
                continue
            lines.append(f"{kind} {name}: {cls.doc}".rstrip(": "))
            lines.extend(_setting_lines(cls.settings))
            outputs_shown = outputs_shown or kind == "output"
    lines.append("")
    lines.append(_common_settings())
    if outputs_shown:
        lines.append("buffer settings of every output (defaults in the text: they depend on the buffer type):")
        lines.extend(_setting_lines(BUFFER_SETTINGS))
    return "\n".join(lines)


def _setting_lines(settings: list[Setting]) -> list[str]:
    lines = []
    for s in settings:
        flags = " (required)" if s.required else (f" (default {s.default!r})" if s.default not in (
            None, [], {}) else "")
        lines.append(f"    {s.name:<31} {s.type:<9} {s.doc}{flags}")
    return lines


def _common_settings() -> str:
    """Derived from the base classes' declarations, so the summary cannot drift from them."""
    buffer = {s.name for s in BUFFER_SETTINGS}

    def names(cls: type[Plugin]) -> str:
        return ", ".join(s.name for s in cls.common_settings if s.name != "id" and s.name not in buffer)

    return (f"common settings: id; inputs: {names(Input)}; filters: {names(Filter)}; "
            f"outputs: {names(Output)} and the buffer settings")
