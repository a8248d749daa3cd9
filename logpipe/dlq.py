"""`logpipe dlq list|show|replay`: read a dead-letter file and put its events back.

Dead letters are events an output refused for good (a mapping error, a record it cannot
encode). After the cause is fixed — the index mapping changed, the output's settings
corrected — they should go where they were meant to, once. `replay` sends the selected
entries to one output of a config, through that output's own code and a memory buffer
(the daemon's file buffers are not touched), and rewrites the file with what is left:
the entries not selected, and those that failed again, with their new reason. Events keep
their `meta`, so outputs with deterministic ids (Elasticsearch, MongoDB) make a replay that
is interrupted and run again harmless. Entries of already formatted items (the `item`
form) replay when their item is a JSON object, as that object's record, with its
`@metadata` (an Elasticsearch item's index and document id) as the meta.

The file is replaced atomically at the end; an interrupted replay leaves it as it was.
"""

from __future__ import annotations

import asyncio
import collections
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import orjson

from logpipe.buffer.deadletter import item_event
from logpipe.errors import ConfigError
from logpipe.event import Event


@dataclass
class Entry:
    """One dead letter: its line number (1-based), the parsed document, and the raw line."""

    line: int
    doc: dict[str, Any]
    raw: bytes

    @property
    def output(self) -> str:
        return str(self.doc.get("output", ""))

    @property
    def reason(self) -> str:
        return str(self.doc.get("reason", ""))

    def event(self) -> Event | None:
        """The event to replay, or None when the entry carries nothing replayable."""
        ev = self.doc.get("event")
        if isinstance(ev, dict) and isinstance(ev.get("record"), dict):
            time = ev.get("time")
            return Event(str(ev.get("tag") or "dlq"), time if isinstance(time, int) else None, ev["record"],
                         ev.get("meta") if isinstance(ev.get("meta"), dict) else {})
        item = self.doc.get("item")
        if isinstance(item, dict) and "base64" not in item:
            return item_event(str(self.doc.get("tag") or "dlq"), item)
        return None


def read_entries(path: str) -> list[Entry]:
    """Every line of a dead-letter file; a line that is not a JSON object is a ConfigError
    naming its line (a DLQ is written by logpipe: such a line means the file was edited)."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read dead-letter file: {exc.strerror}") from None
    entries = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not a dead-letter line (invalid JSON: {exc})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}:{number}: not a dead-letter line (a JSON object is expected)")
        entries.append(Entry(number, doc, raw))
    return entries


def select(entries: list[Entry], reason: str | None = None, output: str | None = None) -> list[Entry]:
    """Entries whose reason contains `reason` and whose output is `output` (when given)."""
    return [e for e in entries if (reason is None or reason in e.reason) and (output is None or e.output == output)]


def summary(entries: list[Entry]) -> str:
    """Counts per output and reason, most frequent first, with the first and last time."""
    groups: dict[tuple[str, str], list[Entry]] = collections.defaultdict(list)
    for e in entries:
        groups[(e.output, e.reason[:200])].append(e)
    lines = [f"{len(entries)} dead letter(s)"]
    for (output, reason), group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        times = sorted(str(e.doc.get("time", "")) for e in group)
        lines.append(f"{len(group):>8}  output={output}  {times[0]} … {times[-1]}\n          {reason}")
    return "\n".join(lines)


def show(entries: list[Entry], limit: int) -> str:
    return "\n".join(orjson.dumps(e.doc, option=orjson.OPT_INDENT_2).decode() for e in entries[:limit])


async def replay(path: str, config_paths: list[str], output_id: str, reason: str | None = None,
                 timeout: float = 300.0) -> tuple[int, int, int]:
    """Replay the selected entries into `output_id` of the config; returns (replayed,
    failed again, left unreplayable) and rewrites `path` with what is left."""
    from logpipe.pipeline import Pipeline

    # The config first: it is what a user writes for the replay and gets wrong, and its errors
    # carry file:line:column; the dead-letter file is only read once the target is known.
    built = Pipeline.from_paths(config_paths)
    output = next((o for o in built.built.outputs if o.id == output_id), None)
    if output is None:
        ids = ", ".join(sorted(o.id for o in built.built.outputs)) or "none"
        raise ConfigError(f"no output with id {output_id!r} in the config (outputs: {ids})")
    entries = read_entries(path)
    chosen = [e for e in select(entries, reason) if e.event() is not None]
    unreplayable = [e for e in select(entries, reason) if e.event() is None]
    with tempfile.TemporaryDirectory(prefix="logpipe-dlq-") as tmp:
        again_path = os.path.join(tmp, "again.jsonl")
        # A memory buffer and our own dead-letter file: the daemon's buffers are not touched, and
        # what fails again is caught here, with its new reason, instead of going to the secondary.
        output.params.update(buffer="memory", dead_letter_path=again_path, secondary=None,
                             flush_interval=0.0, retry_max_times=output.params.get("retry_max_times") or 5)
        replayer = Pipeline(outputs=[output], state_dir=tmp)
        async with replayer:
            acks = []
            for start in range(0, len(chosen), 500):
                batch = [e.event() for e in chosen[start:start + 500]]
                acks.append(await replayer.emit_events([ev for ev in batch if ev is not None]))
            await asyncio.wait_for(asyncio.gather(*(replayer.delivered(a) for a in acks)), timeout)
        again = read_entries(again_path) if os.path.exists(again_path) else []
    chosen_lines = {e.line for e in chosen}
    kept = [e.raw for e in entries if e.line not in chosen_lines] + [e.raw for e in again]
    _rewrite(path, kept)
    return len(chosen) - len(again), len(again), len(unreplayable)


def _rewrite(path: str, lines: list[bytes]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dlq-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(line + b"\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
