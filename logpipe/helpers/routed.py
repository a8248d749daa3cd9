"""Formatted items that carry their own destination (a file path, a collection, a tag).

`Output.format` must put into each item whatever `write` needs to know per event, because
write sees only items (Output's contract in logpipe/plugin.py). An output whose
destination depends on the event prefixes the payload with it: `>H` length, the
destination as UTF-8, then the payload bytes.
"""

from __future__ import annotations

import struct

_LENGTH = struct.Struct(">H")
MAX_DESTINATION = 0xFFFF


def pack_routed(destination: str, payload: bytes) -> bytes:
    dest = destination.encode("utf-8", "surrogateescape")
    if len(dest) > MAX_DESTINATION:
        raise ValueError(f"destination longer than {MAX_DESTINATION} bytes")
    return _LENGTH.pack(len(dest)) + dest + payload


def unpack_routed(item: bytes) -> tuple[str, bytes]:
    (n,) = _LENGTH.unpack_from(item)
    end = _LENGTH.size + n
    return item[_LENGTH.size:end].decode("utf-8", "surrogateescape"), item[end:]


def group_routed(items: list[bytes]) -> dict[str, tuple[list[int], list[bytes]]]:
    """Items by destination, in order: destination → (their indexes, their payloads)."""
    groups: dict[str, tuple[list[int], list[bytes]]] = {}
    for index, item in enumerate(items):
        dest, payload = unpack_routed(item)
        group = groups.get(dest)
        if group is None:
            groups[dest] = ([index], [payload])
        else:
            group[0].append(index)
            group[1].append(payload)
    return groups
