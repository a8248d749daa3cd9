"""Chunk-to-lines splitting with a bounded partial line (plugin-private helper of in_tail).

Reading is `os.read` of large blocks split on b"\\n": per-line Python work is what
limits throughput, so the splitter works on whole chunks and leaves per-line
decisions (too long? which encoding?) to batch-level checks. The unterminated
tail of a chunk is kept for the next one but never grows past `max_line_size`:
the excess is counted (so byte offsets stay exact) and dropped.
"""

from __future__ import annotations


class LineSplitter:
    """Turns a byte stream into complete lines.

    `feed` returns `(lines, extra, first_overlong)`: the complete raw lines (without
    the newline, possibly over `max_line_size`), the number of bytes of the first line
    that were already dropped while it was still incomplete (add them to its raw
    length), and whether that first line was cut that way.
    """

    __slots__ = ("_overlong", "dropped", "max_line", "rest")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.rest = b""
        self.dropped = 0
        self._overlong = False

    def feed(self, data: bytes) -> tuple[list[bytes], int, bool]:
        if data.find(b"\n") < 0:
            self._keep(data)
            return [], 0, False
        extra = 0
        first_overlong = self._overlong
        if first_overlong:
            first_nl = data.find(b"\n")
            extra = self.dropped + first_nl
            buf = self.rest + data[first_nl:]
        elif self.rest:
            buf = self.rest + data
        else:
            buf = data
        self.rest = b""
        self.dropped = 0
        self._overlong = False
        lines = buf.split(b"\n")
        self._keep(lines.pop())
        return lines, extra, first_overlong

    @property
    def pending_bytes(self) -> int:
        """Raw bytes of the incomplete line held (including dropped ones)."""
        return len(self.rest) + self.dropped

    def take_rest(self) -> tuple[bytes, int, bool]:
        """The incomplete last line, for a file that will never grow again (rotated away)."""
        rest, dropped, overlong = self.rest, self.dropped, self._overlong
        self.rest, self.dropped, self._overlong = b"", 0, False
        return rest, dropped, overlong

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        if self._overlong:
            self.dropped += len(data)
            return
        rest = self.rest + data if self.rest else data
        if len(rest) > self.max_line:
            self._overlong = True
            self.dropped = len(rest) - self.max_line
            rest = rest[: self.max_line]
        self.rest = rest
