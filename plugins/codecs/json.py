"""Logstash's json codec: one JSON document per event (no delimiter when encoding)."""

from __future__ import annotations

from logpipe.helpers.text_codecs import JsonDocumentCodec


class JsonCodec(JsonDocumentCodec):
    name = "json"
    doc = "Decodes JSON objects (invalid input is kept as `message`, tagged _jsonparsefailure)."
