"""Lumberjack (Beats) frame parser, v2 with the v1 data frame.

Wire format (elastic/go-lumber, logstash-input-beats): every frame starts with a
version byte ('1' or '2') and a type byte.

    'W' window size   uint32 count of data frames that make up the next window
    'C' compressed    uint32 length, then zlib data holding more frames
    'J' JSON data     uint32 seq, uint32 length, JSON document           (v2)
    'D' data          uint32 seq, uint32 pairs, (uint32 len, key, uint32 len, value)*  (v1)
    'A' ack           uint32 seq (server → client only)

The parser is fed whatever the socket returns and yields complete frames lazily, so a
hostile peer costs bounded work per byte it sends:

- a 'C' frame is inflated in slices of `INFLATE_SLICE` bytes and its frames are yielded as
  each slice completes them (the caller can hand events on and let the loop run between
  slices); the inflated total of one 'C' frame is capped at `max_frame_size`, and a 'C'
  inside a 'C' is refused — go-lumber and Filebeat never nest, and nesting is what turns
  911 bytes into gigabytes;
- a 'D' frame (no total length on the wire) is parsed pair by pair and resumed where it
  stopped, never re-parsed from its start; its declared pair count and its running size
  are checked against `max_frame_size` before anything is allocated.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

V1, V2 = 0x31, 0x32
WINDOW, COMPRESSED, JSON, DATA, ACK = 0x57, 0x43, 0x4A, 0x44, 0x41
#: Inflated bytes produced per step of a 'C' frame.
INFLATE_SLICE = 1 << 18
_U32 = struct.Struct(">I")
_U32x2 = struct.Struct(">II")
#: The smallest wire size of one 'D' pair (two empty strings with their lengths).
_MIN_PAIR = 8

#: ("W", version, size) or ("E", version, seq, payload, wire_size).
Frame = tuple[Any, ...]


class FrameError(ValueError):
    """A protocol violation; `reason` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ack_frame(version: int, seq: int) -> bytes:
    return bytes((version, ACK)) + _U32.pack(seq)


class _PartialData:
    """A 'D' frame being read: where it stopped, so the next read resumes there."""

    __slots__ = ("version", "seq", "pairs", "record", "size", "key")

    def __init__(self, version: int, seq: int, pairs: int) -> None:
        self.version = version
        self.seq = seq
        self.pairs = pairs
        self.record: dict[str, str] = {}
        self.size = 10
        self.key: str | None = None


class FrameParser:
    """`feed(data)` returns an iterator of the frames `data` completes: ("W", version,
    size) and ("E", version, seq, payload, wire_size), where payload is the decoded JSON
    object (or a JsonFailure) for 'J', a dict of strings for 'D'. Consume the iterator
    fully before feeding again."""

    def __init__(self, max_frame_size: int, *, nested: bool = False) -> None:
        self.max = max_frame_size
        self._nested = nested
        self._buf = bytearray()
        self._pos = 0
        self._data: _PartialData | None = None

    def feed(self, data: bytes) -> Iterator[Frame]:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data
        return self._frames()

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def finish(self) -> None:
        """The input ended (the end of a 'C' frame's content): nothing may be left half-read."""
        if self.buffered or self._data is not None:
            raise FrameError("truncated", "compressed frame ends inside a frame")

    def _frames(self) -> Iterator[Frame]:
        buf = self._buf
        while True:
            if self._data is not None:
                frame = self._data_pairs()
                if frame is None:
                    return
                yield frame
                continue
            pos = self._pos
            avail = len(buf) - pos
            if avail < 2:
                return
            version, code = buf[pos], buf[pos + 1]
            if version != V2 and version != V1:
                raise FrameError("bad_version", f"unknown protocol version byte 0x{version:02x}")
            if code == JSON:
                if avail < 10:
                    return
                seq, size = _U32x2.unpack_from(buf, pos + 2)
                self._check_size(size)
                if avail < 10 + size:
                    return
                self._pos = pos + 10 + size
                yield ("E", version, seq, _json(buf, pos + 10, pos + 10 + size), size)
            elif code == WINDOW:
                if avail < 6:
                    return
                self._pos = pos + 6
                yield ("W", version, _U32.unpack_from(buf, pos + 2)[0])
            elif code == COMPRESSED:
                if self._nested:
                    raise FrameError("nested_compression", "compressed frame inside a compressed frame")
                if avail < 6:
                    return
                size = _U32.unpack_from(buf, pos + 2)[0]
                self._check_size(size)
                if avail < 6 + size:
                    return
                payload = bytes(buf[pos + 6:pos + 6 + size])
                self._pos = pos + 6 + size
                yield from self._inflate(payload)
            elif code == DATA:
                if avail < 10:
                    return
                seq, pairs = _U32x2.unpack_from(buf, pos + 2)
                if pairs * _MIN_PAIR > self.max:
                    raise FrameError("oversized", f"data frame of {pairs} pairs exceeds max_frame_size ({self.max})")
                self._pos = pos + 10
                self._data = _PartialData(version, seq, pairs)
            else:
                raise FrameError("bad_frame", f"unexpected frame type 0x{code:02x}")

    def _data_pairs(self) -> Frame | None:
        """Read as many strings of the pending 'D' frame as are here; the frame once complete."""
        partial = self._data
        assert partial is not None
        buf = self._buf
        while partial.pairs:
            pos = self._pos
            if len(buf) - pos < 4:
                return None
            size = _U32.unpack_from(buf, pos)[0]
            if partial.size + 4 + size > self.max:
                raise FrameError("oversized", f"data frame exceeds max_frame_size ({self.max})")
            if len(buf) - pos - 4 < size:
                return None
            text = buf[pos + 4:pos + 4 + size].decode("utf-8", "replace")
            self._pos = pos + 4 + size
            partial.size += 4 + size
            if partial.key is None:
                partial.key = text
            else:
                partial.record[partial.key] = text
                partial.key = None
                partial.pairs -= 1
        self._data = None
        return ("E", partial.version, partial.seq, partial.record, partial.size)

    def _check_size(self, size: int) -> None:
        if size > self.max:
            raise FrameError("oversized", f"frame of {size} bytes exceeds max_frame_size ({self.max})")

    def _inflate(self, data: bytes) -> Iterator[Frame]:
        """Inflate one 'C' frame slice by slice, yielding its frames as they complete."""
        inner = FrameParser(self.max, nested=True)
        d = zlib.decompressobj()
        total = 0
        while not d.eof:
            try:
                chunk = d.decompress(data, INFLATE_SLICE)
            except zlib.error as exc:
                raise FrameError("bad_compression", f"invalid zlib data: {exc}") from None
            data = d.unconsumed_tail
            if not chunk and not data:
                raise FrameError("bad_compression", "truncated zlib data")
            total += len(chunk)
            if total > self.max:
                raise FrameError("oversized", f"decompressed frame exceeds max_frame_size ({self.max})")
            yield from inner.feed(chunk)
        inner.finish()


class JsonFailure:
    """A 'J' payload that is not a JSON object: kept as text, tagged by the input."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _json(buf: bytearray, start: int, stop: int) -> Any:
    with memoryview(buf) as whole, whole[start:stop] as data:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is not dict:
            return JsonFailure(bytes(data).decode("utf-8", "replace"))
    return value
