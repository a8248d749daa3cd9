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


#: Gzip members accepted in one CompressedPackedForward chunk. Fluentd writes one member
#: per buffer append, so a chunk of tiny emits may hold many; an attacker's thirty
#: megabytes of empty members (1.5M) is refused.
MAX_GZIP_MEMBERS = 100_000
#: Containers nested deeper than this (a dict or list is one level) are refused per
#: record: it is the deepest orjson encodes inside a list, so every accepted record can
#: be written by every output; deeper would blow Python's recursion limit on the way.
MAX_DEPTH = 253
#: First input slice fed to a member's decompressor; doubled while the member goes on.
_FIRST_FEED = 64


def gunzip(data: bytes, limit: int, max_members: int = MAX_GZIP_MEMBERS) -> bytes:
    """Decompress one or more concatenated gzip members (the spec allows several),
    refusing to inflate past `limit` bytes or to start member `max_members` + 1.

    Linear in the input: each member's decompressor is fed growing slices of a view, so
    what zlib copies back as unused data is at most the slice, never the rest of the
    buffer (the naive `data = d.unused_data` loop is quadratic in the member count)."""
    out: list[bytes] = []
    total = 0
    members = 0
    pos, end = 0, len(data)
    with memoryview(data) as view:
        while pos < end:
            members += 1
            if members > max_members:
                raise TooLarge(f"more than {max_members} gzip members")
            d = zlib.decompressobj(wbits=31)
            step = _FIRST_FEED
            while not d.eof:
                if pos >= end:
                    raise zlib.error("truncated gzip data")
                with view[pos:pos + step] as piece:
                    chunk = d.decompress(piece, limit - total + 1)
                    total += len(chunk)
                    if total > limit or d.unconsumed_tail:
                        raise TooLarge(f"decompressed entries exceed {limit} bytes")
                    pos += len(piece) - len(d.unused_data)
                out.append(chunk)
                step = min(step * 2, 1 << 20)
    return b"".join(out)


class TooDeep(ValueError):
    """A record nested deeper than MAX_DEPTH."""


def clean_records(records: list[Any]) -> list[Any]:
    """Make records JSON-like: strings decoded with surrogateescape get U+FFFD for their
    bad bytes, bin values become text. One orjson pass checks a whole batch in C, so
    the per-value walk runs only for the rare batch that needs it. A record nested deeper
    than MAX_DEPTH comes back as None: the caller rejects that one record."""
    try:
        orjson.dumps(records)
        return records
    except (TypeError, orjson.JSONEncodeError):
        return [_clean_or_none(r) for r in records]


def _clean_or_none(value: Any) -> Any:
    try:
        return _clean(value, MAX_DEPTH)
    except TooDeep:
        return None


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, (dict, list)):
        if depth <= 0:
            raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            return {_clean(k, depth): _clean(v, depth - 1) for k, v in value.items()}
        return [_clean(v, depth - 1) for v in value]
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
