"""Logstash's `multiline` codec: join lines into one event (stack traces, continuation lines).

A line for which `pattern` matches (or does not, with `negate`) belongs to the `previous` event
or to the `next` one. `pattern` may use grok (`^%{TIMESTAMP_ISO8601} `, with `patterns_dir`).
Joined events get `multiline_tag`; an event is cut at `max_lines` / `max_bytes` (tagged
`multiline_codec_max_lines_reached` / `..._max_bytes_reached`) so memory stays bounded. The
last event waits for the line that ends it: inputs flush it at end of input and after
`auto_flush_interval` seconds without new lines. With ECS the text is also in `[event][original]`.

On stdin this codec works through `decode`/`flush`; the file (tail) input takes its settings
as its own multiline joiner, so committed positions never pass a line still held.
"""

from __future__ import annotations

import codecs
from typing import Any

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.helpers.multiline import Joined, Multiline, MultilineSpec, expand_multiline_pattern
from logpipe.plugin import Codec, Setting


class MultilineCodec(Codec):
    name = "multiline"
    doc = "Joins lines into events by a pattern (what => previous|next, negate), e.g. stack traces."
    settings = [
        Setting("pattern", "string", required=True, doc="regex (grok allowed) that marks a continuation"),
        Setting("what", "string", required=True, choices=("previous", "next"),
                doc="a matching line belongs to the previous or the next event"),
        Setting("negate", "bool", default=False, doc="continuation lines are those NOT matching"),
        Setting("patterns_dir", "array", default=[], doc="extra grok pattern folders for the pattern"),
        Setting("charset", "string", default="UTF-8", doc="encoding of the input bytes"),
        Setting("multiline_tag", "string", default="multiline", doc="tag of joined events"),
        Setting("max_lines", "int", default=500, doc="cut an event at this many lines"),
        Setting("max_bytes", "bytes", default="10MiB", doc="cut an event at this size"),
        Setting("auto_flush_interval", "duration", doc="emit a held event after this long without lines"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        try:
            pattern = expand_multiline_pattern(p["pattern"], list(p["patterns_dir"]))
        except ValueError as exc:
            raise ConfigError(str(exc), setting="pattern") from None
        try:
            codecs.lookup(p["charset"])
        except LookupError:
            raise ConfigError(f"unknown charset {p['charset']!r}", setting="charset") from None
        if p["max_lines"] < 1:
            raise ConfigError("max_lines must be at least 1", setting="max_lines")
        self.multiline_spec = MultilineSpec(pattern=pattern, negate=p["negate"], what=p["what"],
                                            flush_interval=p["auto_flush_interval"], max_lines=p["max_lines"],
                                            max_bytes=p["max_bytes"])
        self.flush_interval = p["auto_flush_interval"]
        self._joiner = Multiline(self.multiline_spec)
        self._ecs = ecs_enabled(p)
        self._tag = p["multiline_tag"]

    def decode(self, lines: list[str]) -> list[dict[str, Any]]:
        joined, _ = self._joiner.feed(lines, [len(line) + 1 for line in lines])
        return [self._record(item) for item in joined]

    def flush(self) -> list[dict[str, Any]]:
        joined, _ = self._joiner.flush()
        return [self._record(item) for item in joined]

    def _record(self, item: Joined) -> dict[str, Any]:
        text, tags = item
        record: dict[str, Any] = {"message": text}
        if tags:
            record["tags"] = [self._tag if t == "multiline" else t for t in tags]
        if self._ecs:
            record["event"] = {"original": text}
        return record

    def encode(self, events: list[Event]) -> bytes:
        """Logstash's multiline codec writes the message as is (it is meant for inputs)."""
        return b"".join(str(ev.record.get("message", "")).encode("utf-8") + b"\n" for ev in events)
