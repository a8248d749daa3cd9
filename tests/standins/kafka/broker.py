"""A one-broker Kafka cluster in memory, on a free loopback port, speaking the real wire
protocol (apis.py lists the APIs and versions): Kafka clients connect to it as to a
broker — aiokafka and librdkafka (confluent-kafka) are both shown to work with it in
tests/standins/test_kafka_standin.py.

What it keeps as a broker does: topics of N partitions (auto-created on a metadata request
when allowed), the record batches producers sent with broker-assigned offsets (CRC-checked,
too large ones refused), idempotent-producer de-duplication of a resent batch (by producer
id and sequence, the last five batches), consumer groups (groups.py) and their committed
offsets. Requests on one connection are answered in order, one at a time, as a broker
does; a fetch with nothing new waits up to its max wait for data.

Failure modes, armed by tests:
- `fail_produce(code, times)`: the next produce answers the partition error `code`
  (NOT_LEADER_OR_FOLLOWER by default) without storing the batch;
- `drop_after_produce(times)`: the next produce is stored, then the connection is closed
  before the answer (the client cannot know it was stored);
- `delay(api_key, seconds, times)`: the answer to the next request of that API is held
  back that long (a client with a shorter request timeout gives up);
- `stop()` / `start()` again on the same port: a broker restart (state kept).

With `sasl_users` the listener is SASL_PLAINTEXT with the PLAIN mechanism (SaslHandshake v1,
SaslAuthenticate v1): before a connection has authenticated only ApiVersions and the SASL
requests are answered (anything else closes it, as a broker does), and wrong credentials
get SASL_AUTHENTICATION_FAILED and a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from . import apis as E
from .apis import APIS
from .groups import Group, GroupError
from .log import CorruptBatch, PartitionLog, Record, split_batches
from .wire import Reader, to_bytes

_HEADER = (("api_key", "i16"), ("api_version", "i16"), ("correlation_id", "i32"), ("client_id", "str"))


@dataclass
class _Fault:
    times: int
    code: int = 0
    seconds: float = 0.0


class KafkaStandin:
    def __init__(self, partitions: int = 3, auto_create: bool = True, message_max_bytes: int = 1_048_588,
                 group_initial_delay: float = 0.0, host: str = "127.0.0.1",
                 sasl_users: dict[str, str] | None = None) -> None:
        self.sasl_users = sasl_users
        self.partitions = partitions
        self.auto_create = auto_create
        self.message_max_bytes = message_max_bytes
        self.group_initial_delay = group_initial_delay
        self.host = host
        self.port = 0
        self.topics: dict[str, list[PartitionLog]] = {}
        self.groups: dict[str, Group] = {}
        self.requests: Counter[int] = Counter()
        self._member_ids = itertools.count(1)
        self._producer_ids = itertools.count(1000)
        self._sequences: dict[tuple[int, str, int], deque[tuple[int, int]]] = {}
        self._produce_errors: list[_Fault] = []
        self._drops: list[_Fault] = []
        self._delays: dict[int, list[_Fault]] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._connections: set[asyncio.Task[Any]] = set()
        self._appended = asyncio.Event()
        self._expiry: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> KafkaStandin:
        self._appended = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._expiry = asyncio.create_task(self._expire_members())
        return self

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> KafkaStandin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- what tests look at and arm ------------------------------------------------------

    def create_topic(self, name: str, partitions: int | None = None) -> None:
        if name not in self.topics:
            self.topics[name] = [PartitionLog() for _ in range(partitions or self.partitions)]

    def records(self, topic: str) -> list[tuple[int, Record]]:
        """(partition, record) for every record of the topic, partition by partition."""
        return [(n, r) for n, log in enumerate(self.topics.get(topic, [])) for r in log.records()]

    def values(self, topic: str) -> list[bytes | None]:
        return [r.value for _, r in self.records(topic)]

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        found = self.groups.get(group)
        entry = found.offsets.get((topic, partition)) if found else None
        return entry[0] if entry else None

    def fail_produce(self, code: int = E.NOT_LEADER_OR_FOLLOWER, times: int = 1) -> None:
        self._produce_errors.append(_Fault(times, code=code))

    def drop_after_produce(self, times: int = 1) -> None:
        self._drops.append(_Fault(times))

    def delay(self, api_key: int, seconds: float, times: int = 1) -> None:
        self._delays.setdefault(api_key, []).append(_Fault(times, seconds=seconds))

    @staticmethod
    def _take(faults: list[_Fault]) -> _Fault | None:
        if not faults:
            return None
        fault = faults[0]
        fault.times -= 1
        if fault.times <= 0:
            faults.pop(0)
        return fault

    # ---- connections -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        session = {"authenticated": self.sasl_users is None}
        try:
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                frame = await reader.readexactly(size)
                answer = await self._handle(frame, session)
                if answer is _CLOSE:
                    return
                if isinstance(answer, tuple):  # answer, then close (a failed authentication)
                    writer.write(struct.pack(">i", len(answer[0])) + answer[0])
                    await writer.drain()
                    return
                if answer is not None:
                    writer.write(struct.pack(">i", len(answer)) + answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _handle(self, frame: bytes, session: dict[str, bool]) -> bytes | object | None:
        reader = Reader(frame)
        header = reader.read(_HEADER)
        api, version, correlation = header["api_key"], header["api_version"], header["correlation_id"]
        self.requests[api] += 1
        prefix = struct.pack(">i", correlation)
        if api == E.API_VERSIONS:
            return prefix + self._api_versions(version)
        known = APIS.get(api)
        if known is None or known[0] != version:
            return _CLOSE  # as a broker does with a version it never advertised
        _, request_schema, response_schema = known
        request = reader.read(request_schema)
        request["client_id"] = header["client_id"]
        if api in (E.SASL_HANDSHAKE, E.SASL_AUTHENTICATE):
            response, close = self._sasl(api, request, session)
            answer = prefix + to_bytes(response_schema, response)
            return (answer, _CLOSE) if close else answer
        if not session["authenticated"]:
            return _CLOSE
        drop = None
        if api == E.PRODUCE:
            response = self._produce(request)
            drop = self._take(self._drops)
            if request["acks"] == 0 and drop is None:
                return None
        else:
            response = await getattr(self, _HANDLERS[api])(request)
        delay = self._take(self._delays.get(api, []))
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        if drop is not None:
            return _CLOSE
        return prefix + to_bytes(response_schema, response)

    def _api_versions(self, version: int) -> bytes:
        entries = [(key, v, v) for key, (v, _, _) in sorted(APIS.items())]
        entries.append((E.API_VERSIONS, *E.API_VERSIONS_RANGE))
        if version > E.API_VERSIONS_RANGE[1]:
            return to_bytes(E.API_VERSIONS_V0, (E.UNSUPPORTED_VERSION, entries))
        if version == 0:
            return to_bytes(E.API_VERSIONS_V0, (E.NONE, entries))
        return to_bytes(E.API_VERSIONS_V1, (E.NONE, entries, 0))

    def _sasl(self, api: int, req: dict[str, Any], session: dict[str, bool]) -> tuple[dict[str, Any], bool]:
        if api == E.SASL_HANDSHAKE:
            if self.sasl_users is None:
                return {"error_code": E.ILLEGAL_SASL_STATE, "mechanisms": []}, True
            code = E.NONE if req["mechanism"] == "PLAIN" else E.UNSUPPORTED_SASL_MECHANISM
            return {"error_code": code, "mechanisms": ["PLAIN"]}, code != E.NONE
        parts = (req["auth_bytes"] or b"").split(b"\0")  # PLAIN: authzid NUL user NUL password
        user, password = (parts[1].decode(), parts[2].decode()) if len(parts) == 3 else ("", None)
        users = self.sasl_users or {}
        if password is None or users.get(user) != password:
            return {"error_code": E.SASL_AUTHENTICATION_FAILED, "auth_bytes": b"", "session_lifetime_ms": 0,
                    "error_message": "Authentication failed: Invalid username or password"}, True
        session["authenticated"] = True
        return {"error_code": E.NONE, "error_message": None, "auth_bytes": b"", "session_lifetime_ms": 0}, False

    # ---- metadata ----------------------------------------------------------------------

    async def _metadata(self, req: dict[str, Any]) -> dict[str, Any]:
        names = req["topics"]
        if names is None:
            names = list(self.topics)
        topics = []
        for name in names:
            if name not in self.topics and self.auto_create and req["allow_auto_topic_creation"]:
                self.create_topic(name)
            logs = self.topics.get(name)
            if logs is None:
                topics.append({"error_code": E.UNKNOWN_TOPIC_OR_PARTITION, "name": name, "is_internal": False,
                               "partitions": []})
                continue
            topics.append({"error_code": E.NONE, "name": name, "is_internal": False, "partitions": [
                {"error_code": E.NONE, "partition": n, "leader": 0, "replicas": [0], "isr": [0],
                 "offline_replicas": []} for n in range(len(logs))]})
        return {"throttle_time_ms": 0, "brokers": [{"node_id": 0, "host": self.host, "port": self.port,
                                                    "rack": None}],
                "cluster_id": "logpipe-standin", "controller_id": 0, "topics": topics}

    # ---- produce / fetch / offsets -----------------------------------------------------

    def _produce(self, req: dict[str, Any]) -> dict[str, Any]:
        topics = []
        for topic in req["topics"]:
            parts = []
            for part in topic["partitions"]:
                code, base = self._append(topic["name"], part["index"], part["records"] or b"")
                parts.append({"index": part["index"], "error_code": code, "base_offset": base,
                              "log_append_time_ms": -1, "log_start_offset": 0 if code == E.NONE else -1})
            topics.append({"name": topic["name"], "partitions": parts})
        return {"topics": topics, "throttle_time_ms": 0}

    def _append(self, topic: str, index: int, records: bytes) -> tuple[int, int]:
        logs = self.topics.get(topic)
        if logs is None or not 0 <= index < len(logs):
            return E.UNKNOWN_TOPIC_OR_PARTITION, -1
        fault = self._take(self._produce_errors)
        if fault is not None:
            return fault.code, -1
        try:
            batches = split_batches(records)
        except CorruptBatch:
            return E.CORRUPT_MESSAGE, -1
        if any(len(b) > self.message_max_bytes for b in batches):
            return E.MESSAGE_TOO_LARGE, -1
        first = -1
        for raw in batches:
            offset = self._append_batch(logs[index], topic, index, raw)
            first = offset if first < 0 else first
        self._appended.set()
        self._appended = asyncio.Event()
        return E.NONE, first

    def _append_batch(self, log: PartitionLog, topic: str, index: int, raw: bytes) -> int:
        producer_id, base_sequence = struct.unpack_from(">q", raw, 43)[0], struct.unpack_from(">i", raw, 53)[0]
        if producer_id >= 0:
            seen = self._sequences.setdefault((producer_id, topic, index), deque(maxlen=5))
            for sequence, offset in seen:
                if sequence == base_sequence:
                    return offset  # a resent batch already stored: its first offset again
        batch = log.append(raw)
        if producer_id >= 0:
            self._sequences[(producer_id, topic, index)].append((base_sequence, batch.base_offset))
        return batch.base_offset

    async def _fetch(self, req: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + req["max_wait_ms"] / 1000
        while True:
            waiter = self._appended
            responses, size = self._fetch_once(req)
            remaining = deadline - time.monotonic()
            if size >= max(1, req["min_bytes"]) or remaining <= 0 or self._server is None:
                return {"throttle_time_ms": 0, "error_code": E.NONE, "session_id": 0, "responses": responses}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), remaining)

    def _fetch_once(self, req: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        responses = []
        total = 0
        budget = req["max_bytes"]
        for topic in req["topics"]:
            logs = self.topics.get(topic["name"])
            parts = []
            for part in topic["partitions"]:
                entry = {"partition": part["partition"], "error_code": E.NONE, "high_watermark": -1,
                         "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": None,
                         "preferred_read_replica": -1, "records": b""}
                if logs is None or not 0 <= part["partition"] < len(logs):
                    entry["error_code"] = E.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    log = logs[part["partition"]]
                    entry.update(high_watermark=log.end_offset, last_stable_offset=log.end_offset,
                                 log_start_offset=0)
                    offset = part["fetch_offset"]
                    if offset < 0 or offset > log.end_offset:
                        entry["error_code"] = E.OFFSET_OUT_OF_RANGE
                    elif budget > 0 or total == 0:
                        data = log.read(offset, min(part["partition_max_bytes"], max(budget, 1)))
                        entry["records"] = data
                        total += len(data)
                        budget -= len(data)
                parts.append(entry)
            responses.append({"topic": topic["name"], "partitions": parts})
        return responses, total

    async def _list_offsets(self, req: dict[str, Any]) -> dict[str, Any]:
        topics = []
        for topic in req["topics"]:
            logs = self.topics.get(topic["name"])
            parts = []
            for part in topic["partitions"]:
                n = part["partition"]
                if logs is None or not 0 <= n < len(logs):
                    parts.append({"partition": n, "error_code": E.UNKNOWN_TOPIC_OR_PARTITION, "timestamp": -1,
                                  "offset": -1})
                    continue
                stamp = part["timestamp"]
                offset = logs[n].end_offset if stamp == -1 else 0 if stamp == -2 else logs[n].offset_for_time(stamp)
                parts.append({"partition": n, "error_code": E.NONE, "timestamp": -1, "offset": offset})
            topics.append({"name": topic["name"], "partitions": parts})
        return {"throttle_time_ms": 0, "topics": topics}

    # ---- groups ------------------------------------------------------------------------

    def _group(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id, self.group_initial_delay)
        return group

    async def _find_coordinator(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"throttle_time_ms": 0, "error_code": E.NONE, "error_message": None, "node_id": 0,
                "host": self.host, "port": self.port}

    async def _join_group(self, req: dict[str, Any]) -> dict[str, Any]:
        answer = self._group(req["group_id"]).join(req, self._member_ids)
        if isinstance(answer, dict):
            return answer
        try:
            return await answer
        except asyncio.CancelledError:  # the same member joined again on another request
            return {"throttle_time_ms": 0, "error_code": E.UNKNOWN_MEMBER_ID, "generation_id": -1,
                    "protocol_name": None, "leader": "", "member_id": req["member_id"], "members": []}

    async def _sync_group(self, req: dict[str, Any]) -> dict[str, Any]:
        answer = self._group(req["group_id"]).sync(req)
        if isinstance(answer, int):
            return {"throttle_time_ms": 0, "error_code": answer, "assignment": b""}
        try:
            return {"throttle_time_ms": 0, "error_code": E.NONE, "assignment": await answer}
        except GroupError as exc:
            return {"throttle_time_ms": 0, "error_code": exc.code, "assignment": b""}

    async def _heartbeat(self, req: dict[str, Any]) -> dict[str, Any]:
        group = self.groups.get(req["group_id"])
        code = group.heartbeat(req) if group else E.UNKNOWN_MEMBER_ID
        return {"throttle_time_ms": 0, "error_code": code}

    async def _leave_group(self, req: dict[str, Any]) -> dict[str, Any]:
        group = self.groups.get(req["group_id"])
        code = group.leave(req["member_id"]) if group else E.UNKNOWN_MEMBER_ID
        return {"throttle_time_ms": 0, "error_code": code}

    async def _offset_commit(self, req: dict[str, Any]) -> dict[str, Any]:
        group = self._group(req["group_id"])
        code = group.commit_error(req["generation_id"], req["member_id"])
        topics = []
        for topic in req["topics"]:
            parts = []
            for part in topic["partitions"]:
                if code == E.NONE:
                    group.offsets[(topic["name"], part["partition"])] = (part["offset"], part["metadata"] or "")
                parts.append({"partition": part["partition"], "error_code": code})
            topics.append({"name": topic["name"], "partitions": parts})
        return {"throttle_time_ms": 0, "topics": topics}

    async def _offset_fetch(self, req: dict[str, Any]) -> dict[str, Any]:
        group = self._group(req["group_id"])
        wanted = req["topics"]
        if wanted is None:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in group.offsets:
                by_topic.setdefault(topic, []).append(partition)
            wanted = [{"name": t, "partitions": p} for t, p in by_topic.items()]
        topics = []
        for topic in wanted:
            parts = []
            for n in topic["partitions"]:
                offset, metadata = group.offsets.get((topic["name"], n), (-1, ""))
                parts.append({"partition": n, "offset": offset, "metadata": metadata, "error_code": E.NONE})
            topics.append({"name": topic["name"], "partitions": parts})
        return {"throttle_time_ms": 0, "topics": topics, "error_code": E.NONE}

    async def _init_producer_id(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"throttle_time_ms": 0, "error_code": E.NONE, "producer_id": next(self._producer_ids),
                "producer_epoch": 0}

    async def _expire_members(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for group in self.groups.values():
                group.expire(now)


_CLOSE = object()
_HANDLERS = {
    E.FETCH: "_fetch", E.LIST_OFFSETS: "_list_offsets", E.METADATA: "_metadata",
    E.OFFSET_COMMIT: "_offset_commit", E.OFFSET_FETCH: "_offset_fetch", E.FIND_COORDINATOR: "_find_coordinator",
    E.JOIN_GROUP: "_join_group", E.HEARTBEAT: "_heartbeat", E.LEAVE_GROUP: "_leave_group",
    E.SYNC_GROUP: "_sync_group", E.INIT_PRODUCER_ID: "_init_producer_id",
}
