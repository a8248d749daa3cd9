"""Lines → (time, record) pairs for the network inputs (tcp, udp, http), from either
front-end's way of saying how: a Logstash `codec` or a Fluentd `<parse>` section.

One function for the three inputs so they agree on the details: a Fluentd named format's
time becomes the event time, a JSON record's `time` does not (Fluentd's json parser keeps
it unless told), and what fails to parse is kept and tagged by the codec or parser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logpipe.errors import ConfigError
from logpipe.helpers.parser import make_section_parser, make_time_extractor
from logpipe.plugin import Codec

#: (lines) → [(event time in ns or None for now, record)]
Decoder = Callable[[list[str]], list[tuple[int | None, dict[str, Any]]]]


def make_decoder(codec: Codec | None, parse: dict[str, Any] | None, plugin_id: str) -> Decoder:
    """`parse` (Fluentd) wins over `codec` (Logstash); neither: each line is `message`."""
    if parse is not None:
        if not isinstance(parse, dict):
            raise ConfigError("<parse> must be a section", setting="parse")
        parser, multiline = make_section_parser(parse, plugin_id, None)
        if multiline is not None:
            raise ConfigError("<parse> @type multiline is only for files (tail)", setting="parse")
        extract = make_time_extractor(parse.get("@type", parse.get("type", "none")))
        if extract is None:
            return lambda lines: [(None, r) for r in parser(lines)]

        def decode_timed(lines: list[str]) -> list[tuple[int | None, dict[str, Any]]]:
            return [(extract(r), r) for r in parser(lines)]

        return decode_timed
    if codec is not None:
        decode = codec.decode
        return lambda lines: [(None, r) for r in decode(lines)]
    return lambda lines: [(None, {"message": line}) for line in lines]
