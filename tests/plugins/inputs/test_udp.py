"""udp input: real datagrams, both front-ends, drops counted."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from logpipe.helpers.udp import kernel_udp_drops
from logpipe.metrics import REGISTRY
from logpipe.plugin import InputContext
from logpipe_plugins.inputs.udp import UdpInput
from tests.support.net import Collector, running


def _send(port: int, *payloads: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in payloads:
            s.sendto(p, ("127.0.0.1", port))


async def test_logstash_plain_one_event_per_datagram() -> None:
    inp = UdpInput(port=0, host="127.0.0.1")
    out = Collector()
    async with running(inp, out):
        _send(inp.bound_port, b"first\n", b"two\nlines")
        events = await out.wait_events(2)
    assert [e.record["message"] for e in events] == ["first", "two\nlines"]
    assert events[0].record["host"] == "127.0.0.1"


async def test_json_lines_codec_splits_and_ecs_host() -> None:
    inp = UdpInput(port=0, host="127.0.0.1", codec="json_lines", ecs_compatibility="v8")
    out = Collector()
    async with running(inp, out):
        _send(inp.bound_port, b'{"a":1}\n{"a":2}\n')
        events = await out.wait_events(2)
    assert [e.record["a"] for e in events] == [1, 2]
    assert events[0].record["host"] == {"ip": "127.0.0.1"}


async def test_fluentd_parse_and_source_key() -> None:
    inp = UdpInput(port=0, bind="127.0.0.1", tag="udp.app", parse={"@type": "json"}, source_address_key="from")
    out = Collector()
    async with running(inp, out):
        _send(inp.bound_port, b'{"k": "v"}\n')
        (ev,) = await out.wait_events(1)
    assert ev.tag == "udp.app" and ev.record == {"k": "v", "from": "127.0.0.1"}


async def test_queue_full_drops_are_counted_and_oversized_dropped() -> None:
    inp = UdpInput(port=0, host="127.0.0.1", id="udp-drops", queue_size=5, workers=1, buffer_size=100)
    release = asyncio.Event()
    got: list = []

    async def blocked_emit(events: list, on_ack: object) -> None:
        got.extend(events)
        await release.wait()

    await inp.start()
    task = asyncio.create_task(inp.run(InputContext(blocked_emit, "/tmp", "t")))
    try:
        _send(inp.bound_port, b"first")
        async with asyncio.timeout(5):
            while not got:
                await asyncio.sleep(0.01)
        _send(inp.bound_port, *[b"x%d" % i for i in range(20)], b"y" * 200)
        async with asyncio.timeout(5):
            while REGISTRY.value("logpipe_input_udp_dropped_total", input="udp-drops") < 15:
                await asyncio.sleep(0.01)
        assert REGISTRY.value("logpipe_input_udp_oversized_total", input="udp-drops") == 1
        release.set()
        async with asyncio.timeout(5):
            while len(got) < 6:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await inp.close()
    assert len(got) == 6  # the first, then the 5 the queue held


async def test_kernel_drops_readable() -> None:
    inp = UdpInput(port=0, host="127.0.0.1")
    await inp.start()
    try:
        assert kernel_udp_drops(inp._server._inode) == 0
    finally:
        await inp.close()


async def test_pipeline_from_fluentd_config(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.net import free_port
    from tests.support.pipeline import CollectOutput

    port = free_port()
    out = CollectOutput()
    text = f"""
<source>
  @type udp
  port {port}
  bind 127.0.0.1
  tag metrics
  <parse>
    @type none
  </parse>
</source>
"""
    async with Pipeline.from_string(text, outputs=[out], state_dir=str(tmp_path)):
        _send(port, b"plain text\n")
        await out.wait_for(1)
    assert out.events[0].record == {"message": "plain text"} and out.events[0].tag == "metrics"
