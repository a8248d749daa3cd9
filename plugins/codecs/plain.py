"""Logstash's plain codec: text in, text out, no framing."""

from __future__ import annotations

from logpipe.helpers.text_codecs import TemplateCodec


class PlainCodec(TemplateCodec):
    name = "plain"
    doc = "Each line becomes `message`; events are written with `format` (default %{message}), unframed."
