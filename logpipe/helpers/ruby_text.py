"""Values as Ruby prints them: `to_s` and `inspect`, as Fluentd's text formatters write
record values (hash: `{"k"=>"v", "n"=>1}`; ltsv/tsv/csv/single_value: `value.to_s`, so a
nil is empty and a nested hash is its inspect form). Ruby 2.7-3.3 spelling (Fluentd 1.14's).
"""

from __future__ import annotations

import math
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\v": "\\v",
            "\b": "\\b", "\a": "\\a", "\x1b": "\\e"}


def ruby_float(value: float) -> str:
    """Float#to_s: `1.0`, `1.5`, `1.0e+20`, `1.0e-05`, `Infinity`, `NaN` (Python's repr
    switches to exponents at the same places)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}"
    return text


def _inspect_str(text: str) -> str:
    out = ['"']
    for i, ch in enumerate(text):
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch == "#" and text[i + 1:i + 2] in ("{", "$", "@"):
            out.append("\\#")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}" if ord(ch) != 0 else "\\u0000")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ruby_inspect(value: Any) -> str:
    """Object#inspect of a record value."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _inspect_str(value)
    if isinstance(value, (bytes, bytearray)):
        return _inspect_str(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ruby_float(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    return _inspect_str(str(value))


def ruby_to_s(value: Any) -> str:
    """Object#to_s: strings as they are, nil empty, numbers as Ruby writes them, the rest inspected."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float):
        return ruby_float(value)
    return ruby_inspect(value)
