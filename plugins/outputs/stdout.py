"""Logstash's stdout output. The default codec is rubydebug, as in Logstash."""

from __future__ import annotations

import os
import sys

from logpipe.plugin import Codec, Event, Output, Setting, WriteResult
from logpipe.registry import create_codec


class StdoutOutput(Output):
    name = "stdout"
    doc = "Prints events to standard output through a codec (rubydebug, json_lines, line, json …)."
    settings = [Setting("fd", "int", default=None, doc="file descriptor to write (default: standard output)")]
    buffer_defaults = {"flush_interval": 0.0}

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self._codec: Codec = self.params["codec"] or create_codec("rubydebug")

    def format(self, events: list[Event]) -> list[bytes]:
        return self._codec.encode_each(events)

    async def write(self, items: list[bytes]) -> WriteResult | None:
        data = b"".join(items)
        if self.params["fd"] is not None:
            view = memoryview(data)
            while view:
                view = view[os.write(self.params["fd"], view):]
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        return None
