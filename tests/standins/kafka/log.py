"""A partition's log: the v2 record batches producers sent, stored as sent with the base
offset the broker assigned written into them (a broker does not re-encode batches; the CRC
covers the bytes from `attributes` on, so rewriting the offset keeps it valid).

Batch layout (magic 2): baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
magic i8, crc u32, attributes i16, lastOffsetDelta i32, baseTimestamp i64,
maxTimestamp i64, producerId i64, producerEpoch i16, baseSequence i32, count i32, records.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field

import cramjam

from .wire import Reader, crc32c, varint

_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = _HEADER.size  # 61


class CorruptBatch(ValueError):
    """A batch the broker refuses (bad CRC, unknown magic, truncated): CORRUPT_MESSAGE."""


@dataclass
class Batch:
    base_offset: int
    last_offset: int
    max_timestamp: int
    producer_id: int
    base_sequence: int
    data: bytes


@dataclass
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def split_batches(records: bytes) -> list[bytes]:
    """The record batches in a produce request's `records` field, CRC-checked."""
    out = []
    pos = 0
    while pos < len(records):
        if pos + 12 > len(records):
            raise CorruptBatch("truncated batch header")
        (length,) = struct.unpack_from(">i", records, pos + 8)
        end = pos + 12 + length
        if length < HEADER_SIZE - 12 or end > len(records):
            raise CorruptBatch("truncated batch")
        batch = records[pos:end]
        magic = batch[16]
        if magic != 2:
            raise CorruptBatch(f"magic {magic}: this broker stores record batches v2 only")
        (crc,) = struct.unpack_from(">I", batch, 17)
        if crc32c(batch[21:]) != crc:
            raise CorruptBatch("CRC mismatch")
        out.append(batch)
        pos = end
    return out


@dataclass
class PartitionLog:
    batches: list[Batch] = field(default_factory=list)
    end_offset: int = 0  # the high watermark: one broker, every write is committed at once

    def append(self, raw: bytes) -> Batch:
        fields = _HEADER.unpack_from(raw, 0)
        last_delta, max_ts, producer_id, base_sequence = fields[6], fields[8], fields[9], fields[11]
        base = self.end_offset
        data = struct.pack(">q", base) + raw[8:]
        batch = Batch(base, base + last_delta, max_ts, producer_id, base_sequence, data)
        self.batches.append(batch)
        self.end_offset = batch.last_offset + 1
        return batch

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding `offset` on, at least one even when it is larger
        than `max_bytes` (KIP-74), as brokers answer a fetch."""
        out: list[bytes] = []
        size = 0
        for batch in self.batches:
            if batch.last_offset < offset:
                continue
            if out and size + len(batch.data) > max_bytes:
                break
            out.append(batch.data)
            size += len(batch.data)
        return b"".join(out)

    def offset_for_time(self, timestamp: int) -> int:
        """ListOffsets by time: the first offset of the first batch whose newest record is
        at least that new (batch granularity), or the end."""
        for batch in self.batches:
            if batch.max_timestamp >= timestamp:
                return batch.base_offset
        return self.end_offset

    def records(self) -> list[Record]:
        """Every record, decoded: what tests inspect."""
        return [record for batch in self.batches for record in decode_batch(batch.data)]


def decode_batch(data: bytes) -> list[Record]:
    fields = _HEADER.unpack_from(data, 0)
    base_offset, attributes, base_ts, count = fields[0], fields[5], fields[7], fields[12]
    body = data[HEADER_SIZE:]
    reader = Reader(decompress(attributes & 0x07, body))
    out = []
    for _ in range(count):
        varint(reader)  # record length
        reader.take(1)  # attributes
        ts_delta = varint(reader)
        offset_delta = varint(reader)
        key = _varbytes(reader)
        value = _varbytes(reader)
        headers = []
        for _ in range(varint(reader)):
            name = _varbytes(reader) or b""
            headers.append((name.decode(), _varbytes(reader)))
        out.append(Record(base_offset + offset_delta, base_ts + ts_delta, key, value, headers))
    return out


def decompress(codec: int, body: bytes) -> bytes:
    """A batch's records, uncompressed: 1 gzip, 2 snappy (raw, or Java's xerial framing),
    3 lz4 (frame format), 4 zstd, as the protocol guide numbers them."""
    if codec == 0:
        return body
    if codec == 1:
        return gzip.decompress(body)
    if codec == 2:
        if not body.startswith(_XERIAL):
            return bytes(cramjam.snappy.decompress_raw(body))
        out, pos = [], 16
        while pos < len(body):
            (size,) = struct.unpack_from(">i", body, pos)
            out.append(bytes(cramjam.snappy.decompress_raw(body[pos + 4:pos + 4 + size])))
            pos += 4 + size
        return b"".join(out)
    if codec == 3:
        return bytes(cramjam.lz4.decompress(body))
    if codec == 4:
        return bytes(cramjam.zstd.decompress(body))
    raise CorruptBatch(f"unknown compression codec {codec}")


_XERIAL = b"\x82SNAPPY\x00"


def _varbytes(reader: Reader) -> bytes | None:
    size = varint(reader)
    return None if size < 0 else reader.take(size)
