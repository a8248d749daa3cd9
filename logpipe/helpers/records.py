"""Lines → (time, record) pairs for the network inputs (tcp, udp, http), from either
front-end's way of saying how: a Logstash `codec` or a Fluentd `<parse>` section.

One function for the three inputs so they agree on the details: the `<parse>` section goes
through Fluentd's parsers (logpipe.helpers.parsers: time_key, time_format, types …), and a
line the parser refuses is not lost: it is kept as `message` tagged `_parsefailure` and
counted (Fluentd's in_tcp/in_udp log and drop it; dropping silently loses data).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logpipe.errors import ConfigError
from logpipe.helpers.parsers import ParseError, build_parser
from logpipe.metrics import PluginMetrics
from logpipe.plugin import Codec

#: (lines) → [(event time in ns or None for now, record)]
Decoder = Callable[[list[str]], list[tuple[int | None, dict[str, Any]]]]
PARSE_FAILURE_TAG = "_parsefailure"


def make_decoder(codec: Codec | None, parse: dict[str, Any] | None, metrics: PluginMetrics) -> Decoder:
    """`parse` (Fluentd) wins over `codec` (Logstash); neither: each line is `message`."""
    if parse is not None:
        if not isinstance(parse, dict):
            raise ConfigError("only one <parse> section is allowed", setting="parse")
        try:
            parser = build_parser(parse)
        except ConfigError as exc:
            raise ConfigError(exc.message, setting="parse") from None
        failures = metrics.counter("parse_failures", "lines the input could not parse",
                                   format=str(parse.get("@type", "none")))
        parse_one = parser.parse

        def decode_parsed(lines: list[str]) -> list[tuple[int | None, dict[str, Any]]]:
            out: list[tuple[int | None, dict[str, Any]]] = []
            for line in lines:
                try:
                    out.append(parse_one(line))
                except ParseError:
                    failures.inc()
                    out.append((None, {"message": line, "tags": [PARSE_FAILURE_TAG]}))
            return out

        return decode_parsed
    if codec is not None:
        decode = codec.decode
        return lambda lines: [(None, r) for r in decode(lines)]
    return lambda lines: [(None, {"message": line}) for line in lines]
