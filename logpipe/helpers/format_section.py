"""Fluentd's `<format>` on a codec-driven output (kafka, rabbitmq, s3): the formatter the
section describes (logpipe/helpers/formatter.py, Fluentd's formatters byte for byte) as the
codec the output encodes with. fluent-plugin-kafka, fluent-plugin-rabbitmq and out_s3 say
`<format> @type json </format>` where Logstash says `codec => json`; a `codec` written beside
it wins. Plugins list `FormatSection` in their helpers for the setting."""

from __future__ import annotations

from typing import Any

from logpipe.base import Codec, Plugin
from logpipe.event import Event
from logpipe.helpers.formatter import FormatSection, Formatter

__all__ = ["FormatSection", "FormatterCodec", "codec_from_format"]


class FormatterCodec(Codec):
    """Encodes each event as `formatter.format(tag, time, record)`; outputs only."""

    name = "fluentd_format"

    def __init__(self, formatter: Formatter) -> None:
        super().__init__()
        self.formatter = formatter

    def encode(self, events: list[Event]) -> bytes:
        return b"".join(self.encode_each(events))

    def encode_each(self, events: list[Event]) -> list[bytes]:
        line = self.formatter.format
        return [line(ev.tag, ev.time, ev.record) for ev in events]

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        raise NotImplementedError("a <format> section encodes; use a codec or <parse> to decode")


def codec_from_format(plugin: Plugin, settings: dict[str, Any], default_type: str) -> Codec | None:
    """The `<format>` section's codec when the user wrote one and no codec, else None."""
    if plugin.params.get("format") is None or "codec" in settings:
        return None
    return FormatterCodec(FormatSection.create(plugin, default_type))
