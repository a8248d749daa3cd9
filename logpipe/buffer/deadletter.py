"""The dead-letter route: where events go that an output will never accept.

Tried in order: the `secondary` output (one attempt — it is the fallback, not a second
retry loop), then the `dead_letter_path` file (JSON lines, fsynced before the events'
acknowledgements may complete), then, when neither is configured, an ERROR log line per
batch with the count, the reason and a sample event. Never silent.

DLQ line: {"event": {"tag", "time" (ns), "record", "meta"}, "output": ID, "reason": TEXT,
"time": ISO-8601 UTC of the dead-lettering}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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

Failure = tuple[Event, str]


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


def dlq_lines(failures: list[Failure], output_id: str, now: dt.datetime | None = None) -> bytes:
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat()
    out = []
    for ev, reason in failures:
        doc = {
            "event": {"tag": ev.tag, "time": ev.time, "record": ev.record, "meta": ev.meta},
            "output": output_id, "reason": reason, "time": stamp,
        }
        try:
            out.append(orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS))
        except TypeError:  # integers beyond 64 bits, surrogate strings: written as text instead
            out.append(orjson.dumps(sanitize(doc), default=str))
    return b"\n".join(out) + b"\n"


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
    def __init__(self, output_id: str, path: str | None, secondary: Output | None, log: logging.Logger) -> None:
        self.output_id = output_id
        self.path = path
        self.secondary = secondary
        self.log = log

    async def send(self, failures: list[Failure]) -> str:
        """Route failed events; return where the last of them went ("secondary", "file", "log")."""
        if not failures:
            return "none"
        if self.secondary is not None:
            failures = await self._to_secondary(failures)
            if not failures:
                return "secondary"
        if self.path is not None:
            try:
                await asyncio.to_thread(_append_durably, self.path, dlq_lines(failures, self.output_id))
                return "file"
            except OSError as exc:
                self.log.error("output %s: cannot write dead letters to %s: %s", self.output_id, self.path, exc)
        ev, reason = failures[0]
        self.log.error(
            "output %s: %d event(s) failed for good and no dead-letter route took them (set dead_letter_path); "
            "first reason: %s; first event: tag=%s record=%.500r",
            self.output_id, len(failures), reason, ev.tag, ev.record,
        )
        return "log"

    async def _to_secondary(self, failures: list[Failure]) -> list[Failure]:
        """Write to the secondary output once; return the failures it did not take."""
        assert self.secondary is not None
        try:
            result = await self.secondary.write([ev for ev, _ in failures])
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
