"""`redis` output: Logstash's bundled redis output, plus Redis Streams.

`data_type => list` RPUSHes each chunk (one RPUSH per key, pipelined) — the shipper side
of the classic shipper → Redis → indexer tier; `channel` PUBLISHes (subscribers that are
not connected miss the events: pub/sub is at-most-once); `stream` XADDs one entry per
event (field `stream_field`) with `MAXLEN ~ stream_maxlen` so the stream stays bounded,
up to 1000 entries per call of a Lua script (one command instead of one per event: the
client's per-command cost was the stream tier's bottleneck).
`key` is sprintf'd per event. A chunk counts as delivered once Redis answered every
command; a connection failure retries the chunk through the buffer engine (at least
once: a reply lost after Redis applied the command can mean a duplicate), and a command
Redis refuses (WRONGTYPE, OOM) dead-letters the events it carried, with Redis's error.
With several `host`s a chunk goes to the first that answers, starting from a shuffled
order (`shuffle_hosts`), as Logstash fails over.

`congestion_threshold` (lists): while the list holds more than this many items the write
waits, checking every `congestion_interval` — backpressure that protects a Redis an
indexer tier has stopped draining.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.helpers.broker_message import encode_event, encode_events
from logpipe.helpers.redis_client import TRANSIENT_ERRORS, RedisConnection
from logpipe.plugin import Codec, Output, RetryableError, Setting, WriteResult

#: XADD of ARGV[4..] to KEYS[1], field ARGV[1], MAXLEN ARGV[3] ARGV[2] (0: no MAXLEN).
_XADD_MANY = """
for i = 4, #ARGV do
  if ARGV[2] ~= '0' then
    redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[2], '*', ARGV[1], ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
  end
end
return #ARGV - 3
"""
#: Entries per script call: bounds how long one call holds Redis.
_XADD_SLICE = 1000


class RedisOutput(Output):
    name = "redis"
    doc = "Redis list (RPUSH), pub/sub channel (PUBLISH) or stream (XADD with MAXLEN)"
    retryable_errors = TRANSIENT_ERRORS
    helpers = [RedisConnection]
    settings: ClassVar[list[Setting]] = [
        Setting("host", "array", default=["127.0.0.1"], doc='"host" or "host:port" entries; failover in order'),
        Setting("shuffle_hosts", "bool", default=True, doc="start from a random host (spreads shippers)"),
        Setting("key", "string", required=True, doc="list, channel or stream name (sprintf)"),
        Setting("data_type", "string", required=True, choices=("list", "channel", "stream"),
                doc="list: RPUSH; channel: PUBLISH (at-most-once); stream: XADD"),
        Setting("codec", "codec", default="json", doc="how an event becomes a message"),
        Setting("stream_field", "string", default="event", doc="stream entry field holding the encoded event"),
        Setting("stream_maxlen", "int", default=1_000_000, min=0,
                doc="XADD MAXLEN: entries a stream keeps (0: unbounded)"),
        Setting("stream_maxlen_approximate", "bool", default=True, doc="MAXLEN ~ (cheaper trimming)"),
        Setting("congestion_threshold", "int", default=0, min=0,
                doc="lists: wait while the list is longer than this (0: never)"),
        Setting("congestion_interval", "duration", default=1.0, min=0.001, doc="how often to recheck congestion"),
        Setting("batch", "bool", default=True, doc="accepted for Logstash compatibility (chunks are batches)"),
        Setting("batch_events", "int", default=50, min=1, doc="accepted for Logstash compatibility"),
        Setting("batch_timeout", "int", default=5, min=0, doc="accepted for Logstash compatibility"),
        Setting("reconnect_interval", "duration", default=1.0, doc="accepted for Logstash compatibility"),
    ]
    key: str
    data_type: str
    codec: Codec
    stream_field: str
    stream_maxlen: int
    stream_maxlen_approximate: bool
    congestion_threshold: int
    congestion_interval: float
    shuffle_hosts: bool

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._hosts = [_host_port(h, self.params["port"]) for h in self.params["host"]]
        if not self._hosts:
            raise ConfigError("'host' is empty", setting="host")
        self._key = compile_sprintf(self.key)
        self._clients: dict[tuple[str, int], aioredis.Redis] = {}

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def format_event(self, event: Event) -> bytes:
        """The message one event becomes (pure: the output API's `format` per event)."""
        return encode_event(event, self.codec)

    async def write(self, events: list[Event]) -> WriteResult | None:
        if not events:
            return None
        keys = [self._key(ev) for ev in events]
        payloads = encode_events(events, self.codec)
        hosts = list(self._hosts)
        if self.shuffle_hosts and len(hosts) > 1:
            random.shuffle(hosts)
        errors: list[str] = []
        for host in hosts:
            client = self._client(host)
            try:
                return await self._send(client, keys, payloads)
            except TRANSIENT_ERRORS as exc:
                errors.append(f"{host[0]}:{host[1]}: {exc}")
        raise RetryableError("no redis host took the chunk: " + "; ".join(errors))

    def _client(self, host: tuple[str, int]) -> aioredis.Redis:
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = RedisConnection.client(self, *host)
        return client

    async def _send(self, client: aioredis.Redis, keys: list[str], payloads: list[bytes]) -> WriteResult | None:
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        if self.data_type == "list" and self.congestion_threshold:
            await self._wait_uncongested(client, list(groups))
        pipe = client.pipeline(transaction=False)
        owners: list[list[int]] = []  # the event indexes each queued command carries
        for key, indexes in groups.items():
            if self.data_type == "list":
                pipe.rpush(key, *(payloads[i] for i in indexes))
                owners.append(indexes)
                continue
            if self.data_type == "stream":
                xadd = client.register_script(_XADD_MANY)
                head: list[bytes | str | int] = [self.stream_field, self.stream_maxlen,
                                                 "~" if self.stream_maxlen_approximate else "="]
                for start in range(0, len(indexes), _XADD_SLICE):
                    part = indexes[start:start + _XADD_SLICE]
                    await xadd(keys=[key], args=head + [payloads[i] for i in part], client=pipe)  # queues it
                    owners.append(part)
                continue
            for i in indexes:
                pipe.publish(key, payloads[i])
                owners.append([i])
        replies = await pipe.execute(raise_on_error=False)
        failed: list[tuple[int, str]] = []
        for indexes, reply in zip(owners, replies, strict=True):
            if isinstance(reply, TRANSIENT_ERRORS):
                raise reply
            if isinstance(reply, (ResponseError, Exception)):
                failed.extend((i, f"redis refused: {reply}") for i in indexes)
        return WriteResult(failed=failed) if failed else None

    async def _wait_uncongested(self, client: aioredis.Redis, keys: list[str]) -> None:
        while True:
            lengths = [await client.llen(key) for key in keys]
            if max(lengths) <= self.congestion_threshold:
                return
            self.log.warning("redis list over congestion_threshold (%d > %d): waiting",
                             max(lengths), self.congestion_threshold)
            await asyncio.sleep(self.congestion_interval)


def _host_port(spec: Any, default_port: int) -> tuple[str, int]:
    text = str(spec).strip()
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        return text.strip("[]"), default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ConfigError(f"bad redis host {text!r}: expected \"host\" or \"host:port\"", setting="host") from None
