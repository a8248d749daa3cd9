"""`rabbitmq` output: Logstash's bundled rabbitmq output (and fluent-plugin-rabbitmq's).

Each event is one AMQP message published to `exchange` with the routing `key` (sprintf per
event), its body the codec's bytes (`json` by default, Logstash's choice). The channel is
in publisher-confirm mode: a chunk counts as delivered only when the broker has confirmed
every message of it (for a persistent message to a durable queue RabbitMQ confirms once it
is written to disk). A connection or channel loss while a chunk is in flight is an I/O
error: the buffer engine retries the whole chunk on a new connection (at least once: a
message whose confirm was lost with the connection is sent again), and a message the
broker nacks (an internal broker error) is retried alone.

The exchange is declared when a connection opens (`exchange_type`, `durable`, `arguments`;
`passive => true` only checks that it exists; `exchange => ""` is the default exchange,
which routes to the queue the key names). An exchange declared elsewhere with other
properties makes the broker refuse the declaration: that is retried, with the broker's
words logged, until an operator fixes one side. Messages the exchange routes nowhere are
dropped by the broker, as in Logstash (bind a queue, or use an alternate exchange).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, ClassVar

import aio_pika
import aiormq
from pamqp.commands import Basic

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.helpers.amqp_client import TRANSIENT_ERRORS, AmqpConnection
from logpipe.helpers.broker_message import encode_event
from logpipe.helpers.format_section import FormatSection, codec_from_format
from logpipe.helpers.routed import pack_routed, unpack_routed
from logpipe.plugin import Codec, Output, RetryableError, Setting, WriteResult

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers", "x-consistent-hash", "x-modulus-hash")
#: message_properties keys (Logstash's, with dashes or underscores) → AMQP basic properties.
_PROPERTIES = {
    "content_type": "content_type", "content_encoding": "content_encoding", "priority": "priority",
    "correlation_id": "correlation_id", "reply_to": "reply_to", "expiration": "expiration",
    "message_id": "message_id", "type": "message_type", "message_type": "message_type", "user_id": "user_id",
    "app_id": "app_id", "headers": "headers",
}


class RabbitMQOutput(Output):
    name = "rabbitmq"
    doc = "RabbitMQ: one AMQP message per event to an exchange, delivered once the broker confirms it"
    helpers = [AmqpConnection, FormatSection]
    settings: ClassVar[list[Setting]] = [
        Setting("exchange", "string", required=True, doc="exchange to publish to"),
        Setting("exchange_type", "string", required=True, choices=EXCHANGE_TYPES, doc="type of that exchange"),
        Setting("key", "string", default="logstash", spellings=("routing_key",),
                doc="routing key (sprintf per event)"),
        Setting("durable", "bool", default=True, spellings=("exchange_durable",),
                doc="declare the exchange durable (it survives a broker restart)"),
        Setting("persistent", "bool", default=True,
                doc="delivery mode 2: the broker writes the messages to disk before it confirms"),
        Setting("arguments", "hash", default={}, doc="extra exchange arguments (x-…)"),
        Setting("message_properties", "hash", default={},
                doc="AMQP properties of every message: content_type, priority, app_id, expiration, headers …"),
        Setting("content_type", "string", doc="fluent-plugin-rabbitmq: the content_type property"),
        Setting("content_encoding", "string", doc="fluent-plugin-rabbitmq: the content_encoding property"),
        Setting("message_type", "string", doc="fluent-plugin-rabbitmq: the type property"),
        Setting("app_id", "string", doc="fluent-plugin-rabbitmq: the app_id property"),
        Setting("priority", "int", min=0, max=255, doc="fluent-plugin-rabbitmq: the priority property"),
        Setting("expiration", "string", doc="fluent-plugin-rabbitmq: per-message TTL in milliseconds"),
        Setting("headers", "hash", default={}, doc="fluent-plugin-rabbitmq: message headers"),
        Setting("confirm_timeout", "duration", default=30.0, min=0.001,
                doc="how long a chunk may wait for the broker's confirms before it is retried"),
        Setting("codec", "codec", default="json", doc="how an event becomes a message body"),
    ]
    exchange: str
    exchange_type: str
    key: str
    durable: bool
    persistent: bool
    arguments: dict[str, Any]
    codec: Codec
    confirm_timeout: float

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.codec = codec_from_format(self, settings, "json") or self.codec
        AmqpConnection.hosts(self)  # a bad host is a config error now, not at the first write
        self._key = compile_sprintf(self.key)
        self._property_values = self._message_properties()
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._opening = asyncio.Lock()

    def _message_properties(self) -> dict[str, Any]:
        p = self.params
        props: dict[str, Any] = {"delivery_mode": 2 if self.persistent else 1}
        for key, value in p["message_properties"].items():
            name = _PROPERTIES.get(str(key).replace("-", "_"))
            if name is None:
                raise ConfigError(f"unknown message property {key!r}; known: {', '.join(sorted(_PROPERTIES))}",
                                  setting="message_properties")
            props[name] = int(value) if name == "priority" else (dict(value) if name == "headers" else str(value))
        for flat in ("content_type", "content_encoding", "message_type", "app_id", "priority", "expiration"):
            if p[flat] is not None:
                props[flat] = p[flat]
        if p["headers"]:
            props["headers"] = {**props.get("headers", {}), **p["headers"]}
        return props

    def format(self, events: list[Event]) -> list[bytes]:
        key, codec = self._key, self.codec
        return [pack_routed(key(ev), encode_event(ev, codec)) for ev in events]

    def describe(self, item: bytes) -> Any:
        routing_key, body = unpack_routed(item)
        return {"routing_key": routing_key, "message": super().describe(body)}

    async def write(self, items: list[bytes]) -> WriteResult | None:
        if not items:
            return None
        try:
            channel = await self._open()
            async with asyncio.timeout(self.confirm_timeout):
                confirms = await asyncio.gather(*(self._publish(channel, item) for item in items),
                                                return_exceptions=True)
        except TRANSIENT_ERRORS as exc:
            await self._drop_connection()
            raise RetryableError(f"rabbitmq: {exc!r}") from exc
        retry: list[int] = []
        for index, confirm in enumerate(confirms):
            if isinstance(confirm, BaseException):
                if isinstance(confirm, TRANSIENT_ERRORS):
                    await self._drop_connection()
                    raise RetryableError(f"rabbitmq: {confirm!r}") from confirm
                if isinstance(confirm, aiormq.exceptions.DeliveryError):
                    retry.append(index)  # nacked by the broker
                    continue
                raise confirm
            if not isinstance(confirm, Basic.Ack):
                retry.append(index)
        if retry:
            self.log.warning("rabbitmq: broker nacked %d of %d messages; retrying them", len(retry), len(items))
            return WriteResult(retry=retry)
        return None

    async def _publish(self, channel: aiormq.abc.AbstractChannel, item: bytes) -> Any:
        routing_key, body = unpack_routed(item)
        # Properties per message: aiormq writes a message_id into the object it is given, so a
        # shared object would give every message the first one's id.
        properties = Basic.Properties(**self._property_values)
        if properties.message_id is None:
            properties.message_id = os.urandom(16).hex()
        return await channel.basic_publish(body, exchange=self.exchange, routing_key=routing_key,
                                           properties=properties)

    async def _open(self) -> aiormq.abc.AbstractChannel:
        async with self._opening:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            await self._drop_connection()
            connection = await AmqpConnection.connect(self)
            try:
                channel = await connection.channel(publisher_confirms=True)
                if self.exchange:  # "" is the default exchange: it exists and routes by queue name
                    await channel.declare_exchange(self.exchange, self.exchange_type, durable=self.durable,
                                                   passive=self.params["passive"], arguments=self.arguments or None)
                self._channel = await channel.get_underlay_channel()
            except BaseException:
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await connection.close()
                raise
            self._connection = connection
            return self._channel

    async def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(*TRANSIENT_ERRORS, RuntimeError):
                await connection.close()

    async def close(self) -> None:
        await self._drop_connection()


__all__ = ["RabbitMQOutput"]
