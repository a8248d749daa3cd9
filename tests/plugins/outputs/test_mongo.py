"""MongoDB output against mockupdb, MongoDB's wire-protocol test server: pymongo's
AsyncMongoClient talks OP_MSG to it exactly as to mongod, and the peer below answers
`insert` like a server does (duplicate keys, per-document write errors, write concern
errors, dropped connections, command errors).

mockupdb 1.8.1 announces maxWireVersion 6 (MongoDB 3.6) in its automatic hello reply;
pymongo 4.20 requires 9 (MongoDB 4.4) and refuses the server with a ConfigurationError.
The peer passes `max_wire_version=21` (MongoDB 7.0), which is all the fix it needs.
Its string matchers (`autoresponds("insert", …)`) do not match OP_MSG inserts, whose
documents travel in a separate section; the peer dispatches on `command_name` instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from logpipe.ack import Ack
from logpipe.buffer import OutputRunner
from logpipe.buffer.runner import format_events
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import RetryableError, WriteResult
from logpipe_plugins.outputs.mongo import MongodbOutput, MongoOutput
from tests.standins.mongo import MongoPeer

T0 = 1_700_000_000_123_456_789
Doc = dict[str, Any]


async def send(out: MongoOutput, batch: list[Event]) -> WriteResult | None:
    """What the buffer engine does: format (pure), then write the items."""
    return await out.write(out.format(batch))


@pytest.fixture
async def peer() -> AsyncIterator[MongoPeer]:
    p = MongoPeer()
    await asyncio.to_thread(p.server.run)
    yield p
    # stop() joins mockupdb's threads, which poll once a second: let it finish in the background.
    threading.Thread(target=p.server.stop, daemon=True).start()


@pytest.fixture
async def make_output(peer: MongoPeer) -> AsyncIterator[Callable[..., Any]]:
    made: list[MongoOutput] = []

    async def make(**settings: Any) -> MongoOutput:
        settings.setdefault("uri", peer.uri)
        settings.setdefault("database", "fluent")
        settings.setdefault("timeout", 2)
        out = MongoOutput(**settings)
        await out.start()
        made.append(out)
        return out

    yield make
    for out in made:
        await out.close()


def events(n: int, start: int = 0, tag: str = "app") -> list[Event]:
    return [Event(tag, T0 + i, {"seq": i, "msg": f"m{i}"}, {"offset": i}) for i in range(start, start + n)]


# ---- settings ----------------------------------------------------------------------------


def test_seed_fluentd_example_settings_load() -> None:
    out = MongoOutput(**{"database": "fluent", "collection": "test"})
    assert out._uri == "mongodb://localhost:27017/" and out._database == "fluent"
    assert out._constant_collection == "test"


def test_logstash_name_and_uri_database() -> None:
    out = MongodbOutput(uri="mongodb://db.example:27018/logs?replicaSet=rs0", collection="c")
    assert out.name == "mongodb" and out._database == "logs"


@pytest.mark.parametrize("settings, setting", [
    ({"collection": "c"}, "database"),
    ({"uri": "http://x/db", "collection": "c"}, "uri"),
    ({"uri": "mongodb://h:notaport/db"}, "uri"),
    ({"database": "d", "capped": True}, "capped_size"),
    ({"database": "d", "write_concern": "-1"}, "write_concern"),
    ({"database": "my logs"}, "database"),
])
def test_bad_settings_are_config_errors(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        MongoOutput(**settings)
    assert err.value.setting == setting


# ---- documents as inserted ---------------------------------------------------------------


async def test_insert_many_unordered_with_time_as_bson_date_and_deterministic_ids(
        peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="test")
    assert await send(out, events(3)) is None
    [request] = peer.inserts
    assert request["ordered"] is False and request["$db"] == "fluent" and request["insert"] == "test"
    docs = peer.docs("fluent", "test")
    assert [d["seq"] for d in docs] == [0, 1, 2]
    assert docs[0]["time"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert isinstance(docs[0]["_id"], str) and len(docs[0]["_id"]) == 20
    assert "offset" not in docs[0]  # meta is not written


async def test_time_key_and_record_id_are_respected(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="t", time_key="ts")
    await send(out, [Event("a", T0, {"_id": "mine", "x": 1})])
    [doc] = peer.docs("fluent", "t")
    assert doc["_id"] == "mine" and "ts" in doc and "time" not in doc


async def test_collections_from_tag_and_sprintf(peer: MongoPeer, make_output: Any) -> None:
    evs = [Event("raw.web", T0, {"svc": "api"}), Event("raw.db", T0, {"svc": "pg"})]
    await send((await make_output(tag_mapped=True, remove_tag_prefix="raw")), evs)
    await send((await make_output(collection="svc_%{svc}")), evs)
    await send((await make_output(collection="by_${tag_parts[1]}")), evs)
    names = {name for (_, name) in peer.collections}
    assert names == {"web", "db", "svc_api", "svc_pg", "by_web", "by_db"}


async def test_an_invalid_rendered_collection_name_fails_its_documents_only(
        peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="svc_%{svc}", capped=True, capped_size=4096)
    evs = [Event("a", T0, {"svc": "api"}), Event("a", T0, {"svc": "a$b"}), Event("a", T0, {"svc": "api", "n": 2})]
    result = await send(out, evs)
    assert isinstance(result, WriteResult) and result.retry == []
    [(index, reason)] = result.failed
    assert index == 1 and "invalid collection name 'svc_a$b'" in reason
    assert [d["svc"] for d in peer.docs("fluent", "svc_api")] == ["api", "api"]
    assert set(peer.created) == {"svc_api"}


async def test_capped_collection_is_created_once(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="capped_logs", capped=True, capped_size="1m", capped_max=1000)
    await send(out, events(2))
    await send(out, events(2, start=2))
    assert peer.created["capped_logs"]["capped"] is True
    assert peer.created["capped_logs"]["size"] == 1024 * 1024 and peer.created["capped_logs"]["max"] == 1000
    again = await make_output(collection="capped_logs", capped=True, capped_size="1m")
    assert await send(again, events(1, start=9)) is None  # existing collection kept as is
    assert len(peer.docs("fluent", "capped_logs")) == 5


async def test_write_concern_is_sent(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="wc", write_concern="majority", journaled=True)
    await send(out, events(1))
    assert peer.inserts[-1]["writeConcern"] == {"w": "majority", "j": True}


# ---- outcomes ----------------------------------------------------------------------------


async def test_duplicate_keys_on_retry_count_as_delivered(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="dup")
    batch = events(4)
    assert await send(out, batch[:2]) is None
    assert await send(out, batch) is None  # two duplicates (11000), two new: all delivered
    again = await make_output(collection="dup")  # a restarted process, the same events rebuilt
    assert await send(again, [Event(e.tag, e.time, dict(e.record), {"offset": e.meta["offset"]})
                              for e in batch]) is None
    assert len(peer.docs("fluent", "dup")) == 4


async def test_other_write_errors_fail_their_document_with_the_reason(peer: MongoPeer, make_output: Any) -> None:
    peer.doc_error = lambda doc: (121, "Document failed validation") if doc.get("seq") == 1 else \
        (189, "Primary stepped down") if doc.get("seq") == 2 else None
    out = await make_output(collection="v")
    result = await send(out, events(4))
    assert isinstance(result, WriteResult)
    assert result.failed == [(1, "121 Document failed validation")]
    assert result.retry == [2]  # a transient code is retried, not dead-lettered
    assert [d["seq"] for d in peer.docs("fluent", "v")] == [0, 3]


async def test_write_concern_error_retries_the_written_documents(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="wce")
    peer.write_concern_errors = 1
    result = await send(out, events(3))
    assert isinstance(result, WriteResult) and result.retry == [0, 1, 2]
    assert await send(out, events(3)) is None  # the repeat: duplicates, delivered


async def test_network_and_command_errors_retry_the_chunk(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="net")
    await send(out, events(1))
    peer.hangups = 1
    with pytest.raises(RetryableError, match="net"):
        await send(out, events(2, start=1))
    peer.command_errors.append((10107, "not primary"))
    with pytest.raises(RetryableError, match="not primary"):
        await send(out, events(2, start=1))
    assert await send(out, events(2, start=1)) is None
    assert len(peer.docs("fluent", "net")) == 3


async def test_server_down_is_retryable(make_output: Any, peer: MongoPeer) -> None:
    out = await make_output(uri="mongodb://127.0.0.1:1/", timeout=0.3)
    with pytest.raises(RetryableError):
        await send(out, events(1))


async def test_unencodable_document_fails_alone(peer: MongoPeer, make_output: Any) -> None:
    out = await make_output(collection="enc")
    evs = events(3)
    evs[1].record["huge"] = 2**70
    items, failures = format_events(out, evs)
    assert [ev for ev, _ in failures] == [evs[1]] and "cannot encode as BSON" in failures[0][1]
    assert await out.write(items) is None
    assert [d["seq"] for d in peer.docs("fluent", "enc")] == [0, 2]


async def test_no_loss_no_duplicates_through_the_buffer_engine(peer: MongoPeer, state_dir: str) -> None:
    out = MongoOutput(uri=peer.uri, database="fluent", collection="e2e", timeout=2, retry_wait=0.01,
                      retry_max_interval=0.05, retry_forever=True, flush_interval=0)
    runner = OutputRunner(out, state_dir=state_dir)
    await runner.start()
    peer.hangups = 2
    peer.write_concern_errors = 2
    peer.command_errors.append((91, "shutdown in progress"))
    for start in range(0, 1000, 100):
        ack = Ack()
        await runner.put(events(100, start=start), ack)
        ack.release()
    await asyncio.wait_for(runner.flush(), 20)
    await runner.stop(5)
    seqs = sorted(d["seq"] for d in peer.docs("fluent", "e2e"))
    assert seqs == list(range(1000))
    assert len(peer.inserts) > 10  # the failures above really caused retries
