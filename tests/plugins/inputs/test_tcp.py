"""tcp input: real sockets, both front-ends, codecs, TLS, client mode, bounds."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest

from logpipe.errors import ConfigError
from logpipe.metrics import REGISTRY
from logpipe_plugins.inputs.tcp import TcpInput
from tests.support.net import Collector, make_certs, running


async def _send(port: int, data: bytes, ssl_ctx: ssl.SSLContext | None = None) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_ctx,
                                              server_hostname="localhost" if ssl_ctx else None)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_logstash_line_codec_peer_fields() -> None:
    inp = TcpInput(port=0, host="127.0.0.1")
    out = Collector()
    async with running(inp, out):
        await _send(inp.bound_port, b"hello\r\nworld\nlast without newline")
        events = await out.wait_events(3)
    assert [e.record["message"] for e in events] == ["hello", "world", "last without newline"]
    assert events[0].record["host"] == "127.0.0.1" and isinstance(events[0].record["port"], int)
    assert events[0].tag == "tcp"


async def test_json_lines_codec_and_ecs_metadata() -> None:
    inp = TcpInput(port=0, host="127.0.0.1", codec="json_lines", ecs_compatibility="v8")
    out = Collector()
    async with running(inp, out):
        await _send(inp.bound_port, b'{"a": 1}\nnot json\n')
        events = await out.wait_events(2)
    assert events[0].record == {"a": 1}
    assert events[1].record["tags"] == ["_jsonparsefailure"]
    source = events[0].meta["input"]["tcp"]["source"]
    assert source["ip"] == "127.0.0.1" and source["port"] > 0


async def test_fluentd_parse_delimiter_and_keys() -> None:
    inp = TcpInput(port=0, bind="127.0.0.1", tag="app.tcp", parse={"@type": "json"}, delimiter="|",
                   source_address_key="client")
    assert inp.fluentd
    out = Collector()
    async with running(inp, out):
        await _send(inp.bound_port, b'{"x": 1}|{"x": 2}|')
        events = await out.wait_events(2)
    assert [e.record for e in events] == [{"x": 1, "client": "127.0.0.1"}, {"x": 2, "client": "127.0.0.1"}]
    assert events[0].tag == "app.tcp"


async def test_tls(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    inp = TcpInput(port=0, host="127.0.0.1", ssl_enabled=True, ssl_certificate=cert, ssl_key=key)
    out = Collector()
    async with running(inp, out):
        await _send(inp.bound_port, b"secret line\n", ssl.create_default_context(cafile=cert))
        (ev,) = await out.wait_events(1)
    assert ev.record["message"] == "secret line"


async def test_client_mode_reads_from_a_server() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"from the server\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inp = TcpInput(port=port, host="127.0.0.1", mode="client")
    out = Collector()
    try:
        async with running(inp, out):
            events = await out.wait_events(2)  # it reconnects after the server closed
    finally:
        server.close()
    assert events[0].record["message"] == "from the server"


async def test_oversized_line_dropped_and_counted() -> None:
    inp = TcpInput(port=0, host="127.0.0.1", id="tcp-long", message_length_limit=64)
    out = Collector()
    async with running(inp, out):
        await _send(inp.bound_port, b"z" * 1000 + b"\nshort\n")
        (ev,) = await out.wait_events(1)
    assert ev.record["message"] == "short"
    assert REGISTRY.value("logpipe_input_oversized_total", input="tcp-long") == 1


async def test_budget_across_connections_pauses_then_closes_holders() -> None:
    """Two peers each hold an unfinished line over the input's budget: they stop being read,
    a third peer's complete lines still flow, and the holders are closed after frame_timeout,
    which returns their bytes."""
    inp = TcpInput(port=0, host="127.0.0.1", id="tcp-budget", max_bytes_held=1024, message_length_limit=100_000,
                   frame_timeout=1.0)
    out = Collector()
    async with running(inp, out):
        holders = []
        for _ in range(2):
            r, w = await asyncio.open_connection("127.0.0.1", inp.bound_port)
            w.write(b"a" * 2000)
            await w.drain()
            holders.append((r, w))
        async with asyncio.timeout(5):
            while inp._budget.held <= inp._budget.limit:
                await asyncio.sleep(0.01)
        await _send(inp.bound_port, b"complete line\n")
        (ev,) = await out.wait_events(1)
        assert ev.record["message"] == "complete line"
        for r, _ in holders:
            assert await asyncio.wait_for(r.read(), 5) == b""
        for _, w in holders:
            w.close()
    assert inp._budget.held == 0
    assert REGISTRY.value("logpipe_input_protocol_errors_total", reason="budget", input="tcp-budget") >= 1


def test_port_required_for_logstash() -> None:
    with pytest.raises(ConfigError) as err:
        TcpInput()
    assert err.value.setting == "port"
    assert TcpInput(tag="x").port == 5170


async def test_pipeline_from_logstash_config(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.net import free_port
    from tests.support.pipeline import CollectOutput

    port = free_port()
    out = CollectOutput()
    text = f'input {{ tcp {{ host => "127.0.0.1" port => {port} codec => json_lines tcp_keep_alive => true }} }}'
    async with Pipeline.from_string(text, outputs=[out], state_dir=str(tmp_path)):
        await _send(port, json.dumps({"msg": "hi"}).encode() + b"\n")
        await out.wait_for(1)
    assert out.events[0].record["msg"] == "hi"


async def test_multiline_codec_joins_per_connection() -> None:
    """Two peers interleave stack traces; each connection's lines are joined on their own, and
    the last event is flushed when its peer closes."""
    from logpipe.registry import create

    codec = create("codec", "multiline", pattern=r"^\s", what="previous")
    inp = TcpInput(port=0, host="127.0.0.1", codec=codec)
    out = Collector()
    async with running(inp, out):
        _, a = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        _, b = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        a.write(b"A error\n  at a1\n")
        await a.drain()
        b.write(b"B error\n  at b1\n")
        await b.drain()
        a.write(b"  at a2\nA next\n")
        await a.drain()
        await out.wait_events(1)
        a.close()
        b.close()
        events = await out.wait_events(3)
    messages = sorted(e.record["message"] for e in events)
    assert messages == ["A error\n  at a1\n  at a2", "A next", "B error\n  at b1"]


async def test_multiline_auto_flush_interval_emits_a_held_event_while_the_peer_stays() -> None:
    """Logstash's auto_flush_interval: the held stack trace is emitted after that long without
    a line, on an open connection; the lines after it start a new event, in order."""
    from logpipe.registry import create

    codec = create("codec", "multiline", pattern=r"^\s", what="previous", auto_flush_interval=0.2)
    inp = TcpInput(port=0, host="127.0.0.1", codec=codec)
    out = Collector()
    async with running(inp, out):
        _, peer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        peer.write(b"E1 boom\n  at x\n")
        await peer.drain()
        first = await out.wait_events(1)   # no further line, the peer stays connected
        assert first[0].record["message"] == "E1 boom\n  at x"
        peer.write(b"E2 next\n  at y\n")
        await peer.drain()
        events = await out.wait_events(2)
        peer.close()
    assert [e.record["message"] for e in events] == ["E1 boom\n  at x", "E2 next\n  at y"]
