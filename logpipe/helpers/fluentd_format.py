"""Fluentd's default text forms of an event, for the codec and filter that print them:
out_stdout / filter_stdout (`2015-05-17 10:05:03.000000000 +0000 web.access: {"k":"v"}`, in
local time as Fluentd prints it) and out_file's default (`2015-05-17T10:05:03+00:00<TAB>tag<TAB>{"k":"v"}`).
Both are the `<format>` formatters with their defaults (logpipe.helpers.formatter)."""

from __future__ import annotations

from logpipe.event import Event
from logpipe.helpers.formatter import build_formatter

_STDOUT = build_formatter({"@type": "stdout"}, "stdout", {"output_type": "json"})
_OUT_FILE = build_formatter({"@type": "out_file"})


def stdout_line(ev: Event) -> bytes:
    return _STDOUT.format(ev.tag, ev.time, ev.record)


def out_file_line(ev: Event) -> bytes:
    return _OUT_FILE.format(ev.tag, ev.time, ev.record)
