"""Logstash's `dots` codec: one `.` per event, for watching throughput (`stdout { codec => dots }`)."""

from __future__ import annotations

from typing import Any

from logpipe.event import Event
from logpipe.plugin import Codec


class DotsCodec(Codec):
    name = "dots"
    doc = "Writes a single '.' per event (a throughput indicator); decodes lines as plain messages."

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return [{"message": line} for line in lines]

    def encode(self, events: list[Event]) -> bytes:
        return b"." * len(events)
