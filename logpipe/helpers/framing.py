"""Byte streams → frames, bounded: newline (or any delimiter) framing and RFC 6587 octet
counting, as the stream inputs (syslog, tcp) read them.

A framer holds at most `limit` bytes of an unfinished frame, so what one connection
can make the process hold is its framer plus one read. A line longer than `limit` is
dropped (its bytes skipped up to the next delimiter) and counted in `oversized`: the
connection goes on, as Fluentd's `message_length_limit` does. An octet-counted frame
whose length is not a number, or is over the limit, cannot be skipped safely (the length
is all there is to find the next frame), so it raises FrameError and the caller closes
that connection.
"""

from __future__ import annotations


class FrameError(Exception):
    """The stream broke its framing; `reason` labels the counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LineFramer:
    """Frames ended by `delimiter`. With `nul_too`, a NUL byte also ends a frame (Python's
    SysLogHandler over TCP and several appliances separate messages with NUL only)."""

    def __init__(self, limit: int, delimiter: bytes = b"\n", nul_too: bool = False, strip_cr: bool = True) -> None:
        if not delimiter:
            raise ValueError("empty delimiter")
        self.limit = limit
        self.delimiter = delimiter
        self.nul_too = nul_too and delimiter == b"\n"
        self.strip_cr = strip_cr and delimiter == b"\n"
        self.oversized = 0
        self._buf = b""
        self._skipping = False

    @property
    def held(self) -> int:
        """Bytes of the unfinished frame held now."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self.nul_too and b"\x00" in data:
            data = data.replace(b"\x00", b"\n")
        buf = self._buf + data if self._buf else data
        parts = buf.split(self.delimiter)
        rest = parts.pop()
        if self._skipping:
            if parts:  # the oversized frame ends here
                parts.pop(0)
                self._skipping = False
            else:
                rest = b""
        if len(rest) > self.limit:
            self.oversized += 1
            self._skipping = True
            rest = b""
        self._buf = rest
        limit = self.limit
        if self.strip_cr or any(len(p) > limit for p in parts):
            out = []
            for part in parts:
                if len(part) > limit:
                    self.oversized += 1
                    continue
                if self.strip_cr and part.endswith(b"\r"):
                    part = part[:-1]
                if part or not self.nul_too:
                    out.append(part)
            return out
        return parts

    def flush(self) -> list[bytes]:
        """At end of stream: the unterminated last frame, if any."""
        rest, self._buf = self._buf, b""
        return [rest] if rest and not self._skipping else []


class OctetCountFramer:
    """RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`. Stray newlines between frames (some senders
    end each frame with one) are skipped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.oversized = 0
        self._buf = b""
        self._width = len(str(limit)) + 1

    @property
    def held(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos, size = 0, len(buf)
        while pos < size:
            if buf[pos] in b"\n\r\x00 ":
                pos += 1
                continue
            space = buf.find(b" ", pos, pos + self._width + 1)
            if space < 0:
                if size - pos > self._width:
                    raise FrameError("bad_frame", f"octet count expected, got {bytes(buf[pos:pos + 20])!r}")
                break
            digits = buf[pos:space]
            if not digits.isdigit():
                raise FrameError("bad_frame", f"octet count expected, got {bytes(buf[pos:pos + 20])!r}")
            length = int(digits)
            if length > self.limit:
                raise FrameError("oversized", f"frame of {length} bytes is over the limit of {self.limit}")
            end = space + 1 + length
            if end > size:
                break
            out.append(buf[space + 1:end])
            pos = end
        self._buf = buf[pos:]
        return out

    def flush(self) -> list[bytes]:
        rest, self._buf = self._buf, b""
        if rest.strip():
            raise FrameError("truncated", f"stream ended inside a frame ({len(rest)} bytes)")
        return []


class SyslogFramer:
    """Syslog over a stream: octet counting or newline framing, chosen per connection from
    its first byte (a digit starts a count, `<` a traditional frame), unless `mode` fixes it
    (Fluentd's `frame_type traditional|octet_count`)."""

    def __init__(self, limit: int, mode: str = "auto") -> None:
        self.limit = limit
        self.mode = mode
        self._framer: LineFramer | OctetCountFramer | None = None
        if mode == "octet_count":
            self._framer = OctetCountFramer(limit)
        elif mode == "traditional":
            self._framer = LineFramer(limit, nul_too=True)

    @property
    def held(self) -> int:
        return self._framer.held if self._framer is not None else 0

    @property
    def oversized(self) -> int:
        return self._framer.oversized if self._framer is not None else 0

    def feed(self, data: bytes) -> list[bytes]:
        if self._framer is None:
            first = data.lstrip(b"\r\n\x00 ")[:1]
            if not first:
                return []
            self._framer = OctetCountFramer(self.limit) if first.isdigit() else LineFramer(self.limit, nul_too=True)
        return self._framer.feed(data)

    def flush(self) -> list[bytes]:
        return self._framer.flush() if self._framer is not None else []
