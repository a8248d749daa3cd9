"""Fluentd's output placeholders, driven by `<buffer tag,time,key>` chunk keys: strftime of
the chunk's time slot (`%Y%m%d`), `${tag}`, `${tag[N]}` (negative from the end), `${key}`
for record chunk keys, `${chunk_id}`; and the checks Fluentd makes at configure
(Output#placeholder_validate!), with its messages, so a path that uses a placeholder its
buffer does not chunk by is a config error at the path's line, as in Fluentd.

Here the values come from the event (its tag, its time cut to the slot, its record's keys):
events that share a chunk share them, so the result is the chunk's, as in Fluentd.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.ruby_text import ruby_to_s

NS = 1_000_000_000
KEY_PATTERN = re.compile(r"\$\{([-_.@$a-zA-Z0-9]+)\}")
TAG_PATTERN = re.compile(r"\$\{(tag(?:\[-?\d+\])?)\}")
_BASE = datetime(2016, 1, 1, tzinfo=UTC)
_THRESHOLDS = ((1, "second", "%S"), (60, "minute", "%M"), (3600, "hour", "%H"), (86400, "day", "%d"))


def time_placeholder(text: str) -> tuple[int, str, str] | None:
    """The finest time unit `text` changes with (Fluentd's get_placeholders_time)."""
    base = _BASE.strftime(text)
    for step in _THRESHOLDS:
        if (_BASE + timedelta(seconds=step[0])).strftime(text) != base:
            return step
    return None


def tag_placeholders(text: str) -> list[int]:
    """-1 for `${tag}`, N for `${tag[N]}`."""
    parts = []
    for name in TAG_PATTERN.findall(text):
        parts.append(-1 if name == "tag" else int(name[4:-1]))
    return sorted(parts)


def key_placeholders(text: str) -> list[str]:
    return sorted(k for k in KEY_PATTERN.findall(text) if k not in ("tag", "chunk_id") and not k.startswith("tag["))


def validate(name: str, text: str, *, timekey: float | None, tag_key: bool, keys: list[str],
             check: tuple[str, ...] = ("time", "tag", "keys")) -> None:
    """Fluentd's PlaceholderValidator for `name: text`; raises ConfigError(setting=name)."""
    def fail(message: str) -> ConfigError:
        return ConfigError(f"Parameter '{name}: {text}' {message}", setting=name)

    found = time_placeholder(text)
    if "time" in check and (found or timekey):
        if not found and timekey:
            raise fail(f"doesn't have timestamp placeholders for timekey {int(timekey)}")
        if found and not timekey:
            raise fail("has timestamp placeholders, but chunk key 'time' is not configured")
        if found and timekey and timekey < found[0]:
            raise fail(f"doesn't have timestamp placeholder for {found[1]}('{found[2]}') for timekey {int(timekey)}")
    parts = tag_placeholders(text)
    if "tag" in check and (tag_key or parts):
        if tag_key and not parts:
            raise fail("doesn't have tag placeholder")
        if not tag_key and parts:
            raise fail("has tag placeholders, but chunk key 'tag' is not configured")
    used = key_placeholders(text)
    if "keys" in check and (keys or used):
        missing = sorted(set(keys) - set(used))
        if missing:
            raise fail(f"doesn't have enough placeholders for keys {','.join(missing)}")
        extra = sorted(set(used) - set(keys))
        if extra:
            raise fail(f"has placeholders, but chunk keys doesn't have keys {','.join(extra)}")


def _record_value(key: str) -> Callable[[dict[str, Any]], Any]:
    if not key.startswith("$."):
        return lambda record: record.get(key)
    path = key[2:].split(".")

    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


@dataclass(frozen=True)
class ChunkKeys:
    """What a buffer chunks by: `tag`, the time slot (`timekey` seconds, cut `offset` seconds
    east of UTC) and record keys."""

    tag: bool
    timekey: float | None
    keys: tuple[str, ...]
    offset: int = 0

    @classmethod
    def of(cls, chunk_keys: list[str], timekey: float | None, offset: int) -> ChunkKeys:
        keys = tuple(k for k in chunk_keys if k not in ("tag", "time"))
        return cls("tag" in chunk_keys, timekey if "time" in chunk_keys else None, keys, offset)

    def slot(self, ns: int) -> int:
        """The start (ns, UTC) of the time slot an event falls in."""
        width = int((self.timekey or 86400) * NS)
        return ns - (ns + self.offset * NS) % width


def compile_extractor(template: str, chunk: ChunkKeys) -> Callable[[Event], str]:
    """The template filled in for an event's chunk (Fluentd's extract_placeholders), cached
    per distinct (tag, slot, key values)."""
    zone = timezone(timedelta(seconds=chunk.offset))
    getters = [(f"${{{k}}}", _record_value(k)) for k in chunk.keys]
    has_tag = chunk.tag and TAG_PATTERN.search(template) is not None
    cache: dict[tuple[Any, ...], str] = {}

    def fill(ev: Event) -> str:
        slot = chunk.slot(ev.time) if chunk.timekey else None
        values = tuple(ruby_to_s(get(ev.record)) for _, get in getters)
        cache_key = (ev.tag if has_tag else None, slot, values)
        hit = cache.get(cache_key)
        if hit is not None:
            return hit
        text = template
        if slot is not None:
            text = datetime.fromtimestamp(slot // NS, zone).strftime(text)
        if has_tag:
            parts = ev.tag.split(".")
            names = {"tag": ev.tag}
            for i, part in enumerate(parts):
                names[f"tag[{i}]"] = part
                names[f"tag[{i - len(parts)}]"] = part
            text = TAG_PATTERN.sub(lambda m: names.get(m.group(1), m.group(0)), text)
        for (placeholder, _), value in zip(getters, values, strict=True):
            text = text.replace(placeholder, value)
        if len(cache) > 4096:
            cache.clear()
        cache[cache_key] = text
        return text

    return fill
