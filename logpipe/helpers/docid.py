"""Deterministic document ids for outputs that can be idempotent (Elasticsearch, MongoDB).

Delivery is at-least-once: a chunk is retried after a timeout, and replayed after a crash,
even when the server had already stored it. If every event always maps to the same `_id`,
those repeats overwrite (ES `index`), are refused as already there (ES `create` → 409,
Mongo duplicate key 11000) and never become duplicate documents.

The id hashes what identifies an event: tag, time (ns), record and meta. An input that
knows where an event came from puts a stable source identity in `meta["_origin"]` (for
tail: path, inode and byte offset of the line); then the id hashes tag, origin and record
and leaves the time out, because an input that reads a line again after a crash stamps it
with a new read time. The serialisation sorts keys, so an event rebuilt from a file buffer hashes the same as the
original. blake2b is in the standard library and fast on short inputs; 120 bits encoded
as 20 URL-safe base64 characters keep the ES `_id` small while collisions stay
out of reach for any realistic volume.

Identical events within one chunk (same line twice in the same instant, no offset in
meta) would collapse into one document; the second and later get an occurrence suffix
instead. The id is remembered in the event's meta under `MEMO_KEY` so that a later retry
of only some of those events reuses the ids they were first given.
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64encode
from hashlib import blake2b
from typing import Any

import orjson

from logpipe.event import Event

MEMO_KEY = "_docid"
ORIGIN_KEY = "_origin"
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _fallback(value: Any) -> Any:
    """Values orjson cannot serialise (bytes, sets, objects) still hash, by a stable text form."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(repr(v) for v in value)
    return repr(value)


def event_id(event: Event) -> str:
    """The id of one event, from its content alone (no memo, no occurrence suffix)."""
    origin = event.meta.get(ORIGIN_KEY)
    content: tuple[Any, ...] = (
        (event.tag, event.time, event.record, event.meta) if origin is None else (event.tag, origin, event.record)
    )
    try:
        payload = orjson.dumps(content, default=_fallback, option=_OPTIONS)
    except TypeError:
        # orjson refuses what JSON can still say (integers beyond 64 bits, deep nesting):
        # the standard library is slower but takes anything, and the id must never fail.
        payload = json.dumps(content, default=_fallback, sort_keys=True, separators=(",", ":")).encode()
    return urlsafe_b64encode(blake2b(payload, digest_size=15).digest()).decode("ascii")


def assign_ids(events: list[Event]) -> list[str]:
    """Ids for a chunk, in order: remembered ones reused, new ones hashed and remembered,
    repeats within the chunk told apart by an occurrence suffix (`id-1`, `id-2` …)."""
    ids: list[str] = []
    seen: set[str] = set()
    for ev in events:
        meta = ev.meta
        doc_id = meta.get(MEMO_KEY)
        if doc_id is None:
            base = doc_id = event_id(ev)
            n = 0
            while doc_id in seen:
                n += 1
                doc_id = f"{base}-{n}"
            meta[MEMO_KEY] = doc_id
        seen.add(doc_id)
        ids.append(doc_id)
    return ids
