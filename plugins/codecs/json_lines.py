"""Logstash's json_lines codec: newline-delimited JSON."""

from __future__ import annotations

from logpipe_plugins.codecs.json import JsonCodec


class JsonLinesCodec(JsonCodec):
    name = "json_lines"
    doc = "One JSON object per line, in and out."
    separator = b"\n"
