"""Fluentd's `stdout` filter: print each event as out_stdout does and pass it on unchanged
(a debugging tap in the middle of a chain)."""

from __future__ import annotations

import sys
from typing import ClassVar

from logpipe.event import Event
from logpipe.helpers.fluentd_format import stdout_line
from logpipe.plugin import Filter, Setting


class StdoutFilter(Filter):
    name = "stdout"
    creates_events = False
    parallel = False  # prints in event order from one process
    doc = "Fluentd filter_stdout: prints `time tag: {record}` for each event and passes it on."
    settings: ClassVar[list[Setting]] = [
        Setting("format", "hash", doc="accepted: Fluentd's <format>; the out_stdout line is printed"),
        Setting("inject", "hash", doc="accepted and ignored"),
        Setting("output_type", "string", doc="v0.12: json (the line's record is always JSON here)"),
    ]

    def filter(self, events: list[Event]) -> list[Event]:
        out = sys.stdout.buffer
        out.write(b"".join(stdout_line(ev) for ev in events))
        out.flush()
        return events
