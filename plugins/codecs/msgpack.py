"""Logstash's `msgpack` codec: events as MessagePack maps.

Encoding writes each event's document (`@timestamp` as ISO text, like Logstash) as one map.
Decoding takes frames that each hold one map (an input that frames messages, or a line whose
bytes survived UTF-8 decoding); anything else keeps its text in `message`, tagged
`_msgpackparsefailure`. `format` sets `message` by sprintf when encoding, as Logstash's does.
"""

from __future__ import annotations

from typing import Any

import msgpack

from logpipe.event import Event, event_document
from logpipe.fields import compile_sprintf
from logpipe.jsonvalues import msgpack_default
from logpipe.plugin import Codec, Setting

FAILURE_TAG = "_msgpackparsefailure"


class MsgpackCodec(Codec):
    name = "msgpack"
    doc = "MessagePack maps: encodes each event as one map; decodes maps back to events."
    settings = [Setting("format", "string", doc="encode: set message from this sprintf first")]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._format = compile_sprintf(self.params["format"]) if self.params["format"] else None

    def decode_bytes(self, frames: list[bytes]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for frame in frames:
            try:
                value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
            except (ValueError, msgpack.UnpackException):
                value = None
            if isinstance(value, dict):
                out.append({str(k): v for k, v in value.items()})
            else:
                out.append({"message": frame.decode("utf-8", "replace"), "tags": [FAILURE_TAG]})
        return out

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        return self.decode_bytes([line.encode("utf-8", "surrogateescape") for line in lines])

    def encode(self, events: list[Event]) -> bytes:
        packer = msgpack.Packer(default=msgpack_default)
        chunks = []
        for ev in events:
            doc = event_document(ev)
            if self._format is not None:
                doc["message"] = self._format(ev)
            chunks.append(packer.pack(doc))
        return b"".join(chunks)
