"""The mockupdb scenarios against a real MongoDB server.

Skipped unless LOGPIPE_TEST_MONGO_URI is set (e.g. mongodb://127.0.0.1:27017). Each test
works in its own database (logpipe_test_<random>) and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.event import Event
from logpipe.plugin import WriteResult
from logpipe_plugins.outputs.mongo import MongoOutput

URI = os.environ.get("LOGPIPE_TEST_MONGO_URI")
pytestmark = pytest.mark.skipif(not URI, reason="LOGPIPE_TEST_MONGO_URI is not set")
T0 = 1_700_000_000_123_000_000


@pytest.fixture
async def db() -> AsyncIterator[tuple[AsyncMongoClient[dict[str, Any]], str]]:
    assert URI is not None
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(URI, serverSelectionTimeoutMS=5000)
    name = f"logpipe_test_{uuid.uuid4().hex[:12]}"
    yield client, name
    await client.drop_database(name)
    await client.close()


def events(n: int, start: int = 0) -> list[Event]:
    return [Event("app", T0 + i, {"seq": i}) for i in range(start, start + n)]


async def test_insert_time_and_idempotent_retry(db: Any) -> None:
    client, name = db
    out = MongoOutput(uri=URI, database=name, collection="logs")
    try:
        assert await out.write(out.format(events(10))) is None
        assert await out.write(out.format(events(10))) is None  # duplicates (11000) count as delivered
    finally:
        await out.close()
    docs = await client[name]["logs"].find().sort("seq").to_list()
    assert [d["seq"] for d in docs] == list(range(10))
    assert docs[0]["time"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000)


async def test_validation_failure_is_a_permanent_failure_with_reason(db: Any) -> None:
    client, name = db
    await client[name].create_collection("strict", validator={"$jsonSchema": {
        "bsonType": "object", "properties": {"seq": {"bsonType": "int"}}}})
    out = MongoOutput(uri=URI, database=name, collection="strict")
    try:
        result = await out.write(out.format([Event("a", T0, {"seq": 1}), Event("a", T0 + 1, {"seq": "x"})]))
    finally:
        await out.close()
    assert isinstance(result, WriteResult) and result.retry == []
    [(i, reason)] = result.failed
    assert i == 1 and reason.startswith("121")


async def test_capped_collection_is_created(db: Any) -> None:
    client, name = db
    out = MongoOutput(uri=URI, database=name, collection="capped", capped=True, capped_size="1m")
    try:
        assert await out.write(out.format(events(3))) is None
    finally:
        await out.close()
    options = await client[name]["capped"].options()
    assert options["capped"] is True


async def test_no_loss_no_duplicates_through_the_engine(db: Any, state_dir: str) -> None:
    client, name = db
    out = MongoOutput(uri=URI, database=name, collection="e2e", flush_interval=0, retry_wait=0.05,
                      retry_forever=True)
    runner = OutputRunner(out, state_dir=state_dir)
    await runner.start()
    for start in range(0, 2000, 250):
        ack = Ack()
        await runner.put(events(250, start), ack)
        ack.release()
    await runner.put(events(500, 0), Ack())  # a replay of already stored events
    await asyncio.wait_for(runner.flush(), 60)
    await runner.stop(10)
    assert await client[name]["e2e"].count_documents({}) == 2000
