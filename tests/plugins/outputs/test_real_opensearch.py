"""The OpenSearch scenarios of test_opensearch.py against a real OpenSearch 2.x/3.x cluster.

Skipped unless LOGPIPE_TEST_OPENSEARCH_URL is set (e.g. https://admin:Secret1!@127.0.0.1:9200,
verification off). Each test works in its own index and deletes it afterwards.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import unquote, urlsplit

import pytest
from opensearchpy import AsyncOpenSearch

from logpipe.event import Event
from logpipe.plugin import WriteResult
from logpipe_plugins.outputs.opensearch import OpensearchOutput

URL = os.environ.get("LOGPIPE_TEST_OPENSEARCH_URL")
pytestmark = pytest.mark.skipif(not URL, reason="LOGPIPE_TEST_OPENSEARCH_URL is not set")
T0 = 1_700_000_000_000_000_000


def settings() -> dict[str, object]:
    assert URL is not None
    parts = urlsplit(URL)
    out: dict[str, object] = {"hosts": [f"{parts.scheme}://{parts.hostname}:{parts.port or 9200}"],
                              "ssl_verification_mode": "none"}
    if parts.username:
        out["user"] = unquote(parts.username)
        out["password"] = unquote(parts.password or "")
    return out


async def test_index_outcomes_and_idempotence() -> None:
    index = f"logpipe-test-{uuid.uuid4().hex[:12]}"
    s = settings()
    admin = AsyncOpenSearch(s["hosts"], http_auth=(s.get("user"), s.get("password")) if "user" in s else None,
                            verify_certs=False, ssl_show_warn=False)
    out = OpensearchOutput(index=index, **s)
    try:
        batch = [Event("a", T0 + i, {"seq": i}) for i in range(5)]
        assert await out.write(out.format(batch)) is None
        assert await out.write(out.format(batch)) is None
        result = await out.write(out.format([Event("a", T0, {"seq": "x"})]))
        assert isinstance(result, WriteResult) and result.failed[0][1].startswith("400 ")
        await admin.indices.refresh(index=index)
        assert (await admin.count(index=index))["count"] == 5
    finally:
        await out.close()
        await admin.indices.delete(index=index, ignore_unavailable=True)
        await admin.close()
