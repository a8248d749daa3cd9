"""`forward` input: a Fluentd Forward Protocol v1 server.

Accepts what Fluentd, Fluent Bit, fluent-logger and Docker send: Message, Forward,
PackedForward and CompressedPackedForward (gzip) modes, EventTime or integer times,
the `chunk` option (answered with `{"ack": chunk}` only once the pipeline has the
events delivered or stored — the at-least-once contract), the HELO/PING/PONG
handshake with a shared key and optional user/password, and TLS (the TlsServer helper's
settings: `<transport tls>` as Fluentd writes it, or the `ssl_*` spellings).

Each message becomes one batch (a PackedForward chunk is one emit of all its
entries). Events keep the sender's tag, prefixed by `add_tag_prefix`; a `tag` setting
replaces it. Fluentd's `<security>` (with `<user>`s) and `<transport tls>` sections are
declared sections, checked like any other setting. A peer that sends malformed
msgpack, wrong types, an oversized message or bad credentials is logged, counted and disconnected; nobody else notices.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import os
import socket
import time as _time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import msgpack

from logpipe.helpers.forward_protocol import (
    MAX_DEPTH,
    NS,
    TooLarge,
    as_bytes,
    clean_records,
    gunzip,
    new_unpacker,
    password_digest,
    shared_key_digest,
    time_to_ns,
    to_bytes,
)
from logpipe.plugin import AckCallback, ConfigError, Event, ProtocolError, Section, SectionValue, ServerInput, Setting

_READ_SIZE = 1 << 18
#: A message is handed to the pipeline in slices of at most this many events.
_SLICE_EVENTS = 2048
#: Compressed chunks larger than this are decompressed in a worker thread.
_INLINE_GUNZIP = 64 * 1024
#: Where the per-event metadata of Fluent Bit's `[[time, metadata], record]` entries lands in meta.
METADATA_KEY = "forward_metadata"
_UNPACK_ERRORS = (msgpack.UnpackException, ValueError, TypeError)


class ForwardInput(ServerInput):
    name = "forward"
    doc = "Fluentd forward protocol server (Fluentd, Fluent Bit, fluent-logger, Docker)"
    default_port = 24224
    settings: ClassVar[list[Setting]] = [
        Setting("add_tag_prefix", "string", doc="prefix added to every received tag (`prefix.tag`)"),
        Setting("chunk_size_limit", "bytes", default=32 * 1024 * 1024, min=1,
                doc="largest message (and decompressed chunk) accepted; bigger closes the connection"),
        Setting("shared_key", "string", secret=True, doc="enables the HELO/PING/PONG handshake with this key"),
        Setting("self_hostname", "string", doc="hostname sent in PONG (default: this host's name)"),
        Setting("user", "string", doc="require this username in the handshake (with `password`)"),
        Setting("password", "string", secret=True, doc="password of `user`"),
        Setting("users", "hash", default={}, secret=True, doc="several accepted users: {name => password}"),
        Setting("source_address_key", "string", doc="record key that receives the peer's IP address"),
        Setting("handshake_timeout", "duration", default=10.0, min=0.001, doc="time allowed for the PING"),
        Setting("idle_timeout", "duration", default=300.0, min=0.001,
                doc="close a connection that sends nothing for this long"),
        Setting("max_buffered_bytes", "bytes", default=256 * 1024 * 1024, min=1,
                doc="bytes all connections may hold in partly received messages; past it, a connection "
                    "over its equal share is closed"),
        Section("security", [
            Setting("self_hostname", "string", doc="hostname sent in PONG"),
            Setting("shared_key", "string", secret=True, doc="the handshake's shared key"),
            Setting("user_auth", "bool", default=False, doc="require a <user> in the handshake"),
            Setting("allow_anonymous_source", "bool", default=True,
                    doc="accepted as Fluentd has it; every source may connect (no <client> rules)"),
            Section("user", [
                Setting("username", "string", required=True, doc="user name"),
                Setting("password", "string", required=True, secret=True, doc="its password"),
            ], multiple=True, doc="an accepted user"),
        ], doc="Fluentd <security>: the handshake", example="<security> shared_key s3cret </security>"),
    ]
    tag: str | None
    add_tag_prefix: str | None
    chunk_size_limit: int
    shared_key: str | None
    self_hostname: str
    user: str | None
    password: str | None
    source_address_key: str | None
    handshake_timeout: float
    idle_timeout: float
    max_buffered_bytes: int
    security: SectionValue

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        security = self.security
        self.shared_key = self.shared_key or security.shared_key
        self.self_hostname = self.self_hostname or security.self_hostname or socket.gethostname()
        self.users: dict[str, str] = {str(k): str(v) for k, v in self.params["users"].items()}
        for user in security.user:
            self.users[user.username] = user.password
        if self.user is not None:
            if self.password is None:
                raise ConfigError("'user' needs a 'password'", setting="password")
            self.users[self.user] = self.password
        if security.user_auth and not self.users:
            raise ConfigError("user_auth needs at least one <user>", setting="security")
        if self.users and not self.shared_key:
            raise ConfigError("user authentication needs 'shared_key' (the handshake carries it)",
                              setting="shared_key")
        self._prefix = f"{self.add_tag_prefix}." if self.add_tag_prefix else ""
        self._budget = _Budget(self.max_buffered_bytes)
        self._rejected = self.metrics.counter("events_rejected", "records refused at decode", reason="too_deep")

    # ---- one connection ----------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        unpacker = new_unpacker(self.chunk_size_limit + _READ_SIZE, keep_raw_strings=True)
        messages = self._messages(reader, unpacker)
        if self.shared_key:
            await asyncio.wait_for(self._handshake(messages, writer), self.handshake_timeout)
        async for message in messages:
            if message is None:  # a heartbeat over TCP
                continue
            await self._message(message, writer, address)

    async def _messages(self, reader: asyncio.StreamReader, unpacker: msgpack.Unpacker) -> AsyncIterator[Any]:
        """The peer's msgpack objects, one at a time, read in large blocks. What the
        connection holds (bytes read, not yet decoded) counts against the input's
        `max_buffered_bytes`; past it, a connection holding more than its fair share is closed."""
        budget = self._budget
        fed = 0
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(_READ_SIZE), self.idle_timeout)
                except TimeoutError:
                    self.log.info("closing forward connection idle for %ss", self.idle_timeout)
                    return
                if not data:
                    return
                try:
                    unpacker.feed(data)
                except msgpack.BufferFull:
                    raise ProtocolError("oversized", f"message larger than chunk_size_limit "
                                                     f"({self.chunk_size_limit} bytes)") from None
                fed += len(data)
                budget.hold(unpacker, fed - unpacker.tell())
                while True:
                    try:
                        msg = unpacker.unpack()
                    except msgpack.OutOfData:
                        break
                    except _UNPACK_ERRORS as exc:
                        raise ProtocolError("malformed", f"malformed msgpack: {exc!r}") from None
                    budget.hold(unpacker, fed - unpacker.tell())
                    yield msg
        finally:
            budget.release(unpacker)

    async def _message(self, msg: Any, writer: asyncio.StreamWriter, address: str) -> None:
        if type(msg) is not list or len(msg) < 2 or type(msg[0]) is not str:
            raise ProtocolError("wrong_type", f"expected [tag, ...], got {_describe(msg)}")
        tag, second = msg[0], msg[1]
        if type(second) is list:
            option = msg[2] if len(msg) > 2 else None
            entries: Iterator[Any] = iter(second)
            clean = True
        elif isinstance(second, (bytes, str)):
            option = msg[2] if len(msg) > 2 else None
            entries = await self._packed_entries(second, option)
            clean = False
        else:
            if len(msg) < 3:
                raise ProtocolError("wrong_type", "Message mode needs [tag, time, record]")
            option = msg[3] if len(msg) > 3 else None
            entries = iter([[second, msg[2]]])
            clean = True
        if option is not None and type(option) is not dict:
            raise ProtocolError("wrong_type", f"option must be a map, got {_describe(option)}")
        del msg, second
        ack = _ChunkAck(_ack_sender(writer, option.get("chunk")) if option else None)
        assert self._ctx is not None
        emit = self._ctx.emit
        while True:
            entry_slice = list(itertools.islice(entries, _SLICE_EVENTS))
            if not entry_slice:
                break
            events = self._events(tag, entry_slice, clean=clean)
            del entry_slice
            if self.source_address_key:
                key = self.source_address_key
                for ev in events:
                    ev.record[key] = address
            await emit(events, ack.slice())
            await asyncio.sleep(0)  # a chunk of millions of entries: let everyone else run
        ack.complete()

    async def _packed_entries(self, entries: bytes | str, option: Any) -> Iterator[Any]:
        """The entries of a PackedForward chunk, decoded lazily: a small gzip that expands
        to ten million entries is never ten million Python objects at once. Large chunks are
        decompressed in a worker thread, off the event loop."""
        data = as_bytes(entries)
        assert data is not None
        compressed = option.get("compressed") if type(option) is dict else None
        if compressed == "gzip":
            try:
                if len(data) > _INLINE_GUNZIP:
                    data = await asyncio.to_thread(gunzip, data, self.chunk_size_limit)
                else:
                    data = gunzip(data, self.chunk_size_limit)
            except TooLarge as exc:
                raise ProtocolError("oversized", str(exc)) from None
            except zlib.error as exc:
                raise ProtocolError("malformed", f"bad gzip entries: {exc}") from None
        elif compressed not in (None, "text"):
            raise ProtocolError("wrong_type", f"unsupported compression {compressed!r}")
        unpacker = new_unpacker(len(data) + 1)
        unpacker.feed(data)
        return _entries(unpacker)

    def _events(self, tag: str, entries: list[Any], clean: bool) -> list[Event]:
        if not tag.isascii():
            tag = clean_records([tag])[0] or ""
        tag = self.tag or self._prefix + tag
        times: list[int] = []
        records: list[Any] = []
        metadata: dict[int, dict[Any, Any]] = {}
        now = 0
        for entry in entries:
            if type(entry) is not list or len(entry) < 2:
                raise ProtocolError("wrong_type", f"entry must be [time, record], got {_describe(entry)}")
            t, record = entry[0], entry[1]
            ns = t[0] * NS + t[1] if type(t) is tuple else time_to_ns(t)  # EventTime first: the common case
            if ns is None and type(t) is list and len(t) == 2 and type(t[1]) is dict:
                # Fluent Bit ≥ 2.1 sends [[time, metadata], record]; the metadata goes to meta.
                if t[1]:
                    metadata[len(records)] = t[1]
                t = t[0]
                ns = time_to_ns(t)
            if not ns:  # nil or 0: Fluentd stamps these with the arrival time
                if ns is None and t is not None:
                    raise ProtocolError("wrong_type", f"event time must be a number, got {_describe(t)}")
                ns = now = now or _time.time_ns()
            if type(record) is not dict:
                raise ProtocolError("wrong_type", f"record must be a map, got {_describe(record)}")
            times.append(ns)
            records.append(record)
        if clean:
            records = clean_records(records)
        events = [Event(tag, t, r) for t, r in zip(times, records, strict=True)]
        for index, extra in metadata.items():
            events[index].meta[METADATA_KEY] = clean_records([extra])[0] or {}
        if clean and None in records:
            events = self._reject_too_deep(events, records)
        return events

    def _reject_too_deep(self, events: list[Event], records: list[Any]) -> list[Event]:
        """Records nested past MAX_DEPTH cost only themselves: counted, logged, dropped."""
        kept = [ev for ev, record in zip(events, records, strict=True) if record is not None]
        rejected = len(events) - len(kept)
        self._rejected.inc(rejected)
        self.log.warning("rejected %d record(s) nested deeper than %d levels", rejected, MAX_DEPTH)
        return kept

    async def _handshake(self, messages: AsyncIterator[Any], writer: asyncio.StreamWriter) -> None:
        """HELO → PING → PONG (spec: "Handshake Messages"). Failure answers a PONG with
        the reason, then closes."""
        nonce = os.urandom(16)
        auth_salt = os.urandom(16) if self.users else b""
        writer.write(msgpack.packb(["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": True}]))
        ping = await anext(messages, None)
        if type(ping) is not list or len(ping) != 6 or ping[0] != "PING":
            raise ProtocolError("handshake", f"expected PING, got {_describe(ping)}")
        _, hostname, salt, digest, username, pw_digest = ping
        if not all(isinstance(v, (str, bytes)) for v in ping[1:]):
            raise ProtocolError("handshake", "PING fields must be strings")
        hostname = hostname if isinstance(hostname, str) else hostname.decode("utf-8", "surrogateescape")
        salt_b = to_bytes(salt)
        reason = ""
        if hostname == self.self_hostname:
            reason = "same hostname between input and output: invalid configuration"
        elif not hmac.compare_digest(
            str(digest), shared_key_digest(salt_b, hostname, nonce, self.shared_key or "")
        ):
            reason = "shared_key mismatch"
        elif self.users:
            user = username if isinstance(username, str) else username.decode("utf-8", "replace")
            password = self.users.get(user)
            if password is None or not hmac.compare_digest(
                str(pw_digest), password_digest(auth_salt, user, password)
            ):
                reason = "username/password mismatch"
        if reason:
            writer.write(msgpack.packb(["PONG", False, reason, self.self_hostname, ""]))
            await writer.drain()
            raise ProtocolError("auth", f"handshake failed for {hostname!r}: {reason}")
        pong_digest = shared_key_digest(salt_b, self.self_hostname, nonce, self.shared_key or "")
        writer.write(msgpack.packb(["PONG", True, "", self.self_hostname, pong_digest]))


def _entries(unpacker: msgpack.Unpacker) -> Iterator[Any]:
    try:
        yield from unpacker
    except _UNPACK_ERRORS as exc:
        raise ProtocolError("malformed", f"bad PackedForward entries: {exc!r}") from None


class _ChunkAck:
    """One message is emitted in slices; its `chunk` ack leaves once every slice is acknowledged."""

    __slots__ = ("_send", "_outstanding", "_complete")

    def __init__(self, send: AckCallback | None) -> None:
        self._send = send
        self._outstanding = 0
        self._complete = False

    def slice(self) -> AckCallback | None:
        if self._send is None:
            return None
        self._outstanding += 1
        return self._acked

    def _acked(self) -> None:
        self._outstanding -= 1
        self._settle()

    def complete(self) -> None:
        self._complete = True
        self._settle()

    def _settle(self) -> None:
        if self._complete and not self._outstanding and self._send is not None:
            send, self._send = self._send, None
            send()


class _Budget:
    """Bytes held by every connection of one input (read, not yet decoded), and the rule
    that keeps one peer from taking them all: while the total is over the limit, a
    connection holding more than an equal share of the limit is closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._held: dict[int, int] = {}

    def hold(self, owner: object, size: int) -> None:
        key = id(owner)
        self.total += size - self._held.get(key, 0)
        self._held[key] = size
        if self.total > self.limit:
            share = self.limit // len(self._held)
            if size > share:
                raise ProtocolError("buffer_limit", f"input holds {self.total} bytes (max_buffered_bytes "
                                                    f"{self.limit}) and this connection {size}, over its "
                                                    f"share of {share}")

    def release(self, owner: object) -> None:
        self.total -= self._held.pop(id(owner), 0)


def _ack_sender(writer: asyncio.StreamWriter, chunk: Any) -> AckCallback | None:
    """The on_ack callback for a message with a `chunk` option: the reply echoes the chunk
    id byte for byte (surrogateescape undoes the tolerant decoding)."""
    if chunk is None:
        return None
    reply = msgpack.packb({"ack": chunk}, unicode_errors="surrogateescape")

    def on_ack() -> None:
        if not writer.is_closing():
            writer.write(reply)

    return on_ack


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
