"""beats input: pylogbeat (a real Lumberjack v2 client) plus frame-level tests for
windows, compression, partial reads, ACK order and timing, keep-alives and garbage."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pylogbeat
import pytest

from logpipe.metrics import REGISTRY
from logpipe_plugins.inputs.beats import BeatsInput
from logpipe_plugins.inputs.beats.protocol import FrameError, FrameParser
from tests.support.net import Collector, make_certs, running

NS = 1_000_000_000


def beats(**settings: Any) -> BeatsInput:
    return BeatsInput(host="127.0.0.1", port=0, **settings)


def filebeat_doc(i: int) -> dict[str, Any]:
    return {
        "@timestamp": f"2024-05-06T07:08:09.{i:03d}Z",
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.0"},
        "message": f"line {i}",
        "host": {"name": "web-1"},
        "agent": {"type": "filebeat", "version": "8.13.0"},
        "log": {"file": {"path": "/var/log/app.log"}, "offset": i * 10},
        "input": {"type": "filestream"},
    }


def errors(plugin_id: str, reason: str) -> float:
    return REGISTRY.value("logpipe_input_protocol_errors_total", input=plugin_id, reason=reason)


# ---- frames, built by hand ------------------------------------------------------


def window(n: int, version: bytes = b"2") -> bytes:
    return version + b"W" + struct.pack(">I", n)


def jframe(seq: int, doc: Any) -> bytes:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return b"2J" + struct.pack(">II", seq, len(body)) + body


def compressed(frames: bytes) -> bytes:
    body = zlib.compress(frames)
    return b"2C" + struct.pack(">I", len(body)) + body


def dframe(seq: int, pairs: dict[str, str]) -> bytes:
    out = b"1D" + struct.pack(">II", seq, len(pairs))
    for k, v in pairs.items():
        out += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v.encode())) + v.encode()
    return out


async def read_ack(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[bytes, int]:
    async with asyncio.timeout(timeout):
        frame = await reader.readexactly(6)
    assert frame[1:2] == b"A", frame
    return frame[:1], struct.unpack(">I", frame[2:])[0]


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(5):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return True


# ---- the real client -------------------------------------------------------------


async def test_pylogbeat_fields_land_as_logstash_puts_them() -> None:
    col = Collector()
    async with running(beats(), col) as inp:
        def send() -> None:
            with pylogbeat.PyLogBeatClient("127.0.0.1", inp.bound_port, timeout=10) as client:
                client.send([filebeat_doc(i) for i in range(3)])
                client.send([filebeat_doc(3)])  # second window, sequence keeps counting

        await asyncio.to_thread(send)  # returns only after each window's ACK
    events = col.events
    assert len(col.batches) == 2 and len(events) == 4
    ev = events[1]
    assert ev.tag == "beats"
    assert ev.time == 1_714_979_289 * NS + 1_000_000
    assert ev.meta == {"beat": "filebeat", "type": "_doc", "version": "8.13.0", "ip_address": "127.0.0.1"}
    assert ev.record == {
        "message": "line 1", "host": {"name": "web-1"}, "agent": {"type": "filebeat", "version": "8.13.0"},
        "log": {"file": {"path": "/var/log/app.log"}, "offset": 10}, "input": {"type": "filestream"},
    }


async def test_pylogbeat_waits_for_the_pipeline_acknowledgement() -> None:
    col = Collector(auto_ack=False)
    async with running(beats(), col) as inp:
        client = pylogbeat.PyLogBeatClient("127.0.0.1", inp.bound_port, timeout=10)
        sending = asyncio.ensure_future(asyncio.to_thread(client.send, [filebeat_doc(0), filebeat_doc(1)]))
        await col.wait_batches(1)
        done, _ = await asyncio.wait([sending], timeout=0.3)
        assert not done  # no ACK before the pipeline acknowledges
        col.ack(0)
        await asyncio.wait_for(sending, 5)
        await asyncio.to_thread(client.close)


async def test_pylogbeat_over_tls(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    col = Collector()
    async with running(beats(ssl_enabled=True, ssl_certificate=cert, ssl_key=key), col) as inp:
        def send() -> None:
            with pylogbeat.PyLogBeatClient("127.0.0.1", inp.bound_port, timeout=10, ssl_enable=True,
                                           ssl_verify=True, ca_certs=cert) as client:
                client.send([filebeat_doc(7)])

        await asyncio.to_thread(send)
    assert col.events[0].record["message"] == "line 7"


async def test_metadata_as_tag_and_bad_payloads() -> None:
    col = Collector()
    async with running(beats(metadata_as_tag=True), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        doc = filebeat_doc(0)
        doc["@timestamp"] = "yesterday"
        writer.write(window(3) + jframe(1, doc) + jframe(2, b"{not json") + jframe(3, b'"just a string"'))
        assert await read_ack(reader) == (b"2", 3)
        writer.close()
    good, broken, scalar = col.events
    assert good.tag == "filebeat"
    assert good.record["_@timestamp"] == "yesterday" and "_timestampparsefailure" in good.record["tags"]
    assert broken.record == {"message": "{not json", "tags": ["_jsonparsefailure"]}
    assert scalar.record["tags"] == ["_jsonparsefailure"]


# ---- windows, compression, partial reads, ACK order -----------------------------


async def test_compressed_window_sent_in_tiny_pieces() -> None:
    col = Collector()
    payload = window(5) + compressed(b"".join(jframe(i, {"n": i}) for i in range(1, 4))) + jframe(4, {"n": 4})
    payload += compressed(jframe(5, {"n": 5}))
    async with running(beats(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        for i in range(0, len(payload), 7):
            writer.write(payload[i:i + 7])
            await writer.drain()
        assert await read_ack(reader) == (b"2", 5)
        writer.close()
    assert len(col.batches) == 1
    assert [e.record["n"] for e in col.events] == [1, 2, 3, 4, 5]


def test_parser_byte_by_byte() -> None:
    data = window(2) + compressed(jframe(1, {"a": 1})) + jframe(2, {"a": 2})
    parser = FrameParser(1 << 20)
    frames: list[Any] = []
    for i in range(len(data)):
        frames += parser.feed(data[i:i + 1])
    assert [f[:4] for f in frames] == [("W", 0x32, 2), ("E", 0x32, 1, {"a": 1}), ("E", 0x32, 2, {"a": 2})]
    assert parser.buffered == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"9W\x00\x00\x00\x01", "bad_version"),
        (b"2Z\x00\x00\x00\x01", "bad_frame"),
        (b"2C\x00\x00\x00\x05hello", "bad_compression"),
        (b"2C" + struct.pack(">I", len(zlib.compress(b"2J\x00\x00"))) + zlib.compress(b"2J\x00\x00"), "truncated"),
        (b"2J\x00\x00\x00\x01\xff\xff\xff\xff", "oversized"),
    ],
)
def test_parser_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        list(FrameParser(1 << 20).feed(data))
    assert err.value.reason == reason


def test_parser_refuses_zlib_bomb() -> None:
    bomb = compressed(jframe(1, {"x": "y" * 200_000}))
    with pytest.raises(FrameError) as err:
        list(FrameParser(10_000).feed(bomb))
    assert err.value.reason == "oversized"


async def test_acks_leave_in_window_order() -> None:
    col = Collector(auto_ack=False)
    async with running(beats(ack_keepalive_interval=60), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(window(2) + jframe(1, {"w": 1}) + jframe(2, {"w": 1}))
        writer.write(window(1) + compressed(jframe(1, {"w": 2})))
        await col.wait_batches(2)
        col.ack(1)  # the second window completes first: its ACK must wait
        with pytest.raises(TimeoutError):
            await read_ack(reader, timeout=0.2)
        col.ack(0)
        assert await read_ack(reader) == (b"2", 2)
        assert await read_ack(reader) == (b"2", 1)
        writer.close()


async def test_keepalive_ack_while_a_window_is_pending() -> None:
    col = Collector(auto_ack=False)
    async with running(beats(ack_keepalive_interval=0.05), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(window(2) + compressed(jframe(1, {}) + jframe(2, {})))
        await col.wait_batches(1)
        assert await read_ack(reader) == (b"2", 0)  # keep-alive: nothing new acknowledged
        col.ack(0)
        while (ack := await read_ack(reader))[1] == 0:
            pass
        assert ack == (b"2", 2)
        writer.close()


async def test_v1_data_frames() -> None:
    col = Collector()
    async with running(beats(), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(window(1, b"1") + dframe(7, {"line": "old forwarder", "file": "/var/log/x"}))
        assert await read_ack(reader) == (b"1", 7)
        writer.close()
    assert col.events[0].record == {"message": "old forwarder", "file": "/var/log/x"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "bad_version"),
        (jframe(1, {"a": 1}), "bad_window"),
        (window(1) + b"2C\x00\x00\x00\x04abcd", "bad_compression"),
        (window(1) + b"2J\x00\x00\x00\x01\x7f\xff\xff\xff", "oversized"),
        (window(2) + jframe(1, {}) + window(1), "bad_window"),
    ],
)
async def test_garbage_closes_only_that_connection(data: bytes, reason: str) -> None:
    col = Collector()
    inp = beats(id=f"beats-garbage-{data!r}", max_frame_size=1 << 20)
    async with running(inp, col):
        good_reader, good_writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_writer.write(data)
        assert await closed_by_peer(bad_reader)
        good_writer.write(window(1) + jframe(1, {"ok": True}))
        assert await read_ack(good_reader) == (b"2", 1)
        good_writer.close()
        bad_writer.close()
    assert errors(inp.id, reason) == 1
    assert [e.record for e in col.events] == [{"ok": True}]


async def test_idle_connection_is_closed() -> None:
    col = Collector()
    async with running(beats(client_inactivity_timeout=0.1), col) as inp:
        reader, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        assert await closed_by_peer(reader)
        writer.close()
