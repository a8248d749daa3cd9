"""Logstash's line codec: like plain, one event per line."""

from __future__ import annotations

from logpipe.helpers.text_codecs import TemplateCodec


class LineCodec(TemplateCodec):
    name = "line"
    doc = "One event per line; written with `format` (default %{message}) and a newline."
    newline = b"\n"
