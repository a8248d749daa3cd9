"""Object keys: Fluentd's `s3_object_key_format` with Logstash's sprintf in the prefix.

`%{path}` (the `prefix`/`path` setting), `%{time_slice}` (`time_slice_format`, strftime of the
event time, UTC), `%{file_extension}`, `%{hostname}` are resolved when the output is built;
`${tag}` / `${tag[N]}` (Fluentd's placeholders) and `%Y %m %d %H %M %S %y %j` (strftime)
per event, then Logstash's `%{field}` / `%{+YYYY.MM.dd}` sprintf. What is left is the
object's *index*: `%{index}`, `%{hex_random}` and `%{uuid_flush}` all become the same
digest of the object's content, so a chunk that is retried (or replayed from a file buffer)
is written to the same key and overwrites its earlier copy instead of adding a duplicate —
Fluentd picks a counter or a random value there, which duplicates on retry.
"""

from __future__ import annotations

import functools
import re
import socket
import time
from collections.abc import Callable

from logpipe.event import Event
from logpipe.fields import compile_sprintf

#: Stands for the object's index until the object's content is known (a character no key has).
INDEX = "\x00"
_INDEX_TOKENS = ("%{index}", "%{hex_random}", "%{uuid_flush}")
_STRFTIME = re.compile(r"%([YmdHMSyj%])")
_TAG = re.compile(r"\$\{tag(?:\[(-?\d+)\])?\}")


def compile_key(key_format: str, *, path: str, time_slice_format: str,
                file_extension: str) -> Callable[[Event], str]:
    """event → its object's key, with INDEX where the content digest goes."""
    template = (key_format.replace("%{path}", path).replace("%{time_slice}", time_slice_format)
                .replace("%{file_extension}", file_extension).replace("%{hostname}", socket.gethostname()))
    for token in _INDEX_TOKENS:
        template = template.replace(token, INDEX)
    has_time = bool(_STRFTIME.search(template))
    has_tag = "${tag" in template
    sprintf = compile_sprintf(template) if "%{" in template else None

    cache: dict[tuple[str, int], str] = {}  # (tag, second) → the key with tag and time put in

    def tag_and_time(ev: Event) -> str:
        second = ev.time // 1_000_000_000
        text = cache.get((ev.tag, second))
        if text is None:
            if len(cache) > 4096:
                cache.clear()
            text = template
            if has_tag:
                parts = ev.tag.split(".")
                text = _TAG.sub(lambda m: ev.tag if m.group(1) is None else _part(parts, int(m.group(1))), text)
            if has_time:
                text = strftime_utc(text, ev.time)
            cache[(ev.tag, second)] = text
        return text

    def render(ev: Event) -> str:
        text = tag_and_time(ev) if has_tag or has_time else template
        if sprintf is not None:
            # sprintf last, so a field value holding '%' or '${' is never read as a placeholder.
            text = (_compiled(text) if has_tag or has_time else sprintf)(ev)
        return text

    return render


def strftime_utc(text: str, ns: int) -> str:
    t = time.gmtime(ns // 1_000_000_000)
    values = {"Y": f"{t.tm_year:04d}", "m": f"{t.tm_mon:02d}", "d": f"{t.tm_mday:02d}", "H": f"{t.tm_hour:02d}",
              "M": f"{t.tm_min:02d}", "S": f"{t.tm_sec:02d}", "y": f"{t.tm_year % 100:02d}",
              "j": f"{t.tm_yday:03d}", "%": "%"}
    return _STRFTIME.sub(lambda m: values[m.group(1)], text)


def with_index(key: str, digest: str) -> str:
    """The final key: 32 hex digits of the content digest where the format asked for an index."""
    return key.replace(INDEX, digest[:32])


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> Callable[[Event], str]:
    """sprintf templates after the tag and time were put in: few distinct ones per hour."""
    return compile_sprintf(text)


def _part(parts: list[str], index: int) -> str:
    try:
        return parts[index]
    except IndexError:
        return ""
