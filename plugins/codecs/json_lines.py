"""Logstash's json_lines codec: newline-delimited JSON."""

from __future__ import annotations

from logpipe.helpers.text_codecs import JsonDocumentCodec


class JsonLinesCodec(JsonDocumentCodec):
    name = "json_lines"
    doc = "One JSON object per line, in and out."
    separator = b"\n"
