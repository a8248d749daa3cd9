"""Logstash's stdout output (default codec rubydebug) and Fluentd's out_stdout: in Fluentd
configs the line is `time tag: {json}` (codec fluentd_stdout), or what a `<format>` section
asks for (`@type stdout` with `output_type`, `json`, `ltsv` …), after `<inject>`."""

from __future__ import annotations

import os
import sys

from logpipe.helpers.formatter import FormatSection
from logpipe.plugin import Codec, Event, Output, Setting, WriteResult
from logpipe.registry import create_codec


class StdoutOutput(Output):
    name = "stdout"
    doc = "Prints events to standard output through a codec (rubydebug, json_lines, line, json …)."
    helpers = [FormatSection]
    settings = [Setting("fd", "int", default=None, doc="file descriptor to write (default: standard output)")]
    buffer_defaults = {"flush_interval": 0.0}

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self._codec: Codec = self.params["codec"] or create_codec("rubydebug")
        self.formatter = None
        if self.params.get("format") is not None:
            self.formatter = FormatSection.create(self, "stdout", {"output_type": "json"})

    def format(self, events: list[Event]) -> list[bytes]:
        formatter = self.formatter
        if formatter is None:
            return self._codec.encode_each(events)
        line = formatter.format
        if formatter.binary:
            return [line(ev.tag, ev.time, ev.record) for ev in events]
        # out_stdout: `format(...).chomp + "\n"`
        return [_chomp(line(ev.tag, ev.time, ev.record)) + b"\n" for ev in events]

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


def _chomp(data: bytes) -> bytes:
    """Ruby's String#chomp: one trailing \\r\\n, \\n or \\r."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data[-1:] in (b"\n", b"\r") else data
