"""The HTTP API: the request handler directly (no sockets), then the real server on
127.0.0.1 with urllib and raw sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

import pytest

from logpipe import http_api
from logpipe.errors import LogpipeError
from logpipe.http_api import HttpApi, Response
from logpipe.metrics import Registry


class FakeDaemon:
    def __init__(self) -> None:
        self.ready = (True, "ready")
        self.doc: dict[str, Any] = {"uptime_seconds": 1.5, "pipeline": {"events_in": 3}}

    def readiness(self) -> tuple[bool, str]:
        return self.ready

    def stats(self) -> dict[str, Any]:
        return self.doc

    def gauges(self) -> Iterable[tuple[str, str, float]]:
        yield "logpipe_ready", "ready", float(self.ready[0])


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def registry() -> Registry:
    return Registry()


def metric_lines(response: Response) -> dict[str, float]:
    """Sample lines of a text exposition as {name{labels}: value}."""
    samples = {}
    for line in response.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_healthz_is_200(daemon: FakeDaemon, registry: Registry) -> None:
    response = HttpApi(daemon, registry).handle("GET", "/healthz")
    assert (response.status, response.body) == (200, b"ok\n")


def test_readyz_follows_the_daemon(daemon: FakeDaemon, registry: Registry) -> None:
    api = HttpApi(daemon, registry)
    assert api.handle("GET", "/readyz").status == 200
    daemon.ready = (False, "reloading the configuration")
    response = api.handle("GET", "/readyz")
    assert response.status == 503
    assert response.body == b"reloading the configuration\n"


def test_metrics_render_counters_gauges_and_labels(daemon: FakeDaemon, registry: Registry) -> None:
    registry.counter("logpipe_events_in_total", "events emitted by inputs").inc(7)
    registry.counter("logpipe_output_events_delivered_total", "delivered", output="es").inc(4)
    registry.counter("logpipe_output_events_delivered_total", "delivered", output='we"ird\nid').inc(2)
    registry.gauge("logpipe_output_buffer_bytes", "bytes buffered", output="es").set(512)
    response = HttpApi(daemon, registry).handle("GET", "/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    text = response.body.decode()
    assert "# TYPE logpipe_events_in_total counter" in text
    assert "# HELP logpipe_events_in_total events emitted by inputs" in text
    assert "# TYPE logpipe_output_buffer_bytes gauge" in text
    samples = metric_lines(response)
    assert samples["logpipe_events_in_total"] == 7
    assert samples['logpipe_output_events_delivered_total{output="es"}'] == 4
    assert samples['logpipe_output_events_delivered_total{output="we\\"ird\\nid"}'] == 2
    assert samples['logpipe_output_buffer_bytes{output="es"}'] == 512
    # Derived: events out is the sum over the outputs.
    assert samples["logpipe_events_out_total"] == 6
    assert samples["logpipe_ready"] == 1
    # The standard process metrics, RSS first of all.
    assert samples["process_resident_memory_bytes"] > 1_000_000
    assert "process_cpu_seconds_total" in samples


def test_metrics_counters_keep_counting(daemon: FakeDaemon, registry: Registry) -> None:
    api = HttpApi(daemon, registry)
    events = registry.counter("logpipe_events_in_total")
    events.inc(1)
    assert metric_lines(api.handle("GET", "/metrics"))["logpipe_events_in_total"] == 1
    events.inc(2)
    assert metric_lines(api.handle("GET", "/metrics"))["logpipe_events_in_total"] == 3


def test_odd_metric_names_are_escaped_or_left_out_not_fatal(daemon: FakeDaemon, registry: Registry,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    registry.counter("plugin.odd-name", "escaped by the exposition").inc(2)
    registry.counter("", "no name at all").inc()
    registry.counter("logpipe_good_total", "fine").inc(5)
    response = HttpApi(daemon, registry).handle("GET", "/metrics")
    assert response.status == 200
    samples = metric_lines(response)
    assert samples["logpipe_good_total"] == 5
    assert samples["plugin_odd_name"] == 2
    assert "no name at all" not in response.body.decode()
    assert "invalid Prometheus name" in caplog.text


def test_stats_is_json_and_renders_odd_values_as_text(daemon: FakeDaemon, registry: Registry) -> None:
    daemon.doc["state_dir"] = object.__new__(type("PathLike", (), {"__str__": lambda self: "/var/lib/x"}))
    response = HttpApi(daemon, registry).handle("GET", "/stats")
    assert response.status == 200 and response.content_type == "application/json"
    doc = json.loads(response.body)
    assert doc["pipeline"]["events_in"] == 3
    assert doc["state_dir"] == "/var/lib/x"


def test_unknown_path_method_and_query(daemon: FakeDaemon, registry: Registry) -> None:
    api = HttpApi(daemon, registry)
    assert api.handle("GET", "/nope").status == 404
    assert b"/metrics" in api.handle("GET", "/nope").body
    assert api.handle("POST", "/healthz").status == 405
    assert api.handle("GET", "/readyz?verbose=1").status == 200


def test_a_failing_view_answers_500(daemon: FakeDaemon, registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    daemon.stats = broken  # type: ignore[method-assign]
    response = HttpApi(daemon, registry).handle("GET", "/stats")
    assert response.status == 500
    assert "boom" in caplog.text
    assert HttpApi(daemon, registry).handle("GET", "/healthz").status == 200


# ---- the real server -----------------------------------------------------------------


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def raw_request(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send `data`, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_server_answers_on_loopback(daemon: FakeDaemon, registry: Registry) -> None:
    api = HttpApi(daemon, registry)
    host, port = await api.start("127.0.0.1", [0])
    try:
        assert host == "127.0.0.1" and port > 0
        base = f"http://127.0.0.1:{port}"
        status, body, headers = await asyncio.to_thread(fetch, base + "/healthz")
        assert (status, body) == (200, b"ok\n")
        assert headers["Cache-Control"] == "no-store"
        daemon.ready = (False, "starting")
        status, body, _ = await asyncio.to_thread(fetch, base + "/readyz")
        assert (status, body) == (503, b"starting\n")
        status, body, headers = await asyncio.to_thread(fetch, base + "/stats")
        assert status == 200 and json.loads(body)["uptime_seconds"] == 1.5
        status, body, headers = await asyncio.to_thread(fetch, base + "/metrics", "HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        assert (await asyncio.to_thread(fetch, base + "/metrics/"))[0] == 404
    finally:
        await api.close()


async def test_server_rejects_malformed_and_oversized_requests(daemon: FakeDaemon, registry: Registry,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    api = HttpApi(daemon, registry)
    _, port = await api.start("127.0.0.1", [0])
    try:
        with caplog.at_level(logging.DEBUG, "logpipe.http.clients"):
            reply = await asyncio.to_thread(raw_request, port, b"NONSENSE\r\n\r\n")
            assert reply.startswith(b"HTTP/1.0 400 ")
            huge = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n"
            reply = await asyncio.to_thread(raw_request, port, huge)
            assert reply.startswith(b"HTTP/1.0 400 ") and b"8190 bytes" in reply
        # A client's bad request is a DEBUG line for the operator, never an ERROR with a traceback.
        client_lines = [r for r in caplog.records if r.name == "logpipe.http.clients"]
        assert client_lines and all(r.levelno == logging.DEBUG and r.exc_info is None for r in client_lines)
        # A client that hangs up without a request does no harm: the next one is served.
        with socket.create_connection(("127.0.0.1", port)):
            pass
        reply = await asyncio.to_thread(raw_request, port, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 200 ") and reply.endswith(b"ok\n")
    finally:
        await api.close()


async def test_port_taken_is_a_clear_error(daemon: FakeDaemon, registry: Registry) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(LogpipeError) as info:
            await HttpApi(daemon, registry).start("127.0.0.1", [port])
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message
        assert "already in use" in message and "--http-port" in message and "--no-http" in message
        # A range moves on past a taken port.
        api = HttpApi(daemon, registry)
        _, bound = await api.start("127.0.0.1", [port, 0])
        await api.close()
        assert bound not in (port, 0)
        with pytest.raises(LogpipeError, match=f"ports {port}-{port}: every port is already in use"):
            await HttpApi(daemon, registry).start("127.0.0.1", [port, port])


def closed_at_once(port: int) -> bool:
    """Connect and wait: the server closes (FIN, or RST if our bytes were still unread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


async def test_idle_and_excess_connections_cannot_hold_the_api(daemon: FakeDaemon, registry: Registry,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that connects and sends nothing (or half a request) is closed after the
    request timeout; beyond the connection cap a connection is closed at once and
    counted, and the API keeps answering once the holders are gone."""
    monkeypatch.setattr(http_api, "REQUEST_TIMEOUT", 0.5)
    monkeypatch.setattr(http_api, "MAX_CONNECTIONS", 3)
    api = HttpApi(daemon, registry)
    _, port = await api.start("127.0.0.1", [0])
    try:
        holders = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        holders[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # never finishes its head
        assert api._listener is not None
        async with asyncio.timeout(5):   # the server has taken all three (accepting is asynchronous)
            while api._listener.connections() < 3:
                await asyncio.sleep(0.01)
        assert await asyncio.to_thread(closed_at_once, port)   # over the cap
        refused = registry.counter("logpipe_http_api_refused_connections_total")
        assert refused.value == 1
        for sock in holders:   # each holder is closed by the server: recv sees EOF
            assert await asyncio.to_thread(sock.recv, 1) == b""
            sock.close()
        reply = await asyncio.to_thread(raw_request, port, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 200 ")
    finally:
        await api.close()
