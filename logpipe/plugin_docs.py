"""`logpipe plugins`: every plugin with its settings, from their single declaration."""

from __future__ import annotations

from logpipe import registry
from logpipe.errors import ConfigError


def describe_plugins(contains: str | None = None) -> str:
    lines: list[str] = []
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
            for s in cls.settings:
                flags = " (required)" if s.required else (f" (default {s.default!r})" if s.default not in (
                    None, [], {}) else "")
                lines.append(f"    {s.name:<24} {s.type:<9} {s.doc}{flags}")
    common = "common settings: id; inputs: tag, type, tags, add_field, codec, @label; filters: add_field, " \
             "add_tag, remove_field, remove_tag, match; outputs: match, codec and the buffer settings"
    lines.append("")
    lines.append(common)
    return "\n".join(lines)
