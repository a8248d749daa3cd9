"""Logstash's rubydebug codec: the pretty print people read on a console."""

from __future__ import annotations

from typing import Any

from logpipe.event import Event, event_document
from logpipe.plugin import Codec, Setting


class RubydebugCodec(Codec):
    name = "rubydebug"
    doc = "Pretty-prints each event as a Ruby-style hash with aligned keys (encode only)."
    settings = [Setting("metadata", "bool", default=False, doc="also show [@metadata]")]

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return [{"message": line} for line in lines]

    def encode(self, events: list[Event]) -> bytes:
        meta = self.params["metadata"]
        return "".join(_render(event_document(ev, meta), 0) + "\n" for ev in events).encode("utf-8", "replace")


def _render(value: Any, indent: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        width = max(len(_quote(k)) for k in value)
        pad = " " * (indent + 4)
        rows = [f"{pad}{_quote(k).rjust(width)} => {_render(v, indent + 4)}" for k, v in value.items()]
        return "{\n" + ",\n".join(rows) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        pad = " " * (indent + 4)
        rows = [f"{pad}[{i}] {_render(v, indent + 4)}" for i, v in enumerate(value)]
        return "[\n" + ",\n".join(rows) + "\n" + " " * indent + "]"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _quote(str(value))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
