"""`rabbitmq` input: Logstash's bundled rabbitmq input (and fluent-plugin-rabbitmq's).

Consumes `queue` (declared with `durable`, `exclusive`, `auto_delete`, `arguments`; bound to
`exchange` with the routing `key` when an exchange is named — declared too when
`exchange_type` is given) in manual-acknowledgement mode with `prefetch_count` unacked
messages at most: that is what the input can hold, the broker stops delivering past it.

- `ack => true` (the default): a message is acknowledged to the broker only when the
  logpipe ack contract completes for the batch that carried it (every output delivered or
  durably stored its events). Batches complete out of order; the input acks, with one
  `basic.ack multiple`, the longest run of completed deliveries from the oldest. If the
  process dies, the connection drops or the broker restarts before that, the broker
  requeues the messages and delivers them again (`redelivered`): the at-least-once
  duplicate, never a loss.
- `ack => false`: a message is acknowledged as soon as it is taken into a batch — Logstash's
  at-most-once choice (faster, a crash loses what is in flight), still bounded by the prefetch.

Bodies go through the codec (`json` by default, Logstash's); a body the codec cannot read
becomes a `message` event tagged by the codec (`_jsonparsefailure`) or, if the codec
raises, tagged `_rabbitmqdecodefailure`: it is delivered like any event (route it with a
conditional to a dead-letter output) and then acknowledged, so it is neither lost nor
redelivered in a loop. `metadata_enabled` copies the AMQP properties to
`[@metadata][rabbitmq_properties]` and the headers to `[@metadata][rabbitmq_headers]`.
After a connection loss the input reconnects every `subscription_retry_interval_seconds`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any, ClassVar

import aio_pika
import aiormq
from aiormq.abc import DeliveredMessage

from logpipe.event import Event
from logpipe.helpers.amqp_client import TRANSIENT_ERRORS, AmqpConnection
from logpipe.helpers.broker_message import decode_payload
from logpipe.plugin import AckCallback, Codec, Input, InputContext, Setting

DECODE_FAILURE_TAG = "_rabbitmqdecodefailure"
_FINAL_ACK_GRACE = 2.0


class RabbitMQInput(Input):
    name = "rabbitmq"
    doc = "RabbitMQ queue consumer: manual acks sent when the ack contract completes, bounded by prefetch"
    helpers = [AmqpConnection]
    settings: ClassVar[list[Setting]] = [
        Setting("queue", "string", default="", doc="queue to consume (empty: a server-named exclusive queue)"),
        Setting("durable", "bool", default=False, doc="declare the queue durable (survives a broker restart)"),
        Setting("exclusive", "bool", default=False, doc="declare the queue exclusive to this connection"),
        Setting("auto_delete", "bool", default=False, doc="declare the queue auto-deleted after its last consumer"),
        Setting("arguments", "hash", default={}, doc="queue arguments (x-queue-type, x-dead-letter-exchange …)"),
        Setting("exchange", "string", spellings=("bind_exchange",), doc="exchange to bind the queue to"),
        Setting("exchange_type", "string", choices=("direct", "fanout", "topic", "headers", "x-consistent-hash",
                                                    "x-modulus-hash"),
                doc="declare the exchange with this type before binding (unset: it must exist)"),
        Setting("key", "string", default="logstash", spellings=("routing_key",), doc="binding routing key"),
        Setting("prefetch_count", "int", default=256, min=1, max=65535,
                doc="unacknowledged messages the broker lets this input hold"),
        Setting("ack", "bool", default=True, spellings=("manual_ack",),
                doc="acknowledge when the events are delivered (false: when received, at-most-once)"),
        Setting("batch_size", "int", default=125, min=1, max=65535, doc="messages per emitted batch at most"),
        Setting("batch_delay", "duration", default=0.005, min=0,
                doc="how long a batch may wait for more messages that are arriving"),
        Setting("metadata_enabled", "string", default="none", choices=("none", "basic", "extended", "true", "false"),
                doc="copy AMQP properties and headers into [@metadata]"),
        Setting("subscription_retry_interval_seconds", "duration", default=5.0, min=0.001,
                doc="wait before subscribing again after a failure"),
        Setting("threads", "int", default=1, min=1, max=1, doc="accepted for Logstash compatibility (one consumer)"),
        Setting("codec", "codec", default="json", doc="how a message body becomes events"),
    ]
    queue: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict[str, Any]
    exchange: str | None
    exchange_type: str | None
    key: str
    prefetch_count: int
    ack: bool
    batch_size: int
    batch_delay: float
    metadata_enabled: str
    subscription_retry_interval_seconds: float
    codec: Codec

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        AmqpConnection.hosts(self)
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._acks: Acknowledger | None = None
        self._decode_failures = self.metrics.counter("rabbitmq_decode_failures",
                                                     "message bodies the codec could not decode")
        self._with_metadata = metadata_enabled(self.metadata_enabled)

    async def run(self, ctx: InputContext) -> None:
        while True:
            try:
                await self._consume(ctx)
            except TRANSIENT_ERRORS as exc:
                if not self.params["automatic_recovery"]:
                    raise
                self.log.warning("rabbitmq %s: %r; subscribing again in %ss", self.queue or "(server-named)", exc,
                                 self.subscription_retry_interval_seconds)
            await self._disconnect()
            await asyncio.sleep(self.subscription_retry_interval_seconds)

    async def _consume(self, ctx: InputContext) -> None:
        self._connection = connection = await AmqpConnection.connect(self)
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.prefetch_count)
        queue = await channel.declare_queue(self.queue or None, durable=self.durable, exclusive=self.exclusive,
                                            auto_delete=self.auto_delete, passive=self.params["passive"],
                                            arguments=self.arguments or None)
        if self.exchange:
            if self.exchange_type:
                await channel.declare_exchange(self.exchange, self.exchange_type, durable=self.durable,
                                               passive=self.params["passive"])
            await queue.bind(self.exchange, routing_key=self.key)
        raw = await channel.get_underlay_channel()
        arrived: asyncio.Queue[DeliveredMessage] = asyncio.Queue()

        async def deliver(message: DeliveredMessage) -> None:
            arrived.put_nowait(message)  # at most prefetch_count: the broker stops there

        closed = raw.closing  # the channel closes with its connection (broker restart, network loss)
        self._acks = acks = Acknowledger(raw, self.log)
        await raw.basic_consume(queue.name, deliver, no_ack=False)
        self.log.info("rabbitmq: consuming %s", queue.name)
        try:
            while True:
                first = asyncio.ensure_future(arrived.get())
                done, _ = await asyncio.wait({first, closed}, return_when=asyncio.FIRST_COMPLETED)
                if first not in done:
                    first.cancel()
                    reason = None if closed.cancelled() else closed.exception()
                    raise ConnectionError(f"channel closed: {reason!r}")
                messages = [first.result()]
                await self._fill(messages, arrived)
                await self._emit(ctx, messages, acks)
        finally:
            closed.cancel()

    async def _fill(self, messages: list[DeliveredMessage], arrived: asyncio.Queue[DeliveredMessage]) -> None:
        """Take what has arrived, up to batch_size; while more keeps coming, let the client parse
        the frames already received (a few loop turns, at most `batch_delay`), so a busy queue
        makes batches of hundreds, not of the handful one socket read holds."""
        deadline = asyncio.get_running_loop().time() + self.batch_delay
        while len(messages) < self.batch_size:
            while len(messages) < self.batch_size and not arrived.empty():
                messages.append(arrived.get_nowait())
            if len(messages) >= self.batch_size or asyncio.get_running_loop().time() >= deadline:
                return
            before = len(messages)
            await asyncio.sleep(0)
            if arrived.empty() and len(messages) == before:
                await asyncio.sleep(0)  # the reader may need a turn for the socket, one for the frames
                if arrived.empty():
                    return  # nothing more is on its way: emit what there is

    async def _emit(self, ctx: InputContext, messages: list[DeliveredMessage], acks: Acknowledger) -> None:
        events = [ev for message in messages for ev in self._events(message)]
        last_tag = messages[-1].delivery_tag or 0
        if self.ack:
            await ctx.emit(events, acks.batch(last_tag))
        else:
            acks.batch(last_tag)()
            await ctx.emit(events, None)

    def _events(self, message: DeliveredMessage) -> list[Event]:
        try:
            events = decode_payload(message.body, self.codec, self.event_tag)
        except Exception as exc:  # a codec's own failure costs only this message
            self._decode_failures.inc()
            self.log.warning("rabbitmq: cannot decode a message (%r); passed on tagged %s", exc, DECODE_FAILURE_TAG)
            events = [Event(self.event_tag, None, {"message": message.body.decode("utf-8", "replace"),
                                                   "tags": [DECODE_FAILURE_TAG]})]
        if self._with_metadata:
            properties, headers = message_metadata(message)
            for ev in events:
                ev.meta["rabbitmq_properties"] = properties
                if headers:
                    ev.meta["rabbitmq_headers"] = headers
        return events

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        acks, self._acks = self._acks, None
        if acks is not None:
            await acks.close()
        if connection is not None:
            with contextlib.suppress(*TRANSIENT_ERRORS, RuntimeError):
                await connection.close()

    async def close(self) -> None:
        """Inputs close after the outputs' last deliveries: the acks those completed are sent
        before the connection goes (the rest is redelivered to the next consumer)."""
        await self._disconnect()


class Acknowledger:
    """The acks of one channel. Batches are registered in delivery order; when the oldest
    ones have completed, one `basic.ack(multiple=True)` covers them all."""

    def __init__(self, channel: aiormq.abc.AbstractChannel, log: Any) -> None:
        self._channel = channel
        self._log = log
        self._pending: collections.deque[list[Any]] = collections.deque()  # [last_tag, completed]
        self._acked = 0
        self._upto = 0
        self._wake = asyncio.Event()
        self._sender = asyncio.ensure_future(self._send_loop())

    def batch(self, last_tag: int) -> AckCallback:
        entry = [last_tag, False]
        self._pending.append(entry)

        def completed() -> None:
            entry[1] = True
            pending = self._pending
            while pending and pending[0][1]:
                self._upto = pending.popleft()[0]
            if self._upto > self._acked:
                self._wake.set()
        return completed

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send()

    async def _send(self) -> None:
        upto = self._upto
        if upto <= self._acked:
            return
        try:
            await self._channel.basic_ack(upto, multiple=True)
            self._acked = upto
        except TRANSIENT_ERRORS as exc:  # the channel is gone: the broker requeues; redelivered later
            self._log.warning("rabbitmq: ack of deliveries up to %d not sent (%r): they will be redelivered",
                              upto, exc)
            self._acked = upto

    async def close(self) -> None:
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FINAL_ACK_GRACE):
                await self._send()


def metadata_enabled(value: str) -> bool:
    return value not in ("none", "false")


def message_metadata(message: DeliveredMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """Logstash's [@metadata][rabbitmq_properties] (dashed AMQP names) and the headers."""
    props = message.header.properties
    out: dict[str, Any] = {
        "exchange": message.exchange, "routing-key": message.routing_key, "redeliver": message.redelivered,
        "consumer-tag": getattr(message.delivery, "consumer_tag", None),
    }
    for attr in ("app_id", "cluster_id", "content_encoding", "content_type", "correlation_id", "delivery_mode",
                 "expiration", "message_id", "priority", "reply_to", "message_type", "user_id"):
        value = getattr(props, attr, None)
        if value is not None:
            out["type" if attr == "message_type" else attr.replace("_", "-")] = value
    if props.timestamp is not None:
        out["timestamp"] = int(props.timestamp.timestamp())
    headers = {str(k): _plain(v) for k, v in (props.headers or {}).items()}
    return out, headers


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return value


__all__ = ["RabbitMQInput"]
