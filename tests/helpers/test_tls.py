"""The TLS helper: one declaration, both front-ends' spellings, real handshakes."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any, ClassVar

import pytest

from logpipe.errors import ConfigError
from logpipe.helpers.server import ServerInput
from logpipe.helpers.tls import TlsClient, TlsServer
from logpipe.plugin import Helper, Output, Setting
from logpipe_plugins.inputs.beats import BeatsInput
from logpipe_plugins.inputs.forward import ForwardInput
from logpipe_plugins.outputs.forward import ForwardOutput
from tests.support.net import Collector, make_certs, running


class EchoInput(ServerInput):
    """A listening input written on the helpers alone: it answers every line with 'ok'."""

    name = "tls_echo"
    settings: ClassVar[list[Setting]] = []

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        while await reader.readline():
            writer.write(b"ok\n")
            await writer.drain()


async def _talk(port: int, context: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    writer.write(b"hi\n")
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return line


def test_every_network_plugin_declares_the_same_tls_settings() -> None:
    server_names = {s.name for s in TlsServer.settings}
    for cls in (ForwardInput, BeatsInput, EchoInput):
        assert server_names <= {s.name for s in cls.all_settings()}, cls
    assert {s.name for s in TlsClient.settings} <= {s.name for s in ForwardOutput.all_settings()}
    assert issubclass(TlsServer, Helper)


@pytest.mark.parametrize("spelling", ["logstash", "fluentd", "old"])
async def test_spellings_serve_the_same_tls(tmp_path: Path, spelling: str) -> None:
    cert, key = make_certs(tmp_path)
    settings: dict[str, Any] = {
        "logstash": {"ssl_enabled": True, "ssl_certificate": cert, "ssl_key": key},
        "fluentd": {"transport": {"@args": "tls", "cert_path": cert, "private_key_path": key}},
        "old": {"ssl": True, "ssl_cert": cert, "tls_private_key_path": key},
    }[spelling]
    inp = EchoInput(host="127.0.0.1", **settings)
    async with running(inp, Collector()):
        assert await _talk(inp.bound_port, ssl.create_default_context(cafile=cert)) == b"ok\n"


async def test_supported_protocols_refuse_older_clients(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    inp = EchoInput(host="127.0.0.1", ssl_enabled=True, ssl_certificate=cert, ssl_key=key,
                    ssl_supported_protocols=["TLSv1.3"])
    old_client = ssl.create_default_context(cafile=cert)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    async with running(inp, Collector()):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await _talk(inp.bound_port, old_client)
        assert await _talk(inp.bound_port, ssl.create_default_context(cafile=cert)) == b"ok\n"


def test_bad_protocol_and_missing_ca_name_the_setting(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    with pytest.raises(ConfigError, match="unsupported TLS version 'SSLv3'") as info:
        EchoInput(ssl_enabled=True, ssl_certificate=cert, ssl_key=key, ssl_supported_protocols=["SSLv3"])
    assert info.value.setting == "ssl_supported_protocols"
    with pytest.raises(ConfigError) as info:
        EchoInput(transport={"@args": "tls", "cert_path": cert, "private_key_path": key, "client_cert_auth": True})
    assert info.value.setting == "transport.ca_path"


class Client(Output):
    name = "tls_client_probe"
    helpers = [TlsClient]


def test_client_context_from_either_spelling(tmp_path: Path) -> None:
    cert, _ = make_certs(tmp_path)
    assert TlsClient.context(Client()) is None
    fluentd = TlsClient.context(Client(transport="tls", tls_ca_cert_path=[cert], tls_insecure_mode=True))
    assert fluentd is not None and fluentd.verify_mode == ssl.CERT_NONE
    logstash = TlsClient.context(Client(ssl_enabled=True, ssl_certificate_authorities=[cert]))
    assert logstash is not None and logstash.verify_mode == ssl.CERT_REQUIRED and logstash.check_hostname
