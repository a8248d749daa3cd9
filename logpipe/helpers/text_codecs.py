"""What Logstash's text codecs share, so that a codec and its line-framed twin are two
short plugins over one implementation instead of one plugin importing another:
`plain`/`line` (a sprintf template per event, with or without a newline) and
`json`/`json_lines` (one JSON document per event, with or without one)."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from logpipe.base import Codec
from logpipe.event import Event, event_document
from logpipe.fields import compile_sprintf
from logpipe.helpers.parser import json_records
from logpipe.jsonvalues import json_default
from logpipe.settings import Setting


class TemplateCodec(Codec):
    """Each line becomes `message`; each event is written as `format`, then `newline`."""

    settings: ClassVar[list[Setting]] = [
        Setting("format", "string", default="%{message}", doc="sprintf template of the output text")]
    newline: ClassVar[bytes] = b""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self._format = compile_sprintf(self.params["format"])

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return [{"message": line} for line in lines]

    def encode(self, events: list[Event]) -> bytes:
        render = self._format
        newline = self.newline.decode()
        return "".join(render(ev) + newline for ev in events).encode("utf-8", "replace")


class JsonDocumentCodec(Codec):
    """JSON objects in (a line holding an array of objects gives each; anything else is kept
    as `message`, tagged _jsonparsefailure and counted); one document per event out, then
    `separator`."""

    settings: ClassVar[list[Setting]] = [
        Setting("metadata", "bool", default=False, doc="also write [@metadata] when encoding")]
    separator: ClassVar[bytes] = b""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self._failures = self.metrics.counter("json_failures", "lines that were not JSON objects")

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return json_records(lines, self._failures, arrays=True)

    def encode(self, events: list[Event]) -> bytes:
        return b"".join(self.encode_each(events))

    def encode_each(self, events: list[Event]) -> list[bytes]:
        dumps = orjson.dumps
        meta = self.params["metadata"]
        sep = self.separator
        return [dumps(event_document(ev, meta), default=json_default) + sep for ev in events]
