"""What an output writes for a value JSON (or msgpack) cannot hold — one rule for every output.

Records come from everywhere: a Python program emits `bytes` or a `set`, a decoder hands over a
`Decimal`. Writing Python reprs (`"b'\\\\xff'"`, `"{1, 2}"`) leaks the implementation into the
data. The rule:

- bytes (bytearray, memoryview): text, decoded as UTF-8 with U+FFFD for what is not UTF-8
  (in msgpack: left as binary, which msgpack has);
- set, frozenset: an array, sorted when the items can be sorted (so output is stable);
- Decimal: a number (a float; `NaN`/`Infinity`, which JSON has no spelling for, as text);
- anything else: its `str()`.

Dates, times, tuples, dataclasses and UUIDs are written by orjson itself.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else str(value)
    return str(value)


def json_default(value: Any) -> Any:
    """`default=` for orjson.dumps."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return _plain(value)


def msgpack_default(value: Any) -> Any:
    """`default=` for msgpack packers (bytes are native there)."""
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return _plain(value)
