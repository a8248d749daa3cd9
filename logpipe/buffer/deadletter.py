"""The dead-letter route: where events go that an output will never accept.

Tried in order: the `secondary` output (one attempt — it is the fallback, not a second
retry loop), then the `dead_letter_path` file (JSON lines, fsynced before the events'
acknowledgements may complete), then, when neither is configured, an ERROR log line per
batch with the count, the reason and a sample event. Never silent.

DLQ line: {"event": {"tag", "time" (ns), "record", "meta"}, "output": ID, "reason": TEXT,
"time": ISO-8601 UTC of the dead-lettering}. A failure of an already formatted item (a
chunk of Output.format items) has "tag" and "item" instead of "event": the item as the
output describes it (Output.describe: decoded JSON, else {"base64": …}). A secondary output
gets such items as events whose record is that description.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import orjson

from logpipe.buffer.file import sanitize
from logpipe.errors import ConfigError
from logpipe.event import Event

if TYPE_CHECKING:
    from logpipe.plugin import Output


def describe_item(item: bytes) -> Any:
    """A formatted item as a dead letter shows it: JSON when it is JSON (several lines: a
    list), else {"base64": …} — the bytes are kept either way."""
    try:
        return orjson.loads(item)
    except orjson.JSONDecodeError:
        pass
    lines = item.splitlines()
    if len(lines) > 1:
        try:
            return [orjson.loads(line) for line in lines if line]
        except orjson.JSONDecodeError:
            pass
    return {"base64": base64.b64encode(item).decode("ascii")}


#: How much of an event's repr a dead letter keeps when nothing else can encode it.
MAX_REPR = 1 << 20
#: (Event or formatted item (bytes), reason)
Failure = tuple[Any, str]
Describe = Callable[[bytes], Any]


def build_secondary(settings: dict[str, Any], factory: Callable[[dict[str, Any]], Output] | None) -> Output:
    """The `secondary` output: through the pipeline's factory when given, else by entry point."""
    if factory is not None:
        return factory(settings)
    params = dict(settings)
    name = str(params.pop("@type", None) or params.pop("type", ""))
    params.pop("type", None)
    found = entry_points(group="logpipe.plugins", name=f"output.{name}")
    if not found:
        raise ConfigError(f"secondary: unknown output plugin {name!r}", setting="secondary")
    cls = next(iter(found)).load()
    output: Output = cls(**params)
    return output


def dlq_lines(failures: list[Failure], output_id: str, now: dt.datetime | None = None,
              tag: str | None = None, describe: Describe | None = None) -> bytes:
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat()
    out = []
    for ev, reason in failures:
        doc: dict[str, Any]
        if isinstance(ev, Event):
            doc = {"event": {"tag": ev.tag, "time": ev.time, "record": ev.record, "meta": ev.meta}}
        else:
            doc = {"tag": tag, "item": (describe or describe_item)(ev)}
        doc.update({"output": output_id, "reason": reason, "time": stamp})
        out.append(_dumps_somehow(doc))
    return b"\n".join(out) + b"\n"


def _dumps_somehow(doc: dict[str, Any]) -> bytes:
    """A dead letter must be written whatever it holds: orjson; for integers beyond 64 bits
    or surrogate strings, sanitized; for nesting deeper than orjson's 254 levels, the
    stdlib encoder; past Python's recursion limit, the event as its (bounded) repr."""
    try:
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        pass
    try:
        clean = sanitize(doc)
        try:
            return orjson.dumps(clean, default=str)
        except TypeError:
            return json.dumps(clean, default=str, ensure_ascii=False).encode("utf-8", "backslashreplace")
    except (RecursionError, TypeError, ValueError):
        flat = {k: (v if k in ("output", "reason", "time", "tag") else repr(v)[:MAX_REPR]) for k, v in doc.items()}
        return orjson.dumps(flat, default=str)


def as_event(failed: Any, tag: str | None, describe: Describe) -> Event:
    """An event for a failure: itself, or a formatted item's description as the record."""
    if isinstance(failed, Event):
        return failed
    return item_event(tag or "deadletter", describe(failed))


def item_event(tag: str, described: Any) -> Event:
    """The event a formatted item's description stands for: a dict is the record, its
    `@metadata` (what the output keeps about the item: an index, a document id) the meta."""
    if not isinstance(described, dict):
        return Event(tag, None, {"item": described})
    record = dict(described)
    meta = record.pop("@metadata", None)
    return Event(tag, None, record, meta if isinstance(meta, dict) else None)


def _append_durably(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


class DeadLetter:
    def __init__(self, output_id: str, path: str | None, secondary: Output | None, log: logging.Logger,
                 describe: Describe | None = None, raw: Callable[[bytes], bytes] | None = None) -> None:
        self.output_id = output_id
        self.describe = describe or describe_item
        #: The primary's item as its chunk holds it (Output.chunk_bytes), for secondaries that dump chunks.
        self.raw = raw or (lambda item: item)
        self.path = path
        self.secondary = secondary
        self.log = log

    async def send(self, failures: list[Failure], tag: str | None = None) -> str:
        """Route failed events or items (of chunk tag `tag`); return where the last of them
        went ("secondary", "file", "log")."""
        if not failures:
            return "none"
        if self.secondary is not None:
            failures = await self._to_secondary(failures, tag)
            if not failures:
                return "secondary"
        if self.path is not None:
            try:
                await asyncio.to_thread(_append_durably, self.path,
                                        dlq_lines(failures, self.output_id, tag=tag, describe=self.describe))
                return "file"
            except OSError as exc:
                self.log.error("output %s: cannot write dead letters to %s: %s", self.output_id, self.path, exc)
        ev = as_event(failures[0][0], tag, self.describe)
        reason = failures[0][1]
        self.log.error(
            "output %s: %d event(s) failed for good and no dead-letter route took them (set dead_letter_path); "
            "first reason: %s; first event: tag=%s record=%.500r",
            self.output_id, len(failures), reason, ev.tag, ev.record,
        )
        return "log"

    async def _to_secondary(self, failures: list[Failure], tag: str | None) -> list[Failure]:
        """Write to the secondary output once; return the failures it did not take."""
        secondary = self.secondary
        assert secondary is not None
        events = [as_event(failed, tag, self.describe) for failed, _ in failures]
        dump = getattr(secondary, "write_failed", None)  # secondary_file: the chunk as the primary buffered it
        try:
            if dump is not None:
                await dump([failed for failed, _ in failures], tag, self.raw)
                return []
            result = await secondary.write(events if secondary.wants_events else secondary.format(events))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the secondary means: fall back
            self.log.warning("output %s: secondary output failed (%s); falling back", self.output_id, exc)
            return failures
        if result is None or not (result.retry or result.failed):
            return []
        refused = sorted({*result.retry, *(i for i, _ in result.failed)})
        self.log.warning("output %s: secondary output refused %d event(s); falling back",
                         self.output_id, len(refused))
        return [failures[i] for i in refused if 0 <= i < len(failures)]
