"""Fluentd parsers (`<parse>` sections, v0.12 flat `format`): shared by the tail input, the
parser filter and every plugin that takes a `<parse>` section.

    parser = build_parser({"@type": "apache2"})
    time_ns, record = parser.parse(line)     # ParseError when the line does not fit

`flat_parse_section(params)` turns a v0.12 `format apache2` + `time_format …` written flat in a
`<source>` or `<filter>` into the `<parse>` dict Fluentd 1.x would have converted it to.
"""

from __future__ import annotations

from typing import Any

from logpipe.helpers.parsers.base import FluentParser, ParseError
from logpipe.helpers.parsers.formats import BUILDERS, build_parser

__all__ = ["BUILDERS", "FLAT_PARSE_KEYS", "FluentParser", "ParseError", "build_parser", "flat_parse_section"]

#: v0.12 parameters that belong in `<parse>` when written flat next to `format`.
FLAT_PARSE_KEYS = (
    "time_key", "time_format", "time_type", "keep_time_key", "types", "null_value_pattern", "null_empty_string",
    "estimate_current_event", "timezone", "format_firstline", "keys", "delimiter", "label_delimiter",
    "message_key", "message_format", "with_priority", "expression", "ignorecase", "grok_pattern",
    "custom_pattern_path", "time_format_fallbacks", "localtime", "utc",
)


def flat_parse_section(format_value: Any, flat: dict[str, Any]) -> dict[str, Any]:
    """`format /re/` | `format apache2` | `format multiline` plus the flat keys → a `<parse>` dict.
    `flat` holds only the keys that were written."""
    text = str(format_value).strip()
    section: dict[str, Any] = {}
    if text.startswith("/"):
        section["@type"] = "regexp"
        section["expression"] = text
    else:
        section["@type"] = {"plain": "none", "line": "none", "json_lines": "json"}.get(text, text)
    section.update(flat)
    return section
