"""Fluentd's `<format>` section on an output, as the codec that writes the same bytes.

fluent-plugin-kafka, fluent-plugin-rabbitmq and out_s3 say how a record becomes bytes with
`<format> @type json </format>` where Logstash says `codec => json`; one declaration here, so
each output accepts it the same way (a `codec` written beside it wins).
"""

from __future__ import annotations

from typing import Any

from logpipe.base import Codec
from logpipe.registry import create_codec
from logpipe.settings import Section, Setting

FORMATS = ("json", "single_value", "msgpack")

FORMAT_SECTION = Section("format", [
    Setting("@type", "string", default="json", choices=FORMATS, doc="json, single_value, msgpack"),
    Setting("message_key", "string", default="message", doc="single_value: the field written"),
    Setting("add_newline", "bool", default=True, doc="single_value: end with a newline"),
], doc="Fluentd <format>: how a record becomes bytes (instead of codec)")


def format_codec(section: Any, *, lines: bool = False) -> Codec:
    """The codec of a `<format>` section; `lines`: each record ends with a newline (a file or
    an object of many records: json → json_lines)."""
    kind = section["@type"]
    if kind == "single_value":
        name = "line" if section["add_newline"] else "plain"
        return create_codec(name, format=f"%{{[{section['message_key']}]}}")
    if kind == "json" and lines:
        return create_codec("json_lines")
    return create_codec(kind)


def codec_from_settings(settings: dict[str, Any], params: dict[str, Any], *, lines: bool = False) -> Codec | None:
    """The `<format>` codec when the user wrote a format section and no codec, else None."""
    if "format" in settings and "codec" not in settings:
        return format_codec(params["format"], lines=lines)
    return None
