"""Logstash's plain codec: text in, text out, no framing."""

from __future__ import annotations

from typing import Any

from logpipe.plugin import Codec, Event, Setting, compile_sprintf


class PlainCodec(Codec):
    name = "plain"
    doc = "Each line becomes `message`; events are written with `format` (default %{message}), unframed."
    settings = [Setting("format", "string", default="%{message}", doc="sprintf template of the output text")]
    newline = b""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self._format = compile_sprintf(self.params["format"])

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return [{"message": line} for line in lines]

    def encode(self, events: list[Event]) -> bytes:
        render = self._format
        newline = self.newline.decode()
        return "".join(render(ev) + newline for ev in events).encode("utf-8", "replace")
