"""Container log files in the tail input: runtime decoding, then stack-trace joining per stream.

A container's file interleaves its stdout and stderr; a Java trace on stderr must
not swallow a line of stdout. So after the decoder (logpipe.helpers.container_log)
has joined the runtime's partial lines, each stream gets its own multiline joiner
(a preset such as `java`, or a Logstash-style pattern). Every decoded line keeps
the offsets of its first and last byte, so the stage can always say where the
oldest line it still holds starts: the tail input never commits past it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from logpipe.helpers.container_log import ContainerDecoder, ContainerFormat, Decoded
from logpipe.helpers.multiline import MultilineSpec
from logpipe.helpers.multiline_presets import Joiner, PresetSpec, make_joiner

_Held = tuple[dict[str, Any], int, int, int]  # record, time, start, end


class _StreamJoin:
    __slots__ = ("fed", "held", "joiner")

    def __init__(self, joiner: Joiner) -> None:
        self.joiner = joiner
        self.held: deque[_Held] = deque()
        self.fed = time.monotonic()


class ContainerStage:
    """Decoder plus per-stream joiners for one file."""

    __slots__ = ("_joins", "_key", "_spec", "decoder")

    def __init__(self, fmt: ContainerFormat, multiline: MultilineSpec | PresetSpec | None,
                 on_failure: Callable[[], None] | None = None) -> None:
        self.decoder = ContainerDecoder(fmt, on_failure)
        self._key = fmt.message_key
        self._spec = multiline
        self._joins: dict[str, _StreamJoin] = {}

    @property
    def hold(self) -> int | None:
        """Offset of the first byte of the oldest line still held (None: nothing held)."""
        hold = self.decoder.hold
        for join in self._joins.values():
            if join.held:
                start = join.held[0][2]
                hold = start if hold is None or start < hold else hold
        return hold

    def feed(self, lines: list[str], start: int, ends: list[int],
             tags: list[list[str] | None] | None) -> Decoded:
        out = Decoded()
        self.decoder.feed(lines, start, ends, tags, out)
        return self._join(out) if self._spec is not None and out.records else out

    def flush(self, older_than: float | None) -> Decoded:
        """Unfinished partial groups and held stack traces quiet for `older_than` seconds (None: all)."""
        decoded = Decoded()
        self.decoder.flush(decoded, older_than)
        out = self._join(decoded) if self._spec is not None and decoded.records else decoded
        now = time.monotonic()
        for stream, join in self._joins.items():
            if join.held and (older_than is None or now - join.fed >= older_than):
                self._take(stream, join, join.joiner.flush(), out)
        return out

    def _join(self, decoded: Decoded) -> Decoded:
        """Runs of lines of one stream go through that stream's joiner; the joiner counts
        lines (each fed with raw length 1), which maps its events back onto held lines."""
        out = Decoded()
        streams = decoded.streams
        n = len(streams)
        i = 0
        while i < n:
            stream = streams[i]
            j = i + 1
            while j < n and streams[j] == stream:
                j += 1
            if not stream:  # not a stream's line (parse failure, foreign JSON): passes alone
                for k in range(i, j):
                    out.add(decoded.records[k], decoded.times[k], decoded.starts[k], decoded.ends[k], stream)
                i = j
                continue
            join = self._joins.get(stream)
            if join is None:
                assert self._spec is not None
                join = self._joins[stream] = _StreamJoin(make_joiner(self._spec))
            key = self._key
            for k in range(i, j):
                join.held.append((decoded.records[k], decoded.times[k], decoded.starts[k], decoded.ends[k]))
            texts = [str(decoded.records[k].get(key, "")) for k in range(i, j)]
            join.fed = time.monotonic()
            self._take(stream, join, join.joiner.feed(texts, [1] * (j - i)), out)
            i = j
        return out

    def _take(self, stream: str, join: _StreamJoin,
              result: tuple[list[tuple[str, list[str] | None]], list[int]], out: Decoded) -> None:
        joined, counts = result
        held = join.held
        for (text, tags), count in zip(joined, counts):
            first = held.popleft()
            last = first
            extra: list[str] = list(first[0].get("tags") or ())
            for _ in range(count - 1):
                last = held.popleft()
                extra.extend(t for t in last[0].get("tags") or () if t not in extra)
            record = dict(first[0]) if count > 1 or tags else first[0]
            record[self._key] = text
            if tags:
                extra.extend(t for t in tags if t not in extra)
            if extra:
                record["tags"] = extra
            out.add(record, first[1], first[2], last[3], stream)
