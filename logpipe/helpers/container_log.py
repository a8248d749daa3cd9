"""Container runtime log decoding: CRI (containerd, CRI-O) and Docker json-file.

CRI lines are `<RFC3339Nano time> <stdout|stderr> <P|F>[:more tags] <log>`: a `P`
line is a piece of a longer line and continues in the next line of the same
stream, up to the `F` line. Docker json-file lines are `{"log": …, "stream": …,
"time": …}`: a `log` without a trailing newline is a 16 KiB piece that continues
in the next line of the same stream. The decoder joins the pieces per stream and
hands back one record per container log line, with the runtime's time in
nanoseconds, and remembers where the oldest unfinished group started, so the
caller never commits a position inside a partial group (after a crash the group
is read again whole).

Modes: `cri`, `docker`, `auto` (each file's format from its first line: `{` means
docker), and `json` (Fluentd `<parse> @type json` on container logs: docker-shaped
objects are decoded and merged as docker, any other JSON object passes as it is).
A joined line longer than `max_size` is cut and tagged `_linetruncated`; a line
that is not valid in the file's format passes on whole as the message, tagged
`_containerparsefailure` and counted, never dropped.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

MODES = ("cri", "docker", "auto", "json")
FAILURE_TAG = "_containerparsefailure"
TRUNCATED_TAG = "_linetruncated"


@dataclass(frozen=True, slots=True)
class ContainerFormat:
    mode: str
    message_key: str = "message"
    max_size: int = 1 << 20
    #: Partial groups left unfinished this long are emitted as they are (None: only at file end).
    flush_interval: float | None = 5.0


class Decoded:
    """One batch of decoded lines as parallel lists (per-line objects cost throughput)."""

    __slots__ = ("ends", "records", "starts", "streams", "times")

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.times: list[int] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.streams: list[str] = []

    def add(self, record: dict[str, Any], ns: int, start: int, end: int, stream: str) -> None:
        self.records.append(record)
        self.times.append(ns)
        self.starts.append(start)
        self.ends.append(end)
        self.streams.append(stream)

    def __len__(self) -> int:
        return len(self.records)


class _Group:
    """An unfinished line of one stream: its pieces, where it started, its first time."""

    __slots__ = ("cut", "last", "parts", "size", "start", "time", "touched")

    def __init__(self, start: int, ns: int) -> None:
        self.start = start
        self.last = start
        self.time = ns
        self.parts: list[str] = []
        self.size = 0
        self.cut = False
        self.touched = _time.monotonic()


#: Multiplier that turns a fraction of n digits into nanoseconds (containerd trims trailing zeros).
_SCALE = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)


class TimeParser:
    """RFC 3339 with any number of fraction digits to int nanoseconds; the whole-second
    part is cached (a busy container writes thousands of lines per second). `seconds`
    maps the first 19 characters of UTC (`Z`) times to their epoch nanoseconds, for
    the decoder's inlined fast path."""

    __slots__ = ("_cache", "seconds")

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}
        self.seconds: dict[str, int] = {}

    def __call__(self, text: str) -> int | None:
        if text[-1:] == "Z":
            zone_at = len(text) - 1
        elif len(text) > 25 and text[-6] in "+-" and text[-3] == ":":
            zone_at = len(text) - 6
        else:
            return None
        key = text[:19] + text[zone_at:]
        base = self._cache.get(key)
        if base is None:
            try:
                dt = datetime.fromisoformat(key.replace("Z", "+00:00"))
            except ValueError:
                return None
            if dt.tzinfo is None or text[10:11] not in ("T", "t", " "):
                return None
            base = int(dt.timestamp()) * 1_000_000_000
            if len(self._cache) > 4096:
                self._cache.clear()
                self.seconds.clear()
            self._cache[key] = base
            if text[-1] == "Z":
                self.seconds[text[:19]] = base
        if zone_at == 19:
            return base
        frac = text[20:zone_at]
        if text[19] != "." or not frac.isdigit():
            return None
        return base + int(frac[:9].ljust(9, "0"))


class ContainerDecoder:
    """Decodes the lines of one container log file (one container: streams are its only split)."""

    __slots__ = ("_failures", "_groups", "_key", "_max", "_parse_time", "flush_interval", "mode")

    def __init__(self, fmt: ContainerFormat, on_failure: Callable[[], None] | None = None) -> None:
        self.mode = fmt.mode
        self._key = fmt.message_key
        self._max = fmt.max_size
        self.flush_interval = fmt.flush_interval
        self._groups: dict[str, _Group] = {}
        self._parse_time = TimeParser()
        self._failures = on_failure

    @property
    def hold(self) -> int | None:
        """File offset where the oldest unfinished group starts (None: nothing held)."""
        groups = self._groups
        if not groups:
            return None
        return min(g.start for g in groups.values())

    @property
    def pending(self) -> bool:
        return bool(self._groups)

    def feed(self, lines: list[str], start: int, ends: list[int], tags: list[list[str] | None] | None,
             out: Decoded) -> None:
        """`start` is the offset of the first line, `ends[i]` the offset just past line i;
        `tags` carries the reader's own tags (a line cut at max_line_size)."""
        if self.mode == "auto":
            first = next((x for x in lines if x), None)
            if first is None:
                self._feed_cri(lines, start, ends, tags, out)
                return
            self.mode = "docker" if first.lstrip()[:1] == "{" else "cri"
        if self.mode == "cri":
            self._feed_cri(lines, start, ends, tags, out)
        else:
            self._feed_json(lines, start, ends, tags, out)

    def _feed_cri(self, lines: list[str], start: int, ends: list[int], tags: list[list[str] | None] | None,
                  out: Decoded) -> None:
        """The common line (`F`, UTC `Z` time, no group open on any stream, no reader tag)
        takes the inlined fast path: a second-prefix cache lookup and a few appends."""
        key = self._key
        groups = self._groups
        cache = self._parse_time.seconds
        max_size = self._max
        scale = _SCALE
        records, times, starts, ends_out, streams = out.records, out.times, out.starts, out.ends, out.streams
        prev = start
        fast = not groups and not tags
        for i, line in enumerate(lines):
            end = ends[i]
            parts = line.split(" ", 3)
            if fast and len(parts) == 4 and parts[2] == "F":
                ts = parts[0]
                base = cache.get(ts[:19])
                stream = parts[1]
                text = parts[3]
                if base is not None and ts[-1] == "Z" and ts[19] == "." and (
                        stream == "stdout" or stream == "stderr") and len(text) <= max_size:
                    frac = ts[20:-1]
                    if frac.isdigit() and len(frac) <= 9:
                        records.append({key: text, "stream": stream})
                        times.append(base + int(frac) * scale[len(frac)])
                        starts.append(prev)
                        ends_out.append(end)
                        streams.append(stream)
                        prev = end
                        continue
            self._cri_line(parts, line, prev, end, out, tags[i] if tags else None)
            fast = not groups and not tags
            prev = end

    def _cri_line(self, parts: list[str], line: str, prev: int, end: int, out: Decoded,
                  extra_tags: list[str] | None) -> None:
        """Everything off the fast path: pieces, zones, other tags, long lines, failures."""
        ns = self._parse_time(parts[0]) if len(parts) >= 3 else None
        stream = parts[1] if ns is not None else ""
        flag = parts[2][:1] if ns is not None else ""
        if ns is None or stream not in ("stdout", "stderr") or flag not in ("P", "F") or (
                len(parts[2]) > 1 and parts[2][1] != ":"):
            self._fail(line, prev, end, out, extra_tags)
            return
        text = parts[3] if len(parts) == 4 else ""
        if flag == "F" and stream not in self._groups:
            record: dict[str, Any] = {self._key: text, "stream": stream}
            if len(text) > self._max:
                record[self._key] = text[:self._max]
                record["tags"] = [TRUNCATED_TAG]
            elif extra_tags:
                record["tags"] = list(extra_tags)
            out.add(record, ns, prev, end, stream)
        else:
            self._piece(stream, text, ns, prev, end, flag == "F", out, extra_tags)

    def _feed_json(self, lines: list[str], start: int, ends: list[int], tags: list[list[str] | None] | None,
                   out: Decoded) -> None:
        key = self._key
        loads = orjson.loads
        parse_time = self._parse_time
        docker_only = self.mode == "docker"
        add = out.add
        prev = start
        for i, line in enumerate(lines):
            end = ends[i]
            try:
                value = loads(line)
            except orjson.JSONDecodeError:
                value = None
            if type(value) is not dict:
                self._fail(line, prev, end, out, tags[i] if tags else None,
                           FAILURE_TAG if docker_only else "_jsonparsefailure")
                prev = end
                continue
            text = value.get("log")
            stream = value.get("stream")
            stamp = value.get("time")
            ns = parse_time(stamp) if type(stamp) is str and stamp else None
            if type(text) is not str or stream not in ("stdout", "stderr") or ns is None:
                if docker_only:
                    self._fail(line, prev, end, out, tags[i] if tags else None)
                else:
                    add(value, _time.time_ns(), prev, end, "")
                prev = end
                continue
            assert isinstance(stream, str)
            complete = text[-1:] == "\n"
            if complete:
                text = text[:-1]
            if complete and not self._groups.get(stream):
                if len(text) > self._max:
                    add({key: text[:self._max], "stream": stream, "tags": [TRUNCATED_TAG]}, ns, prev, end, stream)
                else:
                    add({key: text, "stream": stream}, ns, prev, end, stream)
            else:
                self._piece(stream, text, ns, prev, end, complete, out, tags[i] if tags else None)
            prev = end

    def _piece(self, stream: str, text: str, ns: int, start: int, end: int, final: bool, out: Decoded,
               extra_tags: list[str] | None) -> None:
        group = self._groups.get(stream)
        if group is None:
            group = self._groups[stream] = _Group(start, ns)
        else:
            group.touched = _time.monotonic()
        group.last = end
        room = self._max - group.size
        if len(text) > room:
            text = text[:max(room, 0)]
            group.cut = True
        if extra_tags:
            group.cut = True
        if text:
            group.parts.append(text)
            group.size += len(text)
        if final:
            del self._groups[stream]
            self._emit(stream, group, end, out)

    def _emit(self, stream: str, group: _Group, end: int, out: Decoded) -> None:
        record: dict[str, Any] = {self._key: "".join(group.parts), "stream": stream}
        if group.cut:
            record["tags"] = [TRUNCATED_TAG]
        out.add(record, group.time, group.start, end, stream)

    def _fail(self, line: str, start: int, end: int, out: Decoded, extra_tags: list[str] | None,
              tag: str = FAILURE_TAG) -> None:
        if self._failures is not None:
            self._failures()
        tags = [tag] + list(extra_tags or ())
        key = "message" if self.mode == "json" else self._key  # as the plain json parser writes it
        out.add({key: line, "tags": tags}, _time.time_ns(), start, end, "")

    def flush(self, out: Decoded, older_than: float | None = None) -> None:
        """Emit unfinished groups as they are: all of them (file let go), or those quiet
        for `older_than` seconds."""
        now = _time.monotonic()
        for stream, group in list(self._groups.items()):
            if older_than is not None and now - group.touched < older_than:
                continue
            del self._groups[stream]
            self._emit(stream, group, group.last, out)
