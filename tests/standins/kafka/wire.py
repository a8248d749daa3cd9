"""Kafka's classic (non-flexible) wire encoding, from the protocol guide: big-endian
integers, INT16-length strings (-1: null), INT32-length bytes (-1: null), INT32-count
arrays (-1: null). A schema is a tuple of (name, type) pairs; a type is one of the
primitive names below, a nested schema, or a one-element list `[type]` for an array.
Decoding gives dicts; encoding takes dicts (or tuples in field order)."""

from __future__ import annotations

import struct
from typing import Any

Schema = tuple[tuple[str, Any], ...]

_FIXED = {"i8": struct.Struct(">b"), "i16": struct.Struct(">h"), "i32": struct.Struct(">i"),
          "i64": struct.Struct(">q"), "bool": struct.Struct(">?")}


class Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def fixed(self, kind: str) -> Any:
        fmt = _FIXED[kind]
        if self.pos + fmt.size > len(self.data):
            raise ValueError("request truncated")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return value

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ValueError("request truncated")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def read(self, kind: Any) -> Any:
        if isinstance(kind, str):
            if kind in _FIXED:
                return self.fixed(kind)
            if kind == "str":
                size = self.fixed("i16")
                return None if size < 0 else self.take(size).decode("utf-8")
            if kind == "bytes":
                size = self.fixed("i32")
                return None if size < 0 else self.take(size)
            raise TypeError(kind)
        if isinstance(kind, list):
            count = self.fixed("i32")
            return None if count < 0 else [self.read(kind[0]) for _ in range(count)]
        return {name: self.read(sub) for name, sub in kind}


def encode(kind: Any, value: Any, out: list[bytes]) -> None:
    if isinstance(kind, str):
        if kind in _FIXED:
            out.append(_FIXED[kind].pack(value))
        elif kind == "str":
            if value is None:
                out.append(b"\xff\xff")
            else:
                raw = value.encode("utf-8")
                out.append(struct.pack(">h", len(raw)) + raw)
        elif kind == "bytes":
            if value is None:
                out.append(b"\xff\xff\xff\xff")
            else:
                out.append(struct.pack(">i", len(value)))
                out.append(bytes(value))
        else:
            raise TypeError(kind)
        return
    if isinstance(kind, list):
        if value is None:
            out.append(b"\xff\xff\xff\xff")
            return
        out.append(struct.pack(">i", len(value)))
        for item in value:
            encode(kind[0], item, out)
        return
    if isinstance(value, dict):
        for name, sub in kind:
            encode(sub, value[name], out)
    else:
        for (_, sub), item in zip(kind, value, strict=True):
            encode(sub, item, out)


def to_bytes(schema: Schema, value: Any) -> bytes:
    out: list[bytes] = []
    encode(schema, value, out)
    return b"".join(out)


def varint(reader: Reader) -> int:
    """A zig-zag varint (record fields inside a v2 record batch)."""
    shift = result = 0
    while True:
        byte = reader.take(1)[0]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1)
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of a v2 record batch."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
