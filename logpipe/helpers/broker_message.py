"""One event ↔ one broker message, for the broker plugins (Redis, RabbitMQ, Kafka).

A broker carries opaque payloads; what goes in each is the plugin's codec (Logstash's
default for its broker plugins is `json`: the event document with `@timestamp`). These
functions are pure so an output can run them in a worker and an input's decode of a
malformed payload costs only that payload: it becomes a `message` tagged by the codec.
"""

from __future__ import annotations

from typing import Any

import orjson

from logpipe.event import Event, event_document
from logpipe.jsonvalues import json_default
from logpipe.plugin import Codec
from logpipe.timefmt import parse_iso8601

__all__ = ["decode_payload", "encode_event"]


def encode_event(event: Event, codec: Codec | None) -> bytes:
    """The message body of one event: the codec's bytes, or the JSON event document."""
    if codec is None:
        return orjson.dumps(event_document(event), default=json_default)
    return codec.encode([event])


def decode_payload(payload: bytes | str, codec: Codec | None, tag: str) -> list[Event]:
    """The events in one message body. `@timestamp` (as the json codec wrote it) becomes the
    event time again, so shipper → broker → indexer keeps the time the shipper saw; a
    `@timestamp` that is not ISO 8601 stays in the record as `_@timestamp` (as beats does)."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray)) else payload
    if codec is None:
        return [Event(tag, None, {"message": text})]
    decode_bytes = getattr(codec, "decode_bytes", None)  # binary codecs (msgpack) read the bytes as they are
    if decode_bytes is not None and isinstance(payload, (bytes, bytearray)):
        records = decode_bytes([bytes(payload)])
    else:
        records = codec.decode([text])
    events: list[Event] = []
    for record in records:
        events.append(Event(tag, _take_time(record), record))
    return events


def _take_time(record: dict[str, Any]) -> int | None:
    stamp = record.pop("@timestamp", None)
    if stamp is None:
        return None
    ns = parse_iso8601(stamp) if isinstance(stamp, str) else None
    if ns is None:
        record["_@timestamp"] = stamp
    return ns
