"""TLS for the Elasticsearch and OpenSearch outputs, against the stand-in serving https with a
throw-away certificate: CA verification, verification off, a wrong CA, client certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.event import Event
from logpipe.plugin import RetryableError
from logpipe_plugins.outputs.elasticsearch import ElasticsearchOutput
from logpipe_plugins.outputs.opensearch import OpensearchOutput
from tests.standins.elasticsearch import ESStandIn
from tests.support.net import make_certs

T0 = 1_700_000_000_000_000_000


async def send(out: ElasticsearchOutput | OpensearchOutput, n: int = 1) -> object:
    try:
        return await out.write(out.format([Event("a", T0 + i, {"n": i}) for i in range(n)]))
    finally:
        await out.close()


@pytest.mark.parametrize("kind", [ElasticsearchOutput, OpensearchOutput])
async def test_https_with_ca_no_verification_and_a_wrong_ca(kind: type, tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    other, _ = make_certs(tmp_path, "other")
    flavor = "opensearch" if kind is OpensearchOutput else "elasticsearch"
    server = ESStandIn("2.17.1" if flavor == "opensearch" else "9.1.3", flavor=flavor, tls=(cert, key))
    await server.start()
    try:
        assert await send(kind(hosts=[server.url], index="t", ssl_certificate_authorities=[cert])) is None
        assert await send(kind(hosts=[f"127.0.0.1:{server.port}"], ssl_enabled=True, index="t2",
                               ssl_verification_mode="none")) is None
        with pytest.raises(RetryableError):
            await send(kind(hosts=[server.url], index="t", ca_file=other))
        assert server.count() == 2
    finally:
        await server.stop()


async def test_client_certificate(tmp_path: Path) -> None:
    cert, key = make_certs(tmp_path)
    client_cert, client_key = make_certs(tmp_path, "client")
    server = ESStandIn(tls=(cert, key), client_ca=client_cert)
    await server.start()
    try:
        with pytest.raises(RetryableError):
            await send(ElasticsearchOutput(hosts=[server.url], index="c", ssl_certificate_authorities=[cert]))
        assert await send(ElasticsearchOutput(hosts=[server.url], index="c", ssl_certificate_authorities=[cert],
                                              client_cert=client_cert, client_key=client_key)) is None
        assert server.count() == 1
    finally:
        await server.stop()
