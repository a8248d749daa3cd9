"""forward output: against logpipe's own forward input and a hand-written protocol peer
(wire format, acks, timeouts), plus failover, weights, standby and heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self

import msgpack
import pytest

from logpipe.event import Event
from logpipe.plugin import RetryableError
from logpipe_plugins.inputs.forward import ForwardInput
from logpipe_plugins.outputs.forward import ForwardOutput
from tests.support.net import Collector, free_port, make_certs, running

NS = 1_000_000_000


def events(n: int, tags: tuple[str, ...] = ("app.a",)) -> list[Event]:
    return [Event(tags[i % len(tags)], 1_700_000_000 * NS + i * 1001, {"i": i, "msg": f"m{i}", "n": {"x": [i]}})
            for i in range(n)]


def forward_in(**settings: Any) -> ForwardInput:
    return ForwardInput(bind="127.0.0.1", port=settings.pop("port", 0), **settings)


@contextlib.asynccontextmanager
async def output(**settings: Any) -> AsyncIterator[ForwardOutput]:
    settings.setdefault("heartbeat_type", "none")
    out = ForwardOutput(**settings)
    await out.lifecycle_start()
    try:
        yield out
    finally:
        await out.lifecycle_close()


# ---- against logpipe's forward input ---------------------------------------------


@pytest.mark.parametrize("compress", ["text", "gzip"])
async def test_roundtrip_through_forward_input_with_acks(compress: str) -> None:
    col = Collector()
    async with running(forward_in(), col) as inp, output(
        port=inp.bound_port, require_ack_response=True, compress=compress
    ) as out:
        sent = events(500, ("app.a", "app.b"))
        assert await out.write(out.format(sent)) is None
        assert await out.write(out.format(events(3))) is None  # the kept-alive connection is reused
    assert len(col.batches) == 3  # one PackedForward per tag, then one more
    by_i = {(e.tag, e.record["i"]): e for e in col.events[:500]}
    for ev in sent:
        assert by_i[(ev.tag, ev.record["i"])] == ev  # tag, ns time and record intact


async def test_handshake_user_and_tls(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    col = Collector()
    inp = forward_in(shared_key="k3y", self_hostname="agg", users={"bob": "pw"}, tls=True, tls_cert_path=cert,
                     tls_private_key_path=key)
    async with running(inp, col):
        async with output(port=inp.bound_port, host="localhost", shared_key="k3y", username="bob", password="pw",
                          tls=True, tls_ca_cert_path=cert, require_ack_response=True) as out:
            assert await out.write(out.format(events(10))) is None
        async with output(port=inp.bound_port, host="localhost", shared_key="k3y", username="bob",
                          password="wrong", tls=True, tls_ca_cert_path=cert) as out:
            with pytest.raises(RetryableError, match="username/password mismatch"):
                await out.write(out.format(events(1)))
        async with output(port=inp.bound_port, host="localhost", shared_key="k3y", username="bob", password="pw",
                          tls=True, tls_ca_cert_path=cert, self_hostname="agg") as out:
            with pytest.raises(RetryableError):
                await out.write(out.format(events(1)))  # the input refuses a peer with its own hostname
    assert len(col.events) == 10


async def test_ack_timeout_raises_retryable_and_retry_delivers() -> None:
    col = Collector(auto_ack=False)
    async with running(forward_in(), col) as inp, output(
        port=inp.bound_port, require_ack_response=True, ack_response_timeout=0.2
    ) as out:
        with pytest.raises(RetryableError, match="no ack"):
            await out.write(out.format(events(5)))
        assert len(col.events) == 5  # the server got them; the retry may duplicate, never lose
        col.auto_ack = True
        assert await out.write(out.format(events(5))) is None
    assert len(col.events) == 10


# ---- a hand-written peer -------------------------------------------------------------


def unpack_all(data: bytes, **kwargs: Any) -> list[Any]:
    unpacker = msgpack.Unpacker(raw=False, **kwargs)
    unpacker.feed(data)
    return list(unpacker)


class Peer:
    """A minimal forward server: records every message, answers acks as told."""

    def __init__(self, reply: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.messages: list[Any] = []
        self.reply = reply
        self.received = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False, ext_hook=lambda code, data: (code, data))
        while data := await reader.read(65536):
            unpacker.feed(data)
            for msg in unpacker:
                self.messages.append(msg)
                self.received.set()
                if self.reply is not None:
                    answer = self.reply(msg[2])
                    if answer == "close":
                        writer.close()
                        return
                    if answer is not None:
                        writer.write(msgpack.packb(answer))
        writer.close()

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_wire_format_packed_forward_with_event_time() -> None:
    async with Peer(lambda opt: {"ack": opt["chunk"]}) as peer, output(
        port=peer.port, require_ack_response=True, compress="gzip"
    ) as out:
        await out.write(out.format(events(20)))
    tag, entries, option = peer.messages[0]
    assert tag == "app.a"
    assert isinstance(entries, bytes)
    assert option["size"] == 20 and option["compressed"] == "gzip" and isinstance(option["chunk"], str)
    unpacked = unpack_all(gzip.decompress(entries), ext_hook=lambda c, d: (c, d))
    code, data = unpacked[1][0]
    assert code == 0 and struct.unpack(">II", data) == (1_700_000_000, 1001)
    assert unpacked[19][1] == {"i": 19, "msg": "m19", "n": {"x": [19]}}


async def test_time_as_integer_and_no_ack() -> None:
    async with Peer() as peer, output(port=peer.port, time_as_integer=True) as out:
        await out.write(out.format(events(2)))
        await asyncio.wait_for(peer.received.wait(), 5)
    assert peer.messages[0][0] == "app.a"
    _, entries, option = peer.messages[0]
    assert option == {"size": 2}
    assert unpack_all(entries)[1] == [1_700_000_000, {"i": 1, "msg": "m1", "n": {"x": [1]}}]


@pytest.mark.parametrize("reply", [lambda opt: {"ack": "someone else's"}, lambda opt: None])
async def test_wrong_or_missing_ack_is_retried(reply: Callable[[dict[str, Any]], Any]) -> None:
    async with Peer(reply) as peer, output(port=peer.port, require_ack_response=True,
                                           ack_response_timeout=0.2) as out:
        with pytest.raises(RetryableError, match="no ack"):
            await out.write(out.format(events(1)))


async def test_peer_closing_before_ack_fails_over() -> None:
    async with Peer(lambda opt: "close") as bad, Peer(lambda opt: {"ack": opt["chunk"]}) as good, output(
        servers=[f"127.0.0.1:{bad.port}:100", {"host": "127.0.0.1", "port": good.port, "standby": True}],
        require_ack_response=True,
    ) as out:
        assert await out.write(out.format(events(3))) is None
        assert len(bad.messages) == 1 and len(good.messages) == 1
        assert not out.servers[0].healthy


# ---- server selection ----------------------------------------------------------------


async def test_failover_from_a_dead_server() -> None:
    col = Collector()
    async with running(forward_in(), col) as inp, output(
        servers=[f"127.0.0.1:{free_port()}:1000", f"127.0.0.1:{inp.bound_port}:1"], require_ack_response=True
    ) as out:
        for _ in range(3):
            assert await out.write(out.format(events(2))) is None
        assert not out.servers[0].healthy and out.servers[1].healthy
    assert len(col.events) == 6


async def test_weights_spread_the_load_and_standby_waits() -> None:
    cols = [Collector(), Collector(), Collector()]
    async with running(forward_in(), cols[0]) as a, running(forward_in(), cols[1]) as b, running(
        forward_in(), cols[2]
    ) as standby:
        servers = [f"127.0.0.1:{a.bound_port}:50", f"127.0.0.1:{b.bound_port}:50",
                   {"host": "127.0.0.1", "port": standby.bound_port, "standby": "true"}]
        async with output(servers=servers, require_ack_response=True) as out:
            for _ in range(40):
                await out.write(out.format(events(1)))
    assert cols[0].events and cols[1].events and not cols[2].events
    assert len(cols[0].events) + len(cols[1].events) == 40


async def test_nothing_reachable_raises_retryable() -> None:
    async with output(servers=[f"127.0.0.1:{free_port()}"], connect_timeout=1) as out:
        with pytest.raises(RetryableError, match="no forward server"):
            await out.write(out.format(events(1)))
        with pytest.raises(RetryableError, match="none available"):
            await out.write(out.format(events(1)))  # marked down until recover_wait passes


async def test_heartbeat_marks_servers_down_and_up() -> None:
    port = free_port()
    async with output(servers=[f"127.0.0.1:{port}"], heartbeat_type="tcp", heartbeat_interval=0.02) as out:
        server = out.servers[0]
        async with asyncio.timeout(5):
            while server.healthy:
                await asyncio.sleep(0.01)
        col = Collector()
        async with running(forward_in(port=port), col):
            async with asyncio.timeout(5):
                while not server.healthy:
                    await asyncio.sleep(0.01)
            assert await out.write(out.format(events(1))) is None
            await col.wait_events(1)


def test_config_errors() -> None:
    from logpipe.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        ForwardOutput(servers=["host:notaport"])
    assert err.value.setting == "servers"
    with pytest.raises(ConfigError):
        ForwardOutput(compress="lz4")
    with pytest.raises(ConfigError):
        ForwardOutput(servers=["a:1:0"])


def test_fluentd_sections() -> None:
    """<server>, <security> and `transport tls` as the Fluentd front-end hands them over."""
    out = ForwardOutput(
        server=[{"host": "10.0.0.1", "port": "24224", "weight": "20"}, {"host": "10.0.0.2", "standby": "true"}],
        security={"self_hostname": "edge-1", "shared_key": "k"}, transport="tls", tls_insecure_mode=True,
    )
    assert [(s.host, s.port, s.weight, s.standby) for s in out.servers] == [
        ("10.0.0.1", 24224, 20, False), ("10.0.0.2", 24224, 60, True)]
    assert (out.shared_key, out.self_hostname) == ("k", "edge-1")
    assert out._ssl is not None


async def test_a_kept_alive_connection_the_server_closed_is_not_reused() -> None:
    """Without acks a chunk written into a connection the server already closed would
    vanish: the output must notice the close and connect again."""
    async with Peer(lambda opt: "close") as peer, output(port=peer.port) as out:
        await out.write(out.format(events(1, ("first",))))
        await asyncio.wait_for(peer.received.wait(), 5)
        async with asyncio.timeout(5):
            while not out.servers[0].idle[0].reader.at_eof():
                await asyncio.sleep(0.01)
        peer.received.clear()
        await out.write(out.format(events(1, ("second",))))
        await asyncio.wait_for(peer.received.wait(), 5)
    assert [m[0] for m in peer.messages] == ["first", "second"]


async def test_handshake_with_a_fluent_bit_style_server() -> None:
    """Fluent Bit's in_forward sends its HELO nonce as a msgpack *str* of random bytes and
    refuses a PING whose salt is not a str (both found against Fluent Bit 5.1.1)."""
    import hashlib

    nonce = bytes(range(240, 256))  # not UTF-8: must survive decoding byte for byte
    got: dict[str, Any] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(msgpack.packb(["HELO", {"nonce": nonce, "auth": b"", "keepalive": True}], use_bin_type=False))
        unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape")
        while data := await reader.read(65536):
            unpacker.feed(data)
            for msg in unpacker:
                if msg[0] == "PING":
                    _, hostname, salt, digest, _, _ = msg
                    got["salt_is_str"] = isinstance(salt, str)
                    salt_b = salt.encode("utf-8", "surrogateescape") if isinstance(salt, str) else salt
                    expected = hashlib.sha512(salt_b + hostname.encode() + nonce + b"k3y").hexdigest()
                    got["digest_ok"] = digest == expected
                    pong_digest = hashlib.sha512(salt_b + b"fbin" + nonce + b"k3y").hexdigest()
                    writer.write(msgpack.packb(["PONG", got["digest_ok"], "", "fbin", pong_digest]))
                else:
                    got["events"] = msg
                    writer.write(msgpack.packb({"ack": msg[2]["chunk"]}))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with output(port=port, shared_key="k3y", self_hostname="lp", require_ack_response=True) as out:
            await out.write(out.format(events(3)))
    finally:
        server.close()
    assert got["salt_is_str"] and got["digest_ok"]
    assert got["events"][0] == "app.a"
