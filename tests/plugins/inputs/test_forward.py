"""forward input: every mode, acks after the pipeline's acknowledgement, handshake,
TLS, limits and garbage — with the real fluent-logger client and hand-built frames."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import ssl
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from fluent import asyncsender, handler, sender

from logpipe.helpers.forward_protocol import password_digest, shared_key_digest
from logpipe.metrics import REGISTRY
from logpipe_plugins.inputs.forward import ForwardInput
from tests.support.net import Collector, free_port, make_certs, running

NS = 1_000_000_000


def forward(**settings: Any) -> ForwardInput:
    return ForwardInput(bind="127.0.0.1", port=settings.pop("port", 0), **settings)


def errors(plugin_id: str, reason: str) -> float:
    return REGISTRY.value("logpipe_input_protocol_errors_total", input=plugin_id, reason=reason)


def event_time(ns: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", *divmod(ns, NS)))


async def read_object(reader: asyncio.StreamReader, timeout: float = 5.0) -> Any:
    unpacker = msgpack.Unpacker(raw=False)
    async with asyncio.timeout(timeout):
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed")
            unpacker.feed(data)
            for obj in unpacker:
                return obj


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(5):
            while await reader.read(65536):
                pass
        return True
    except ConnectionError:
        return True


# ---- fluent-logger, the real client ------------------------------------------------


async def test_fluent_logger_sync_sender_integer_time() -> None:
    col = Collector()
    async with running(forward(), col) as inp:
        def send() -> None:
            s = sender.FluentSender("app", host="127.0.0.1", port=inp.bound_port)
            for i in range(3):
                assert s.emit_with_time("access", 1_700_000_000 + i, {"n": i, "msg": "héllo", "nested": {"a": [1]}})
            s.close()

        await asyncio.to_thread(send)
        events = await col.wait_events(3)
    assert [e.tag for e in events] == ["app.access"] * 3
    assert [e.time for e in events] == [(1_700_000_000 + i) * NS for i in range(3)]
    assert events[2].record == {"n": 2, "msg": "héllo", "nested": {"a": [1]}}
    assert len(col.batches) == 3  # one emit per Message-mode message


async def test_fluent_logger_nanosecond_precision() -> None:
    col = Collector()
    async with running(forward(), col) as inp:
        def send() -> None:
            s = sender.FluentSender("app", host="127.0.0.1", port=inp.bound_port, nanosecond_precision=True)
            s.emit_with_time("ns", sender.EventTime.from_unix_nano(1_700_000_000_123_456_789), {"k": "v"})
            s.emit("now", {"k": "w"})
            s.close()

        await asyncio.to_thread(send)
        events = await col.wait_events(2)
    assert events[0].time == 1_700_000_000_123_456_789
    assert events[1].time % NS != 0 or events[1].time > 1_700_000_000 * NS


async def test_fluent_logger_async_sender_keeps_order() -> None:
    col = Collector()
    async with running(forward(), col) as inp:
        def send() -> None:
            s = asyncsender.FluentSender("bulk", host="127.0.0.1", port=inp.bound_port)
            for i in range(200):
                s.emit("x", {"i": i})
            s.close()

        await asyncio.to_thread(send)
        events = await col.wait_events(200)
    assert [e.record["i"] for e in events] == list(range(200))


async def test_fluent_logger_old_raw_strings_and_bad_utf8() -> None:
    """msgpack without bin types (old peers): strings arrive as raw; bad bytes are replaced."""
    col = Collector()
    async with running(forward(), col) as inp:
        def send() -> None:
            s = sender.FluentSender("old", host="127.0.0.1", port=inp.bound_port,
                                    msgpack_kwargs={"use_bin_type": False})
            s.emit_with_time(None, 1, {"text": "ok", "raw": b"bad \xff byte"})
            s.close()

        await asyncio.to_thread(send)
        events = await col.wait_events(1)
    assert events[0].tag == "old"
    assert events[0].record == {"text": "ok", "raw": "bad \ufffd byte"}


async def test_fluent_logger_buffers_while_server_is_down() -> None:
    """fluent-logger's buffer mode: events emitted while nothing listens arrive once it does."""
    port = free_port()
    s = sender.FluentSender("buf", host="127.0.0.1", port=port, timeout=1.0)
    assert not await asyncio.to_thread(s.emit_with_time, "a", 10, {"n": 1})
    assert s.pendings  # held in its buffer
    col = Collector()
    async with running(forward(port=port), col):
        assert await asyncio.to_thread(s.emit_with_time, "a", 11, {"n": 2})
        await asyncio.to_thread(s.close)
        events = await col.wait_events(2)
    assert [e.record["n"] for e in events] == [1, 2]


async def test_fluent_logger_logging_handler() -> None:
    col = Collector()
    async with running(forward(), col) as inp:
        def send() -> None:
            h = handler.FluentHandler("py", host="127.0.0.1", port=inp.bound_port)
            h.setFormatter(handler.FluentRecordFormatter({"level": "%(levelname)s", "where": "%(module)s"}))
            logger = logging.getLogger("test_in_forward.handler")
            logger.propagate = False
            logger.addHandler(h)
            logger.warning({"message": "disk full", "free": 0})
            logger.removeHandler(h)
            h.close()

        await asyncio.to_thread(send)
        events = await col.wait_events(1)
    assert events[0].tag == "py"
    assert events[0].record["message"] == "disk full"
    assert events[0].record["level"] == "WARNING"


# ---- hand-built frames: Forward, PackedForward, CompressedPackedForward, acks --------


def packed_entries(times: list[int], records: list[dict[str, Any]]) -> bytes:
    return b"".join(msgpack.packb([event_time(t), r]) for t, r in zip(times, records, strict=True))


async def test_forward_mode_with_chunk_ack() -> None:
    col = Collector()
    async with running(forward(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        entries = [[1_700_000_000, {"a": 1}], [event_time(1_700_000_001_000_000_001), {"a": 2}]]
        writer.write(msgpack.packb(["fwd", entries, {"chunk": "Y2h1bmsx", "size": 2}]))
        assert await read_object(reader) == {"ack": "Y2h1bmsx"}
        writer.close()
    assert [e.time for e in col.events] == [1_700_000_000 * NS, 1_700_000_001_000_000_001]
    assert len(col.batches) == 1


async def test_packed_forward_is_one_batch_and_ack_waits_for_the_pipeline() -> None:
    col = Collector(auto_ack=False)
    times = [1_700_000_000_000_000_000 + i for i in range(1000)]
    records = [{"i": i, "msg": f"line {i}"} for i in range(1000)]
    async with running(forward(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["pf", packed_entries(times, records), {"chunk": "c1", "size": 1000}]))
        await col.wait_batches(1)
        assert len(col.batches[0]) == 1000
        # The pipeline has not acknowledged yet: no reply may arrive.
        with pytest.raises(TimeoutError):
            await read_object(reader, timeout=0.2)
        col.ack(0)
        assert await read_object(reader) == {"ack": "c1"}
        writer.close()
    assert [e.time for e in col.events] == times
    assert [e.record for e in col.events] == records


async def test_fluent_bit_entries_with_metadata() -> None:
    """Fluent Bit ≥ 2.1 sends each entry as [[EventTime, metadata], record] (found against
    Fluent Bit 5.1.1, whose forward output was refused before): the time is read from the
    pair and non-empty metadata is kept in meta."""
    col = Collector()
    entries = b"".join(msgpack.packb(e) for e in [
        [[event_time(5 * NS + 7), {}], {"n": 1}],
        [[event_time(6 * NS), {"otlp": {"trace_id": "ab"}}], {"n": 2}],
    ])
    async with running(forward(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["fb", entries, {"chunk": "fb1", "size": 2}]))
        assert await read_object(reader) == {"ack": "fb1"}
        writer.close()
    assert [(e.time, e.record) for e in col.events] == [(5 * NS + 7, {"n": 1}), (6 * NS, {"n": 2})]
    assert "forward_metadata" not in col.events[0].meta
    assert col.events[1].meta["forward_metadata"] == {"otlp": {"trace_id": "ab"}}


async def test_compressed_packed_forward_multiple_gzip_members() -> None:
    col = Collector()
    part1 = packed_entries([NS, 2 * NS], [{"n": 1}, {"n": 2}])
    part2 = packed_entries([3 * NS], [{"n": 3}])
    async with running(forward(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        body = gzip.compress(part1) + gzip.compress(part2)
        writer.write(msgpack.packb(["gz", body, {"chunk": "z", "compressed": "gzip", "size": 3}]))
        assert await read_object(reader) == {"ack": "z"}
        writer.close()
    assert [e.record["n"] for e in col.events] == [1, 2, 3]
    assert [e.time for e in col.events] == [NS, 2 * NS, 3 * NS]


async def test_packed_entries_as_str32_like_fluentd() -> None:
    """Fluentd's out_forward frames the entries as a msgpack str32 holding binary data."""
    col = Collector()
    body = packed_entries([1_700_000_000_999_999_999], [{"k": "\u00e9t\u00e9", "b": "x"}])
    frame = b"\x93" + msgpack.packb("fd") + b"\xdb" + struct.pack(">I", len(body)) + body
    frame += msgpack.packb({"chunk": "s", "size": 1})
    async with running(forward(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(frame)
        assert await read_object(reader) == {"ack": "s"}
        writer.close()
    assert col.events[0].time == 1_700_000_000_999_999_999
    assert col.events[0].record == {"k": "\u00e9t\u00e9", "b": "x"}


async def test_tag_prefix_override_and_source_address() -> None:
    col = Collector()
    async with running(forward(add_tag_prefix="edge", source_address_key="src"), col) as inp:
        _, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["app.web", 5, {"x": 1}]))
        events = await col.wait_events(1)
        writer.close()
    assert events[0].tag == "edge.app.web"
    assert events[0].record == {"x": 1, "src": "127.0.0.1"}
    assert events[0].time == 5 * NS

    col2 = Collector()
    async with running(forward(tag="fixed"), col2) as inp:
        _, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["ignored", 5, {"x": 1}]))
        assert (await col2.wait_events(1))[0].tag == "fixed"
        writer.close()


# ---- handshake -----------------------------------------------------------------


async def handshake(port: int, key: str, user: str = "", password: str = "",
                    ssl_ctx: ssl.SSLContext | None = None) -> tuple[list[Any], Any, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_ctx)
    helo = await read_object(reader)
    assert helo[0] == "HELO"
    opts = helo[1]
    salt = os.urandom(16)
    pw = password_digest(opts["auth"], user, password) if user else ""
    writer.write(msgpack.packb(["PING", "client-host", salt, shared_key_digest(salt, "client-host", opts["nonce"], key),
                                user, pw]))
    pong = await read_object(reader)
    if pong[1]:
        assert pong[4] == shared_key_digest(salt, pong[3], opts["nonce"], key)
    return pong, reader, writer


async def test_handshake_shared_key_and_user() -> None:
    col = Collector()
    inp = forward(shared_key="s3cret", self_hostname="aggregator", users={"alice": "pw1"}, id="hs-ok")
    async with running(inp, col):
        pong, reader, writer = await handshake(inp.bound_port, "s3cret", "alice", "pw1")
        assert pong[:4] == ["PONG", True, "", "aggregator"]
        writer.write(msgpack.packb(["secure", 1, {"ok": True}, {"chunk": "h1"}]))
        assert await read_object(reader) == {"ack": "h1"}
        writer.close()
    assert col.events[0].record == {"ok": True}


@pytest.mark.parametrize(
    ("key", "user", "password", "reason"),
    [("wrong", "alice", "pw1", "shared_key mismatch"), ("s3cret", "alice", "nope", "username/password mismatch"),
     ("s3cret", "mallory", "pw1", "username/password mismatch")],
)
async def test_handshake_failures_close_the_connection(key: str, user: str, password: str, reason: str) -> None:
    col = Collector()
    inp = forward(shared_key="s3cret", user="alice", password="pw1", id=f"hs-{key}-{user}-{password}")
    async with running(inp, col):
        pong, reader, writer = await handshake(inp.bound_port, key, user, password)
        assert pong[1] is False and pong[2] == reason
        writer.write(msgpack.packb(["x", 1, {}]))
        assert await closed_by_peer(reader)
        writer.close()
    assert col.events == []
    assert errors(inp.id, "auth") == 1


async def test_data_before_ping_is_refused() -> None:
    col = Collector()
    inp = forward(shared_key="k", id="hs-skip")
    async with running(inp, col):
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        assert (await read_object(reader))[0] == "HELO"
        writer.write(msgpack.packb(["sneaky", 1, {"x": 1}]))
        assert await closed_by_peer(reader)
        writer.close()
    assert col.events == [] and errors(inp.id, "handshake") == 1


# ---- TLS ---------------------------------------------------------------------


async def test_tls_with_handshake(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    col = Collector()
    inp = forward(tls=True, tls_cert_path=cert, tls_private_key_path=key, shared_key="k")
    async with running(inp, col):
        client = ssl.create_default_context(cafile=cert)
        pong, reader, writer = await handshake(inp.bound_port, "k", ssl_ctx=client)
        assert pong[1] is True
        writer.write(msgpack.packb(["tls", 1, {"s": 1}, {"chunk": "t"}]))
        assert await read_object(reader) == {"ack": "t"}
        writer.close()
    assert col.events[0].tag == "tls"


async def test_tls_client_certificate_required(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    client_cert, client_key = make_certs(tmp_path, "client")
    col = Collector()
    inp = forward(tls=True, tls_cert_path=cert, tls_private_key_path=key, tls_ca_path=client_cert,
                  tls_client_cert_auth=True)
    async with running(inp, col):
        anonymous = ssl.create_default_context(cafile=cert)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port, ssl=anonymous)
            writer.write(msgpack.packb(["x", 1, {}]))
            await writer.drain()
            await read_object(reader)
        identified = ssl.create_default_context(cafile=cert)
        identified.load_cert_chain(client_cert, client_key)
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port, ssl=identified)
        writer.write(msgpack.packb(["mtls", 1, {"s": 1}, {"chunk": "m"}]))
        assert await read_object(reader) == {"ack": "m"}
        writer.close()
    assert [e.tag for e in col.events] == ["mtls"]


# ---- garbage and limits ------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1\xc1\xc1\xc1 garbage", "malformed"),
        (msgpack.packb([1, 2, 3]), "wrong_type"),
        (msgpack.packb(["t", [[1, "not a map"]]]), "wrong_type"),
        (msgpack.packb(["t", [["yesterday", {}]]]), "wrong_type"),
        (msgpack.packb(["t", b"\x92\xc1", {}]), "malformed"),
        (msgpack.packb(["t", b"not gzip", {"compressed": "gzip"}]), "malformed"),
        (msgpack.packb(["t", 1, {}, "option is not a map"]), "wrong_type"),
    ],
)
async def test_garbage_closes_only_that_connection(payload: bytes, reason: str) -> None:
    col = Collector()
    inp = forward(id=f"garbage-{payload!r}")
    async with running(inp, col):
        good_reader, good_writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_writer.write(payload)
        assert await closed_by_peer(bad_reader)
        good_writer.write(msgpack.packb(["still", 1, {"alive": True}, {"chunk": "ok"}]))
        assert await read_object(good_reader) == {"ack": "ok"}
        good_writer.close()
        bad_writer.close()
    assert errors(inp.id, reason) == 1
    assert [e.tag for e in col.events] == ["still"]


async def test_oversized_message_and_gzip_bomb() -> None:
    col = Collector()
    inp = forward(chunk_size_limit=4096, id="oversized")
    async with running(inp, col):
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(msgpack.packb(["big", 1, {"x": "y" * 600_000}]))
        assert await closed_by_peer(reader)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bomb = gzip.compress(msgpack.packb([1, {"x": "z" * 100_000}]))
        assert len(bomb) < 4096
        writer.write(msgpack.packb(["bomb", bomb, {"compressed": "gzip"}]))
        assert await closed_by_peer(reader)
        writer.close()
    assert errors(inp.id, "oversized") == 2
    assert col.events == []


async def test_max_connections() -> None:
    col = Collector()
    inp = forward(max_connections=1, id="maxconn")
    async with running(inp, col):
        r1, w1 = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        w1.write(msgpack.packb(["first", 1, {}, {"chunk": "1"}]))
        assert await read_object(r1) == {"ack": "1"}
        r2, w2 = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        assert await closed_by_peer(r2)
        w1.write(msgpack.packb(["first", 2, {}, {"chunk": "2"}]))
        assert await read_object(r1) == {"ack": "2"}
        w1.close()
        w2.close()
    assert errors(inp.id, "max_connections") == 1


def test_config_errors() -> None:
    from logpipe.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        ForwardInput(users={"a": "b"})
    assert err.value.setting == "shared_key"
    with pytest.raises(ConfigError) as err:
        ForwardInput(tls=True)
    assert err.value.setting == "ssl_certificate"
    with pytest.raises(ConfigError):
        ForwardInput(prot=1)


async def test_fluentd_security_and_transport_sections(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    inp = forward(
        security={"self_hostname": "agg", "shared_key": "k",
                  "user": [{"username": "a", "password": "1"}, {"username": "b", "password": "2"}]},
        transport={"@args": "tls", "cert_path": cert, "private_key_path": key},
    )
    assert (inp.shared_key, inp.self_hostname, inp.users) == ("k", "agg", {"a": "1", "b": "2"})
    col = Collector()
    async with running(inp, col):
        pong, reader, writer = await handshake(inp.bound_port, "k", "b", "2", ssl.create_default_context(cafile=cert))
        assert pong[1] is True
        writer.close()


def test_tls_errors_name_the_setting_to_fix(tmp_path: Path) -> None:
    from logpipe.errors import ConfigError
    from logpipe_plugins.inputs.beats import BeatsInput

    cert, key = make_certs(tmp_path)
    with pytest.raises(ConfigError) as err:
        ForwardInput(tls=True, tls_cert_path=cert, tls_private_key_path=key, tls_client_cert_auth=True)
    assert err.value.setting == "ssl_certificate_authorities"
    with pytest.raises(ConfigError) as err:
        BeatsInput(ssl_enabled=True, ssl_certificate=cert, ssl_key=key, ssl_client_authentication="required",
                   ssl_certificate_authorities=[str(tmp_path / "missing.pem")])
    assert err.value.setting == "ssl_certificate_authorities"
