"""A real Fluent Bit (built locally from its fetched source, like the forward interop peer)
sends into the syslog, tcp and http inputs with its own syslog, tcp (json_lines) and http
outputs. Skipped, saying why, when the binary is absent; LOGPIPE_FLUENT_BIT overrides the path."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from logpipe.plugin import Input
from logpipe_plugins.inputs.http import HttpInput
from logpipe_plugins.inputs.syslog import SyslogInput
from logpipe_plugins.inputs.tcp import TcpInput
from tests.support.net import Collector, running

FLUENT_BIT = os.environ.get("LOGPIPE_FLUENT_BIT", "/work/peers/bin/fluent-bit")
pytestmark = pytest.mark.skipif(
    not (Path(FLUENT_BIT).is_file() and os.access(FLUENT_BIT, os.X_OK)),
    reason=f"no Fluent Bit binary at {FLUENT_BIT} (build it, or set LOGPIPE_FLUENT_BIT)")


async def _fluent_bit(out: Collector, count: int, *output: str) -> None:
    """Run Fluent Bit: 3 dummy records → the given output; stop it once `count` events arrived."""
    proc = await asyncio.create_subprocess_exec(
        FLUENT_BIT, "-f", "1", "-i", "dummy", "-p", 'dummy={"message": "from fluent bit", "n": 7}',
        "-p", "samples=3", "-t", "fb.test", *output, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await out.wait_events(count, timeout=30)
    finally:
        proc.terminate()
        await proc.wait()


async def _run(inp: Input, *output: str) -> Collector:
    """`{port}` in the output's arguments becomes the input's bound port."""
    out = Collector()
    async with running(inp, out):
        port = str(inp.bound_port)  # type: ignore[attr-defined]
        await _fluent_bit(out, 3, *(arg.replace("{port}", port) for arg in output))
    return out


@pytest.mark.parametrize("mode", ["tcp", "udp"])
async def test_fluent_bit_syslog_output_rfc5424(mode: str) -> None:
    inp = SyslogInput(host="127.0.0.1", port=0)
    out = await _run(inp, "-o", "syslog", "-m", "*", "-p", "host=127.0.0.1", "-p", "port={port}",
                     "-p", f"mode={mode}", "-p", "syslog_format=rfc5424", "-p", "syslog_message_key=message",
                     "-p", "syslog_appname_preset=fbapp", "-p", "syslog_hostname_preset=fbhost")
    ev = out.events[0]
    assert ev.record["message"] == "from fluent bit"
    assert ev.record["program"] == "fbapp" and ev.record["logsource"] == "fbhost"
    assert "tags" not in ev.record


async def test_fluent_bit_tcp_output_json_lines() -> None:
    inp = TcpInput(host="127.0.0.1", port=0, codec="json_lines")
    out = await _run(inp, "-o", "tcp", "-m", "*", "-p", "host=127.0.0.1", "-p", "port={port}",
                     "-p", "format=json_lines")
    assert [e.record["n"] for e in out.events[:3]] == [7, 7, 7]
    assert out.events[0].record["message"] == "from fluent bit"


async def test_fluent_bit_http_output_answered_after_ack() -> None:
    inp = HttpInput(host="127.0.0.1", port=0)
    out = await _run(inp, "-o", "http", "-m", "*", "-p", "host=127.0.0.1", "-p", "port={port}",
                     "-p", "uri=/fb.http", "-p", "format=json")
    ev = out.events[0]
    assert ev.tag == "fb.http" and ev.record["n"] == 7 and ev.record["message"] == "from fluent bit"
