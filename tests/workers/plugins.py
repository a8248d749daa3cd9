"""Filters that misbehave on purpose inside worker processes (registered by the tests that use them;
a worker imports this module by name when it unpickles its spec)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

from logpipe.event import Event
from logpipe.plugin import Filter, Setting


class BlockOnceFilter(Filter):
    """On the first batch holding an event with `block` set, in whichever worker: writes this
    process's pid to `flag` and waits there to be killed. Every later batch passes."""

    name = "block_once"
    creates_events = False
    settings: ClassVar[list[Setting]] = [Setting("flag", "path", required=True)]

    def filter(self, events: list[Event]) -> list[Event]:
        if any(ev.record.get("block") for ev in events):
            try:
                fd = os.open(self.flag, os.O_WRONLY | os.O_CREAT | os.O_EXCL)  # type: ignore[attr-defined]
            except FileExistsError:
                return events
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            while True:  # until SIGKILL
                time.sleep(60)
        return events


class CrashFilter(Filter):
    """Kills its worker process on every batch holding an event with `crash` set, counting the
    crashes in `count` (one byte each)."""

    name = "crash_on"
    creates_events = False
    settings: ClassVar[list[Setting]] = [Setting("count", "path", required=True)]

    def filter(self, events: list[Event]) -> list[Event]:
        if any(ev.record.get("crash") for ev in events):
            with open(self.count, "ab") as fh:  # type: ignore[attr-defined]
                fh.write(b"x")
            os._exit(13)
        return events


class PidFilter(Filter):
    """Writes the pid of the process that filtered each event into the event."""

    name = "pid_of"
    creates_events = False
    settings: ClassVar[list[Setting]] = [Setting("note", "any", doc="anything; a callable cannot travel")]

    def filter(self, events: list[Event]) -> list[Event]:
        pid = os.getpid()
        for ev in events:
            ev.record["pid"] = pid
        return events


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text else None


