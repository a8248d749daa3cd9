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

__all__ = ["decode_payload", "decode_payloads", "encode_event", "encode_events"]


def encode_event(event: Event, codec: Codec | None) -> bytes:
    """The message body of one event: the codec's bytes, or the JSON event document."""
    if codec is None:
        return orjson.dumps(event_document(event), default=json_default)
    return codec.encode([event])


def encode_events(events: list[Event], codec: Codec | None) -> list[bytes]:
    """`encode_event` of a whole chunk in one codec call."""
    if codec is None:
        return [orjson.dumps(event_document(ev), default=json_default) for ev in events]
    return codec.encode_each(events)


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


def decode_payloads(payloads: list[bytes], codec: Codec | None, tag: str) -> list[Event]:
    """`decode_payload` of many bodies in one codec call: what a batch from a list or stream
    costs once instead of once per message (the events do not say which body they came from)."""
    if codec is None:
        return [Event(tag, None, {"message": p.decode("utf-8", "replace")}) for p in payloads]
    decode_bytes = getattr(codec, "decode_bytes", None)
    if decode_bytes is not None:
        records = decode_bytes([bytes(p) for p in payloads])
    else:
        records = codec.decode([p.decode("utf-8", "replace") for p in payloads])
    take_time = _take_time
    return [Event(tag, take_time(record), record) for record in records]


def _take_time(record: dict[str, Any]) -> int | None:
    stamp = record.pop("@timestamp", None)
    if stamp is None:
        return None
    ns = _iso_ms(stamp) if isinstance(stamp, str) else None
    if ns is None:
        record["_@timestamp"] = stamp
    return ns


_SECONDS: dict[str, int] = {}


def _iso_ms(stamp: str) -> int | None:
    """parse_iso8601, with a fast path for the form the json codec writes
    (`2023-11-14T22:13:20.123Z`): the second is looked up, only the milliseconds are read.
    On the indexer side of a broker tier this parse is most of the decoding cost."""
    if len(stamp) == 24 and stamp[23] == "Z" and stamp[19] == "." and stamp[10] == "T":
        millis = stamp[20:23]
        if millis.isdigit():
            head = stamp[:19]
            base = _SECONDS.get(head)
            if base is None:
                base = parse_iso8601(head + "Z")
                if base is None:
                    return None
                if len(_SECONDS) >= 4096:
                    _SECONDS.clear()
                _SECONDS[head] = base
            return base + int(millis) * 1_000_000
    return parse_iso8601(stamp)
