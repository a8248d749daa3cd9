"""Lumberjack (Beats) frame parser, v2 with the v1 data frame.

Wire format (elastic/go-lumber, logstash-input-beats): every frame starts with a
version byte ('1' or '2') and a type byte.

    'W' window size   uint32 count of data frames that make up the next window
    'C' compressed    uint32 length, then zlib data holding more frames
    'J' JSON data     uint32 seq, uint32 length, JSON document           (v2)
    'D' data          uint32 seq, uint32 pairs, (uint32 len, key, uint32 len, value)*  (v1)
    'A' ack           uint32 seq (server → client only)

The parser is fed whatever the socket returns and yields only complete frames, so
partial reads need no special path; the unparsed tail stays buffered.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

V1, V2 = 0x31, 0x32
WINDOW, COMPRESSED, JSON, DATA, ACK = 0x57, 0x43, 0x4A, 0x44, 0x41
_U32 = struct.Struct(">I")
_U32x2 = struct.Struct(">II")


class FrameError(ValueError):
    """A protocol violation; `reason` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ack_frame(version: int, seq: int) -> bytes:
    return bytes((version, ACK)) + _U32.pack(seq)


class FrameParser:
    """Accumulates bytes; `frames()` returns the complete ones as tuples:
    ("W", version, size) and ("E", version, seq, payload) where payload is the decoded
    JSON value (or a JsonFailure) for 'J', a dict of strings for 'D'."""

    def __init__(self, max_frame_size: int) -> None:
        self.max = max_frame_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        self._buf += data
        out: list[tuple[Any, ...]] = []
        with memoryview(self._buf) as view:
            used = self._parse(view, out, nested=False)
        del self._buf[:used]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _parse(self, buf: memoryview, out: list[tuple[Any, ...]], nested: bool) -> int:
        pos, end = 0, len(buf)
        while end - pos >= 2:
            version, code = buf[pos], buf[pos + 1]
            if version != V2 and version != V1:
                raise FrameError("bad_version", f"unknown protocol version byte 0x{version:02x}")
            if code == JSON:
                if end - pos < 10:
                    break
                seq, size = _U32x2.unpack_from(buf, pos + 2)
                self._check_size(size)
                stop = pos + 10 + size
                if stop > end:
                    break
                out.append(("E", version, seq, _json(buf[pos + 10:stop])))
                pos = stop
            elif code == WINDOW:
                if end - pos < 6:
                    break
                out.append(("W", version, _U32.unpack_from(buf, pos + 2)[0]))
                pos += 6
            elif code == COMPRESSED:
                if end - pos < 6:
                    break
                size = _U32.unpack_from(buf, pos + 2)[0]
                self._check_size(size)
                stop = pos + 6 + size
                if stop > end:
                    break
                inner = self._inflate(buf[pos + 6:stop])
                with memoryview(inner) as view:
                    if self._parse(view, out, nested=True) != len(inner):
                        raise FrameError("truncated", "compressed frame ends inside a frame")
                pos = stop
            elif code == DATA:
                parsed = self._data_frame(buf, pos, end)
                if parsed is None:
                    break
                seq, record, pos = parsed
                out.append(("E", version, seq, record))
            else:
                raise FrameError("bad_frame", f"unexpected frame type 0x{code:02x}")
        if nested and pos != end:
            raise FrameError("truncated", "compressed frame ends inside a frame")
        return pos

    def _check_size(self, size: int) -> None:
        if size > self.max:
            raise FrameError("oversized", f"frame of {size} bytes exceeds max_frame_size ({self.max})")

    def _inflate(self, data: memoryview) -> bytes:
        d = zlib.decompressobj()
        try:
            inner = d.decompress(data, self.max + 1)
        except zlib.error as exc:
            raise FrameError("bad_compression", f"invalid zlib data: {exc}") from None
        if len(inner) > self.max or d.unconsumed_tail:
            raise FrameError("oversized", f"decompressed frame exceeds max_frame_size ({self.max})")
        if not d.eof:
            raise FrameError("bad_compression", "truncated zlib data")
        return inner

    def _data_frame(self, buf: memoryview, pos: int, end: int) -> tuple[int, dict[str, str], int] | None:
        """v1 'D' frame: key/value pairs of strings. None while incomplete."""
        if end - pos < 10:
            return None
        seq, pairs = _U32x2.unpack_from(buf, pos + 2)
        pos += 10
        record: dict[str, str] = {}
        for _ in range(pairs):
            parts = []
            for _ in range(2):
                if end - pos < 4:
                    return None
                size = _U32.unpack_from(buf, pos)[0]
                self._check_size(size)
                if end - pos - 4 < size:
                    return None
                parts.append(bytes(buf[pos + 4:pos + 4 + size]).decode("utf-8", "replace"))
                pos += 4 + size
            record[parts[0]] = parts[1]
        return seq, record, pos


class JsonFailure:
    """A 'J' payload that is not a JSON object: kept as text, tagged by the input."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _json(data: memoryview) -> Any:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return JsonFailure(bytes(data).decode("utf-8", "replace"))
    if type(value) is not dict:
        return JsonFailure(bytes(data).decode("utf-8", "replace"))
    return value
