"""`redis` input: Logstash's bundled redis input, with a crash-safe list mode and Redis Streams.

- `data_type => list` (reliable, the default): up to `batch_count` items are moved
  atomically by a Lua script from `key` into ONE element of the consumer's own list
  `<key>:processing:<consumer>:batches` (the items msgpack-packed with Redis's cmsgpack),
  emitted, and that element is removed (one LREM) only when the ack contract completes:
  a batch costs one round trip to take and one to commit, whatever its size. When `key`
  is empty the input blocks in BLMOVE, which moves one item into
  `<key>:processing:<consumer>`; the script then takes it back into the batch it starts.
  At start both lists left by a crash are emitted again first: nothing is lost, a crash
  may repeat a batch. `reliable => false`
  is Logstash's behaviour (items popped before they are processed: a crash loses them).
- `data_type => channel | pattern_channel`: SUBSCRIBE / PSUBSCRIBE. Pub/sub is
  at-most-once: what is published while the input is disconnected or stopped is gone.
- `data_type => stream`: a consumer group (`group`, created with MKSTREAM at
  `stream_start_id` when missing) read with XREADGROUP; entries are XACKed only when the
  ack contract completes. Every `claim_interval` the input XAUTOCLAIMs entries another
  consumer has left pending longer than `claim_idle_time` (a dead indexer's share is taken
  over), and refreshes the idle time of its own in-flight entries so a slow pipeline is not
  mistaken for a dead one. At start the consumer's own pending entries are read again.

`threads` runs that many consumers (`<consumer>-<n>`) in this input. Payloads go
through the codec (`json` by default, Logstash's choice): a payload that is not valid
becomes a `message` tagged `_jsonparsefailure`, it never stops the input.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from logpipe.event import Event
from logpipe.helpers.broker_message import decode_payloads
from logpipe.helpers.redis_client import TRANSIENT_ERRORS, RedisConnection
from logpipe.plugin import Codec, Input, InputContext, Setting

from .commits import Committer

#: Takes up to ARGV[1] items from the head of KEYS[1] (with ARGV[2] == '1', first the item
#: BLMOVE just put at the tail of KEYS[2]) and stores them as one msgpack element at the tail
#: of KEYS[3], atomically; returns that element (nil when there was nothing).
_MOVE_BATCH = """
local n = tonumber(ARGV[1])
local items = {}
if ARGV[2] == '1' then
  local first = redis.call('RPOP', KEYS[2])
  if first then items[1] = first end
end
if n > 0 then
  local more = redis.call('LRANGE', KEYS[1], 0, n - 1)
  if #more > 0 then
    redis.call('LTRIM', KEYS[1], #more, -1)
    for i = 1, #more do items[#items + 1] = more[i] end
  end
end
if #items == 0 then return false end
local packed = cmsgpack.pack(items)
redis.call('RPUSH', KEYS[3], packed)
return packed
"""
#: Logstash's batch pop: up to ARGV[1] items from the head of KEYS[1], removed at once.
_POP_BATCH = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then redis.call('LTRIM', KEYS[1], #items, -1) end
return items
"""
_RECONNECT_WAIT = 1.0


class RedisInput(Input):
    name = "redis"
    doc = "Redis list (reliable LMOVE), pub/sub channel or pattern, or stream consumer group"
    helpers = [RedisConnection]
    settings: ClassVar[list[Setting]] = [
        Setting("host", "string", default="127.0.0.1", doc="Redis host"),
        Setting("key", "string", required=True, doc="list, channel (pattern) or stream name"),
        Setting("data_type", "string", required=True, choices=("list", "channel", "pattern_channel", "stream"),
                doc="list, channel / pattern_channel (pub/sub, at-most-once) or stream"),
        Setting("codec", "codec", default="json", doc="how a message becomes events"),
        Setting("batch_count", "int", default=125, min=1, max=5000, doc="items fetched per read"),
        Setting("threads", "int", default=1, min=1, max=64, doc="consumers run by this input"),
        Setting("reliable", "bool", default=True,
                doc="list: keep items in a processing list until acknowledged (false: Logstash's pop)"),
        Setting("consumer", "string",
                doc="this consumer's name: the processing list's and the stream consumer's "
                    "(default: hostname-id); must be stable across restarts and unique per indexer"),
        Setting("group", "string", default="logpipe", doc="stream consumer group"),
        Setting("stream_start_id", "string", default="0",
                doc="where a new consumer group starts: 0 (everything kept) or $ (new entries only)"),
        Setting("stream_field", "string", default="event", doc="entry field holding the encoded event"),
        Setting("claim_idle_time", "duration", default=60.0, min=0.001,
                doc="take over another consumer's entries pending longer than this"),
        Setting("claim_interval", "duration", default=5.0, min=0.001, doc="how often to look for them"),
    ]
    key: str
    data_type: str
    codec: Codec
    batch_count: int
    threads: int
    reliable: bool
    group: str
    stream_start_id: str
    stream_field: str
    claim_idle_time: float
    claim_interval: float

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.consumer: str = self.params["consumer"] or f"{socket.gethostname()}-{self.id}"
        self._client: aioredis.Redis | None = None

    def consumer_name(self, thread: int) -> str:
        return self.consumer if self.threads == 1 else f"{self.consumer}-{thread}"

    def processing_list(self, thread: int) -> str:
        """Where BLMOVE puts the one item a blocked reliable list consumer wakes up with
        (the script moves it into a batch at once; a crash in between leaves it here)."""
        return f"{self.key}:processing:{self.consumer_name(thread)}"

    def batches_list(self, thread: int) -> str:
        """Where a reliable list consumer keeps its unacknowledged batches, one element each."""
        return f"{self.processing_list(thread)}:batches"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, ctx: InputContext) -> None:
        self._client = client = RedisConnection.client(self, self.params["host"])
        if self.data_type in ("channel", "pattern_channel"):
            await self._resilient(lambda: self._subscribe(ctx, client))
            return
        workers = [self._worker(ctx, client, n) for n in range(self.threads)]
        await asyncio.gather(*workers)

    def _worker(self, ctx: InputContext, client: aioredis.Redis, n: int) -> Awaitable[None]:
        if self.data_type == "stream":
            return self._resilient(lambda: self._stream(ctx, client, n))
        if self.reliable:
            return self._resilient(lambda: self._reliable_list(ctx, client, n))
        return self._resilient(lambda: self._list(ctx, client))

    async def _resilient(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a consumer loop, reconnecting after the failures that pass (Redis restarted)."""
        while True:
            try:
                await loop()
                return
            except TRANSIENT_ERRORS as exc:
                self.log.warning("redis %s: %s; reconnecting in %ss", self.key, exc, _RECONNECT_WAIT)
                await asyncio.sleep(_RECONNECT_WAIT)

    def _events(self, payloads: list[bytes]) -> list[Event]:
        return decode_payloads(payloads, self.codec, self.event_tag)

    @property
    def _block_seconds(self) -> int:
        return max(1, round(self.params["timeout"]))

    # ---- lists -----------------------------------------------------------------

    async def _reliable_list(self, ctx: InputContext, client: aioredis.Redis, n: int) -> None:
        processing, batches = self.processing_list(n), self.batches_list(n)
        move = client.register_script(_MOVE_BATCH)
        keys = [self.key, processing, batches]

        async def remove(taken: list[tuple[str, bytes]]) -> None:
            pipe = client.pipeline(transaction=False)
            for name, element in taken:
                pipe.lrem(name, 1, element)  # type: ignore[arg-type]
            await pipe.execute()

        async with Committer(remove, self.log) as committer:
            await self._recover(ctx, client, n, committer)
            while True:
                # Every call interruptible: redis-py can swallow a cancellation that lands in its
                # reply parser, and this loop would then go on forever after shutdown. A script
                # whose answer is abandoned still ran: its batch waits in the batches list.
                packed: Any = await _interruptible(move(keys=keys, args=[self.batch_count, 0]))
                if packed is None:
                    first: Any = await _interruptible(
                        client.blmove(self.key, processing, self._block_seconds, "LEFT", "RIGHT"))
                    if first is None:
                        continue
                    packed = await _interruptible(move(keys=keys, args=[self.batch_count - 1, 1]))
                    if packed is None:
                        continue
                items = msgpack.unpackb(packed, raw=True)
                await ctx.emit(self._events(items), committer.on_ack([(batches, packed)]))

    async def _recover(self, ctx: InputContext, client: aioredis.Redis, n: int,
                       committer: Committer[tuple[str, bytes]]) -> None:
        """What a crash left unacknowledged: single items BLMOVE had moved, then whole batches."""
        processing, batches = self.processing_list(n), self.batches_list(n)
        left: list[bytes] = await client.lrange(processing, 0, -1)  # type: ignore[assignment]
        packed: list[bytes] = await client.lrange(batches, 0, -1)  # type: ignore[assignment]
        if left or packed:
            self.log.info("redis %s: recovering %d items and %d batches left unacknowledged",
                          self.key, len(left), len(packed))
        for start in range(0, len(left), self.batch_count):
            recovered = left[start:start + self.batch_count]
            await ctx.emit(self._events(recovered), committer.on_ack([(processing, i) for i in recovered]))
        for element in packed:
            await ctx.emit(self._events(msgpack.unpackb(element, raw=True)), committer.on_ack([(batches, element)]))

    async def _list(self, ctx: InputContext, client: aioredis.Redis) -> None:
        pop = client.register_script(_POP_BATCH)
        while True:
            batch: list[bytes] = await pop(keys=[self.key], args=[self.batch_count])
            if not batch:
                popped: Any = await _interruptible(client.blpop([self.key], self._block_seconds))
                if popped is None:
                    continue
                batch = [popped[1]]
            await ctx.emit(self._events(batch), None)

    # ---- pub/sub ---------------------------------------------------------------

    async def _subscribe(self, ctx: InputContext, client: aioredis.Redis) -> None:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            if self.data_type == "channel":
                await pubsub.subscribe(self.key)
            else:
                await pubsub.psubscribe(self.key)
            while True:
                message = await _interruptible(pubsub.get_message(timeout=self.params["timeout"]))
                if message is None:
                    continue
                batch = [message["data"]]
                while len(batch) < self.batch_count:
                    more = await pubsub.get_message(timeout=0)
                    if more is None:
                        break
                    batch.append(more["data"])
                await ctx.emit(self._events(batch), None)
        finally:
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await pubsub.aclose()

    # ---- streams ---------------------------------------------------------------

    async def _stream(self, ctx: InputContext, client: aioredis.Redis, n: int) -> None:
        consumer = self.consumer_name(n)
        in_flight: set[bytes] = set()

        async def acknowledge(ids: list[bytes]) -> None:
            await client.xack(self.key, self.group, *ids)
            in_flight.difference_update(ids)

        async def emit(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
            fresh = [(i, fields) for i, fields in entries if i not in in_flight]
            if not fresh:
                return
            ids = [i for i, _ in fresh]
            in_flight.update(ids)
            await ctx.emit(self._stream_events(fresh), committer.on_ack(ids))

        await self._ensure_group(client)
        async with Committer(acknowledge, self.log) as committer:
            claimer = asyncio.create_task(self._claim_loop(client, consumer, in_flight, emit))
            try:
                await self._read_group(client, consumer, emit)
            finally:
                claimer.cancel()
                await asyncio.gather(claimer, return_exceptions=True)

    async def _ensure_group(self, client: aioredis.Redis) -> None:
        try:
            await client.xgroup_create(self.key, self.group, id=self.stream_start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read_group(self, client: aioredis.Redis, consumer: str,
                          emit: Callable[[list[Any]], Awaitable[None]]) -> None:
        """Own pending entries first (a restart after a crash), then new ones."""
        after = b"0"
        while after != b">":
            reply: Any = await client.xreadgroup(self.group, consumer, {self.key: after}, count=self.batch_count)
            entries = _entries(reply)
            if not entries:
                after = b">"
                break
            after = entries[-1][0]
            await emit(entries)
        block_ms = int(self.params["timeout"] * 1000)
        while True:
            try:
                reply = await _interruptible(client.xreadgroup(self.group, consumer, {self.key: ">"},
                                                               count=self.batch_count, block=block_ms))
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.log.warning("redis stream %s lost group %s (server restarted?): recreating", self.key, self.group)
                await self._ensure_group(client)
                continue
            if reply:
                await emit(_entries(reply))

    async def _claim_loop(self, client: aioredis.Redis, consumer: str, in_flight: set[bytes],
                          emit: Callable[[list[Any]], Awaitable[None]]) -> None:
        idle_ms = int(self.claim_idle_time * 1000)
        while True:
            await asyncio.sleep(self.claim_interval)
            try:
                if in_flight:  # still ours, only slow: reset their idle time
                    await client.xclaim(self.key, self.group, consumer, 0, list(in_flight), justid=True)
                cursor: Any = "0-0"
                while True:
                    cursor, entries, *_ = await client.xautoclaim(
                        self.key, self.group, consumer, idle_ms, cursor, count=self.batch_count)
                    entries = [(i, f) for i, f in entries if f is not None]
                    if entries:
                        self.log.info("redis stream %s: took over %d idle entries", self.key, len(entries))
                        await emit(entries)
                    if cursor in (b"0-0", "0-0"):
                        break
            except (ResponseError, *TRANSIENT_ERRORS) as exc:  # type: ignore[misc]
                self.log.warning("redis stream %s: claiming idle entries failed: %s", self.key, exc)

    def _stream_events(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Event]:
        tag = self.event_tag
        field = self.stream_field.encode()
        events: list[Event] = []
        run: list[bytes] = []  # consecutive encoded events: decoded in one codec call
        for entry_id, fields in entries:
            payload = fields.get(field)
            if payload is not None:
                run.append(payload)
                continue
            if run:
                events.extend(decode_payloads(run, self.codec, tag))
                run = []
            # An entry another producer wrote field by field: the fields are the record.
            record = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()}
            events.append(Event(tag, int(entry_id.split(b"-")[0]) * 1_000_000, record))
        if run:
            events.extend(decode_payloads(run, self.codec, tag))
        return events


async def _interruptible(blocking: Awaitable[Any]) -> Any:
    """Await a blocking Redis read so that cancelling the input (shutdown) ends it at once.
    redis-py can absorb a cancellation that lands inside its reply parser and go on waiting
    for the full block timeout; the read runs as its own task and is abandoned instead
    (its connection is dropped with the client in close())."""
    read = asyncio.ensure_future(blocking)
    try:
        return await asyncio.shield(read)
    except asyncio.CancelledError:
        read.add_done_callback(_discard_outcome)
        read.cancel()
        raise


def _discard_outcome(read: asyncio.Future[Any]) -> None:
    if not read.cancelled():
        read.exception()  # retrieved: an abandoned read's connection error is no news


def _entries(reply: Any) -> list[Any]:
    """The entries of a one-stream XREADGROUP reply, as RESP2 (a list) or RESP3 (a map) gives it."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values()))[0]) if reply else []
    return list(reply[0][1])


__all__ = ["RedisInput"]
