"""Fluentd Forward Protocol v1 pieces shared by the forward input and output.

What lives here is the wire format itself — EventTime, the handshake digests, the
decompression limits, record clean-up — so the server (in_forward) and the client
(out_forward) cannot drift apart. Spec: fluent/fluentd wiki "Forward Protocol
Specification v1".
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import msgpack
import orjson

NS = 1_000_000_000
EVENT_TIME_EXT = 0
_SEC_NSEC = struct.Struct(">II")


def ext_hook(code: int, data: bytes) -> Any:
    """msgpack ext hook: an EventTime becomes a (seconds, nanoseconds) tuple — unambiguous,
    since the unpackers build lists for arrays, and cheaper than any object; any other
    ext stays an ExtType."""
    if code == EVENT_TIME_EXT and len(data) == 8:
        return _SEC_NSEC.unpack(data)
    return msgpack.ExtType(code, data)


def time_to_ns(value: Any) -> int | None:
    """The entry's time as int ns (EventTime, integer seconds or float seconds), None if it is not a time."""
    kind = type(value)
    if kind is tuple:
        return value[0] * NS + value[1]
    if kind is int:
        return value * NS
    if kind is float:
        return int(value * NS)
    return None


def event_time(ns: int) -> msgpack.ExtType:
    """int ns → the EventTime ext the output sends."""
    sec, nsec = divmod(ns, NS)
    return msgpack.ExtType(EVENT_TIME_EXT, _SEC_NSEC.pack(sec & 0xFFFFFFFF, nsec))


def new_unpacker(max_buffer_size: int, keep_raw_strings: bool = False) -> msgpack.Unpacker:
    """A streaming unpacker with the forward conventions.

    `keep_raw_strings` decodes strings with surrogateescape so a str-typed value can be
    turned back into its exact bytes: Fluentd's out_forward sends PackedForward
    entries as a str32, not a bin, and they must survive byte for byte. Records
    decoded that way are passed through `clean_records` before they leave.
    """
    return msgpack.Unpacker(
        raw=False,
        unicode_errors="surrogateescape" if keep_raw_strings else "replace",
        ext_hook=ext_hook,
        max_buffer_size=max_buffer_size,
        strict_map_key=False,
        use_list=True,
    )


def as_bytes(value: Any) -> bytes | None:
    """PackedForward entries: a bin, or a str decoded with surrogateescape."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return None


class TooLarge(ValueError):
    """Decompressed data over the configured limit (a gzip bomb or an oversized chunk)."""


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress one or more concatenated gzip members (the spec allows several),
    refusing to inflate past `limit` bytes."""
    out: list[bytes] = []
    total = 0
    while data:
        d = zlib.decompressobj(wbits=31)
        chunk = d.decompress(data, limit - total + 1)
        total += len(chunk)
        if total > limit or d.unconsumed_tail:
            raise TooLarge(f"decompressed entries exceed {limit} bytes")
        if not d.eof:
            raise zlib.error("truncated gzip data")
        out.append(chunk)
        data = d.unused_data
    return b"".join(out)


def clean_records(records: list[Any]) -> list[Any]:
    """Make records JSON-like: strings decoded with surrogateescape get U+FFFD for their
    bad bytes, bin values become text. One orjson pass checks a whole batch in C, so
    the per-value walk runs only for the rare batch that needs it."""
    try:
        orjson.dumps(records)
        return records
    except (TypeError, orjson.JSONEncodeError):
        return [_clean(r) for r in records]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def shared_key_digest(salt: bytes, hostname: str, nonce: bytes, shared_key: str) -> str:
    """sha512_hex(salt + hostname + nonce + shared_key), used by PING and PONG."""
    h = hashlib.sha512(salt)
    h.update(hostname.encode("utf-8", "surrogateescape"))
    h.update(nonce)
    h.update(shared_key.encode())
    return h.hexdigest()


def password_digest(auth_salt: bytes, username: str, password: str) -> str:
    """sha512_hex(auth_salt + username + password), the PING's user authentication."""
    h = hashlib.sha512(auth_salt)
    h.update(username.encode("utf-8", "surrogateescape"))
    h.update(password.encode())
    return h.hexdigest()


def to_bytes(value: Any) -> bytes:
    """Nonces and salts arrive as bin or str depending on the peer's msgpack settings."""
    return as_bytes(value) or b""
