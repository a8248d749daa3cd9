"""The line Fluentd's stdout output prints, as a codec: the default of `@type stdout` in Fluentd
configs (Logstash configs keep rubydebug)."""

from __future__ import annotations

from typing import Any

from logpipe.event import Event
from logpipe.helpers.fluentd_format import stdout_line
from logpipe.plugin import Codec


class FluentdStdoutCodec(Codec):
    name = "fluentd_stdout"
    doc = "Fluentd out_stdout lines: `2015-05-17 10:05:03.000000000 +0000 tag: {json}` (encode only)."

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return [{"message": line} for line in lines]

    def encode(self, events: list[Event]) -> bytes:
        return b"".join(stdout_line(ev) for ev in events)
