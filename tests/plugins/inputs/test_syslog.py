"""syslog input with real senders: util-linux `logger`, Python's SysLogHandler, a TLS client."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import shutil
import socket
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logpipe.errors import ConfigError
from logpipe.metrics import REGISTRY
from logpipe.plugin import Setting
from logpipe_plugins.inputs.syslog import FAILURE_TAG, SyslogInput
from tests.support.net import Collector, make_certs, running

LOGGER = shutil.which("logger")
needs_logger = pytest.mark.skipif(LOGGER is None, reason="util-linux logger not installed")


async def _logger(port: int, *args: str) -> None:
    assert LOGGER is not None
    proc = await asyncio.create_subprocess_exec(
        LOGGER, "--server", "127.0.0.1", "--port", str(port), "--tag", "myapp", "--id=4242", *args,
        stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


@needs_logger
@pytest.mark.parametrize("transport", ["--udp", "--tcp"])
async def test_logger_rfc3164_logstash_fields(transport: str) -> None:
    inp = SyslogInput(port=0, host="127.0.0.1")
    out = Collector()
    async with running(inp, out):
        await _logger(inp.bound_port, transport, "--rfc3164", "-p", "local3.warning", "disk is full")
        (ev,) = await out.wait_events(1)
    r = ev.record
    assert r["message"] == "disk is full"
    assert r["program"] == "myapp" and r["pid"] == "4242"
    assert r["priority"] == 19 * 8 + 4 and r["facility"] == 19 and r["severity"] == 4
    assert r["facility_label"] == "local3" and r["severity_label"] == "Warning"
    assert r["host"] == "127.0.0.1"
    assert r["logsource"] == socket.gethostname()
    assert "timestamp" in r and abs(ev.time / 1e9 - __import__("time").time()) < 120
    assert ev.tag == "syslog"


@needs_logger
@pytest.mark.parametrize("framing", [[], ["--octet-count"]])
async def test_logger_rfc5424_over_tcp_both_framings(framing: list[str]) -> None:
    inp = SyslogInput(port=0, host="127.0.0.1", ecs_compatibility="v8")
    out = Collector()
    async with running(inp, out):
        await _logger(inp.bound_port, "--tcp", "--rfc5424", *framing, "--msgid", "ID47",
                      "--sd-id", "origin@32473", "--sd-param", 'ip="10.0.0.1"', "-p", "auth.err", "first line")
        await _logger(inp.bound_port, "--tcp", "--rfc5424", *framing, "second line")
        events = await out.wait_events(2)
    ev = events[0]
    r = ev.record
    assert r["message"] == "first line"
    syslog = r["log"]["syslog"]
    assert syslog["priority"] == 4 * 8 + 3
    assert syslog["facility"] == {"code": 4, "name": "security/authorization"}
    assert syslog["severity"] == {"code": 3, "name": "Error"}
    assert syslog["msgid"] == "ID47"
    assert syslog["structured_data"]["origin@32473"]["ip"] == "10.0.0.1"
    assert r["process"] == {"name": "myapp", "pid": 4242}
    assert r["host"]["ip"] == "127.0.0.1" and r["host"]["hostname"]
    assert r["event"]["original"].startswith("<35>1 ")
    assert "timestamp" not in r
    assert events[1].record["message"] == "second line"


@pytest.mark.parametrize("socktype", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
async def test_python_sysloghandler(socktype: int) -> None:
    """SysLogHandler sends `<PRI>message` + NUL: no header at all, over UDP or TCP (NUL-separated)."""
    inp = SyslogInput(port=0, host="127.0.0.1")
    out = Collector()
    async with running(inp, out):
        handler = await asyncio.to_thread(
            logging.handlers.SysLogHandler, ("127.0.0.1", inp.bound_port),
            logging.handlers.SysLogHandler.LOG_DAEMON, socktype)
        log = logging.getLogger(f"test.syslog.{socktype}")
        log.propagate = False
        log.addHandler(handler)
        try:
            log.error("one: %s", "boom")
            log.warning("two")
            events = await out.wait_events(2)
        finally:
            handler.close()
    assert [e.record["message"] for e in events] == ["one: boom", "two"]
    assert events[0].record["facility"] == 3 and events[0].record["severity"] == 3
    assert events[1].record["severity_label"] == "Warning"
    assert all("tags" not in e.record for e in events)


async def test_unparseable_line_kept_tagged_and_counted() -> None:
    inp = SyslogInput(port=0, host="127.0.0.1", id="bad-lines")
    out = Collector()
    async with running(inp, out):
        _, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(b"this is not syslog\n<13>Dec  1 10:00:00 h app: fine\n")
        await writer.drain()
        events = await out.wait_events(2)
        writer.close()
    bad, good = events
    assert bad.record["message"] == "this is not syslog"
    assert bad.record["tags"] == [FAILURE_TAG]
    assert bad.record["priority"] == 13 and bad.record["severity_label"] == "Notice"
    assert good.record["program"] == "app" and "tags" not in good.record
    assert REGISTRY.value("logpipe_input_syslog_unparsed_total", input="bad-lines") == 1


async def test_tls_rfc5425_with_generated_ca(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    inp = SyslogInput(port=0, host="127.0.0.1", ssl_enabled=True, ssl_certificate=cert, ssl_key=key)
    assert inp.transports == {"tls"}
    out = Collector()
    async with running(inp, out):
        ctx = ssl.create_default_context(cafile=cert)
        _, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port, ssl=ctx, server_hostname="localhost")
        msg = b'<165>1 2003-10-11T22:14:15.003Z host.example evntslog - ID47 [ex@32473 iut="3"] over TLS'
        writer.write(str(len(msg)).encode() + b" " + msg)
        await writer.drain()
        (ev,) = await out.wait_events(1)
        writer.close()
    assert ev.record["message"] == "over TLS"
    assert ev.record["structured_data"] == {"ex@32473": {"iut": "3"}}
    assert ev.time == 1065910455003000000


async def test_fluentd_shape_tag_and_keys() -> None:
    inp = SyslogInput(port=0, bind="127.0.0.1", tag="system", transport={"@args": "tcp"},
                      severity_key="sev", facility_key="fac", source_address_key="addr",
                      source_hostname_key="from")
    assert inp.fluentd and inp.transports == {"tcp"}
    out = Collector()
    async with running(inp, out):
        _, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(b"<30>Oct 11 22:14:15 web01 nginx[77]: GET /\n"
                     b"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 - An event\n"
                     b"garbage\n")
        await writer.drain()
        events = await out.wait_events(3)
        writer.close()
    a, b, c = events
    assert a.tag == "system.daemon.info"
    assert a.record == {"host": "web01", "ident": "nginx", "pid": "77", "message": "GET /", "sev": "info",
                        "fac": "daemon", "addr": "127.0.0.1", "from": a.record["from"]}
    assert a.record["from"]
    assert b.tag == "system.local4.notice"
    assert b.record["msgid"] == "ID47" and b.record["extradata"] == "-" and b.record["pid"] == "-"
    assert c.tag == "system.unmatched" and c.record["unmatched_line"] == "garbage"


async def test_fluentd_default_port_and_udp_transport() -> None:
    inp = SyslogInput(tag="sys")
    assert inp.port == 5140 and inp.transports == {"udp"}
    assert SyslogInput().port == 514


def _send_udp(port: int, *lines: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line, ("127.0.0.1", port))


async def test_grok_pattern_ecs_as_pfelk_uses_it() -> None:
    """pfelk's input: `grok_pattern => "<%{POSINT:[log][syslog][priority]}>%{GREEDYDATA:pfelk}"`
    under ECS v1. The captures land in the event, the priority is decoded from its capture, and a
    line the pattern does not match is kept whole, tagged and given priority 13 (Logstash's
    syslog_relay)."""
    inp = SyslogInput(port=0, host="127.0.0.1", ecs_compatibility="v1",
                      grok_pattern="<%{POSINT:[log][syslog][priority]}>%{GREEDYDATA:pfelk}")
    out = Collector()
    line = b"<134>Dec  2 06:00:00 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0"
    async with running(inp, out):
        _send_udp(inp.bound_port, line, b"no priority here")
        good, bad = await out.wait_events(2)
    assert good.record["pfelk"] == line.decode()[5:]
    assert good.record["message"] == line.decode() and good.record["event"]["original"] == line.decode()
    syslog = good.record["log"]["syslog"]
    assert syslog["priority"] == 134
    assert syslog["facility"] == {"code": 16, "name": "local0"}
    assert syslog["severity"] == {"code": 6, "name": "Informational"}
    assert good.record["host"]["ip"] == "127.0.0.1" and good.record["service"]["type"] == "system"
    assert "tags" not in good.record
    assert bad.record["tags"] == [FAILURE_TAG] and bad.record["message"] == "no priority here"
    assert bad.record["log"]["syslog"]["priority"] == 13


async def test_grok_pattern_legacy_overwrites_the_field_and_reads_the_timestamp() -> None:
    """Logstash's own default pattern given explicitly: `message` is overwritten by its capture,
    `timestamp` becomes the event time (the input's timezone), the fields are the legacy names."""
    inp = SyslogInput(port=0, host="127.0.0.1", timezone="UTC",
                      grok_pattern="<%{POSINT:priority}>%{SYSLOGLINE}")
    out = Collector()
    async with running(inp, out):
        _send_udp(inp.bound_port, b"<38>Mar  7 10:11:12 web-1 sshd[99]: Accepted publickey for ops")
        (ev,) = await out.wait_events(1)
    r = ev.record
    assert r["message"] == "Accepted publickey for ops"
    assert (r["logsource"], r["program"], r["pid"]) == ("web-1", "sshd", "99")
    assert (r["priority"], r["facility"], r["severity"]) == (38, 4, 6)
    assert r["facility_label"] == "security/authorization" and r["severity_label"] == "Informational"
    assert r["host"] == "127.0.0.1" and r["timestamp"] == "Mar  7 10:11:12"
    stamp = datetime.fromtimestamp(ev.time / 1e9, UTC)
    assert (stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second) == (3, 7, 10, 11, 12)


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        SyslogInput(port=0, grok_pattern="%{NO_SUCH_PATTERN:x}")
    assert err.value.setting == "grok_pattern"
    with pytest.raises(ConfigError) as err:
        SyslogInput(tag="sys", port=0, grok_pattern="%{GREEDYDATA:x}")
    assert err.value.setting == "grok_pattern" and "<parse> @type grok" in err.value.message
    with pytest.raises(ConfigError) as err:
        SyslogInput(port=0, timezone="Mars/Olympus")
    assert err.value.setting == "timezone"
    with pytest.raises(ConfigError) as err:
        SyslogInput(port=0, frame_type="lines")
    assert err.value.setting == "frame_type"


async def test_bad_octet_frame_closes_only_that_connection() -> None:
    inp = SyslogInput(port=0, host="127.0.0.1", id="octet-bad", message_length_limit=1024)
    out = Collector()
    async with running(inp, out):
        _, good = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad_reader, bad = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        bad.write(b"99999 <13>too long for the limit")
        await bad.drain()
        assert await asyncio.wait_for(bad_reader.read(), 5) == b""  # closed by the server
        good.write(b"12 <13>still ok\n")
        await good.drain()
        (ev,) = await out.wait_events(1)
        good.close()
    assert ev.record["message"] == "still ok"
    assert REGISTRY.value("logpipe_input_protocol_errors_total", reason="oversized", input="octet-bad") == 1


async def test_oversized_line_dropped_connection_continues() -> None:
    inp = SyslogInput(port=0, host="127.0.0.1", id="long-line", message_length_limit=100)
    out = Collector()
    async with running(inp, out):
        _, writer = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        writer.write(b"<13>" + b"x" * 500 + b"\n<13>Dec  1 10:00:00 h app: after\n")
        await writer.drain()
        (ev,) = await out.wait_events(1)
        writer.close()
    assert ev.record["message"] == "after"
    assert REGISTRY.value("logpipe_input_oversized_total", input="long-line") == 1


async def test_slow_client_timed_out_idle_client_closed() -> None:
    inp = SyslogInput(port=0, host="127.0.0.1", id="slow", frame_timeout=0.3, idle_timeout=0.5)
    out = Collector()
    async with running(inp, out):
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        slow.write(b"<13>never ends")
        await slow.drain()
        idle_reader, idle = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        assert await asyncio.wait_for(slow_reader.read(), 5) == b""
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
    assert REGISTRY.value("logpipe_input_protocol_errors_total", reason="slow_client", input="slow") == 1
    assert out.events == []


async def test_connection_limit() -> None:
    inp = SyslogInput(port=0, host="127.0.0.1", max_connections=1, transport={"@args": "tcp"}, tag="t")
    out = Collector()
    async with running(inp, out):
        _, first = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        first.write(b"<13>one\n")
        await first.drain()
        await out.wait_events(1)
        second_reader, _ = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        assert await asyncio.wait_for(second_reader.read(), 5) == b""
        first.close()


async def test_flood_does_not_starve_another_sender() -> None:
    """One connection floods while the pipeline is slow; a second sender's line still arrives
    long before the flood ends (each connection gets its turn at the pipeline)."""
    inp = SyslogInput(port=0, host="127.0.0.1", transport={"@args": "tcp"}, tag="t")
    seen: list[str] = []
    got_quiet = asyncio.Event()

    async def slow_emit(events: list, on_ack: object) -> None:
        for ev in events:
            seen.append(ev.record.get("message", ""))
            if ev.record.get("message") == "quiet":
                got_quiet.set()
        await asyncio.sleep(0.01)

    from logpipe.plugin import InputContext

    await inp.start()
    task = asyncio.create_task(inp.run(InputContext(slow_emit, "/tmp", "t")))
    try:
        _, flood = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        stop = asyncio.Event()

        async def flooding() -> None:
            line = b"<13>flood " + b"y" * 100 + b"\n"
            while not stop.is_set():
                flood.write(line * 500)
                await flood.drain()

        flooder = asyncio.create_task(flooding())
        await asyncio.sleep(0.2)
        _, quiet = await asyncio.open_connection("127.0.0.1", inp.bound_port)
        quiet.write(b"<13>quiet\n")
        await quiet.drain()
        await asyncio.wait_for(got_quiet.wait(), 5)
        stop.set()
        flooder.cancel()
        await asyncio.gather(flooder, return_exceptions=True)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await inp.close()
    assert "quiet" in seen


def test_settings_documented() -> None:
    names = {s.name for s in SyslogInput.all_settings()}
    assert {"port", "ecs_compatibility", "frame_type", "message_format", "message_length_limit",
            "max_bytes_held", "idle_timeout", "frame_timeout", "max_connections", "ssl_enabled"} <= names
    assert all(isinstance(s, Setting) and s.doc for s in SyslogInput.all_settings())


# ---- both config front-ends, whole pipelines ------------------------------------------------


@needs_logger
async def test_logstash_config_pipeline(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.net import free_port
    from tests.support.pipeline import CollectOutput

    port = free_port()
    out = CollectOutput()
    text = f'input {{ syslog {{ host => "127.0.0.1" port => {port} type => "syslog" }} }}'
    async with Pipeline.from_string(text, outputs=[out], state_dir=str(tmp_path)):
        await _logger(port, "--udp", "--rfc3164", "via logstash config")
        await out.wait_for(1)
    (ev,) = out.events
    assert ev.record["message"] == "via logstash config" and ev.record["type"] == "syslog"


@needs_logger
async def test_fluentd_config_pipeline(tmp_path: Path) -> None:
    from logpipe.pipeline import Pipeline
    from tests.support.net import free_port
    from tests.support.pipeline import CollectOutput

    port = free_port()
    out = CollectOutput()
    text = f"""
<source>
  @type syslog
  port {port}
  bind 127.0.0.1
  tag system
  <transport tcp>
  </transport>
  frame_type octet_count
  <parse>
    message_format rfc5424
  </parse>
</source>
"""
    async with Pipeline.from_string(text, outputs=[out], state_dir=str(tmp_path)):
        await _logger(port, "--tcp", "--rfc5424", "--octet-count", "-p", "user.notice", "via fluentd config")
        await out.wait_for(1)
    (ev,) = out.events
    assert ev.tag == "system.user.notice"
    assert ev.record["message"] == "via fluentd config" and ev.record["ident"] == "myapp"
