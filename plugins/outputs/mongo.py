"""MongoDB output (Fluentd's `mongo`, Logstash's `mongodb`) with pymongo's AsyncMongoClient.

One unordered `insert_many` per collection per chunk: the server keeps inserting past a
bad document and reports each failure with its index, which maps straight onto the
buffer engine's per-item outcomes. `_id`s are deterministic (logpipe.helpers.docid, the
same ids the Elasticsearch output uses), so a chunk retried after a timeout or replayed
after a crash hits duplicate-key errors (11000) for what was already stored: those are
counted as delivered, never as duplicates.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from bson import decode as bson_decode
from bson import encode as bson_encode
from bson.datetime_ms import DatetimeMS
from bson.errors import InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    ConfigurationError,
    ConnectionFailure,
    DocumentTooLarge,
    InvalidName,
    PyMongoError,
)
from pymongo.uri_parser import parse_uri

from logpipe.helpers.docid import assign_ids
from logpipe.helpers.routed import group_routed, pack_routed, unpack_routed
from logpipe.helpers.target_name import compile_target
from logpipe.plugin import ConfigError, Event, Output, RetryableError, Setting, WriteResult

DUPLICATE_KEY = frozenset({11000, 11001, 12582})
#: Per-document errors that say "not now" rather than "never" (primary stepped down,
#: shutdown, network trouble between nodes, write conflicts): retried, not dead-lettered.
TRANSIENT_CODES = frozenset({
    6, 7, 50, 64, 89, 91, 112, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436,
})

Doc = dict[str, Any]
#: Characters MongoDB refuses in a database name (pymongo checks the same list).
_DATABASE_FORBIDDEN = frozenset(' ./\\"$\x00')


class MongoOutput(Output):
    name = "mongo"
    doc = "Inserts events into MongoDB (insert_many, unordered); deterministic _id makes retries idempotent."
    retryable_errors = (ConnectionFailure,)
    settings: ClassVar[list[Setting]] = [
        Setting("uri", "string", doc="mongodb:// or mongodb+srv:// connection string (instead of host/port)"),
        Setting("connection_string", "string", doc="Fluentd name of uri"),
        Setting("host", "string", default="localhost", doc="server host, when no uri is given"),
        Setting("port", "int", default=27017, doc="server port, when no uri is given"),
        Setting("database", "string", doc="database (default: the one named in the uri)"),
        Setting("collection", "string", default="untagged", doc="collection; sprintf and ${tag} allowed"),
        Setting("tag_mapped", "bool", default=False, doc="Fluentd: use the event's tag as the collection"),
        Setting("remove_tag_prefix", "string", doc="Fluentd: with tag_mapped, strip this prefix from the tag"),
        Setting("time_key", "string", default="time",
                doc="field receiving the event time as a BSON date (empty: none)"),
        Setting("capped", "bool", default=False, doc="create missing collections as capped collections"),
        Setting("capped_size", "bytes", doc="size of capped collections (required with capped)"),
        Setting("capped_max", "int", doc="maximum document count of capped collections"),
        Setting("write_concern", "string", doc="w: number of nodes or 'majority' (default: the server's)"),
        Setting("journaled", "bool", doc="j: wait for the journal"),
        Setting("deterministic_id", "bool", default=True,
                doc="hash tag, time and record into _id when the record has none (false: server ObjectIds)"),
        Setting("user", "string", doc="user name (or put it in the uri)"),
        Setting("password", "string", doc="password"),
        Setting("timeout", "duration", default=10.0, doc="server selection and connect timeout"),
    ]

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        p = self.params
        self._uri = p["uri"] or p["connection_string"] or f"mongodb://{_host_port(p['host'], p['port'])}/"
        self._database = p["database"] or _uri_database(self._uri)
        if not self._database:
            raise ConfigError("no database: set 'database' or name one in the uri", setting="database")
        bad = _DATABASE_FORBIDDEN.intersection(self._database)
        if bad:
            # pymongo would only refuse it in start(), after `logpipe check` said yes.
            raise ConfigError(f"database name {self._database!r} cannot contain {''.join(sorted(bad))!r}",
                              setting="database")
        if p["capped"] and not p["capped_size"]:
            raise ConfigError("capped collections need capped_size", setting="capped_size")
        if p["tag_mapped"]:
            prefix = p["remove_tag_prefix"] or ""
            self._collection = _tag_collection(prefix)
            self._constant_collection: str | None = None
        else:
            render, constant = compile_target(p["collection"], "collection")
            self._collection = render
            self._constant_collection = p["collection"] if constant else None
        self._write_concern = _write_concern(p["write_concern"], p["journaled"])
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None
        self._collections: dict[str, AsyncCollection[Doc]] = {}
        self._failed = self.metrics.counter("mongo_documents_failed", "Mongo documents refused for good")
        self._duplicates = self.metrics.counter("mongo_duplicates",
                                                "Mongo documents already stored (duplicate key on retry)")

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        p = self.params
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": int(p["timeout"] * 1000),
            "connectTimeoutMS": int(p["timeout"] * 1000),
            "appname": "logpipe",
        }
        if p["user"] is not None:
            options["username"] = p["user"]
            options["password"] = p["password"]
        try:
            self._client = AsyncMongoClient(self._uri, **options)
        except ConfigurationError as exc:
            raise ConfigError(f"bad MongoDB connection settings: {exc}", setting="uri") from exc
        self._db = self._client.get_database(self._database)
        self._collections.clear()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._db = None

    # ---- writing ---------------------------------------------------------------------

    # ---- format (pure) and write (I/O) -----------------------------------------------

    def format(self, events: list[Event]) -> list[bytes]:
        """One item per event: the BSON document (a fresh dict: the event time as a BSON
        date, the deterministic `_id`) behind the collection it goes to. An event BSON cannot
        carry (a 64-bit overflow, over 16MB) raises, and the core dead-letters it alone."""
        time_key = self.params["time_key"]
        ids = assign_ids(events) if self.params["deterministic_id"] else None
        constant, collection = self._constant_collection, self._collection
        items: list[bytes] = []
        for i, ev in enumerate(events):
            doc = dict(ev.record)
            if time_key:
                doc[time_key] = DatetimeMS(ev.time // 1_000_000)
            if ids is not None and "_id" not in doc:
                doc["_id"] = ids[i]
            items.append(pack_routed(constant if constant is not None else collection(ev), _encoded(doc)))
        return items

    def describe(self, item: bytes) -> Any:
        """The document as it would have been stored, its collection under `@metadata`
        (a replay keeps the `_id`, so it stays idempotent)."""
        name, data = unpack_routed(item)
        try:
            doc = bson_decode(data)
        except Exception:  # noqa: BLE001 - a damaged item: show its bytes
            return {"@metadata": {"collection": name}, "bson": super().describe(data)}
        return {**doc, "@metadata": {"collection": name}}

    async def write(self, items: list[bytes]) -> WriteResult | None:
        if not items:
            return None
        if self._client is None:
            await self.start()
        groups = group_routed(items)
        retry: list[int] = []
        failed: list[tuple[int, str]] = []
        names = list(groups)
        for n, name in enumerate(names):
            positions, payloads = groups[name]
            try:
                await self._insert(name, [RawBSONDocument(p) for p in payloads], positions, retry, failed)
            except RetryableError as exc:
                if n == 0:
                    raise
                self.log.warning("%s: insert into %s failed after %d collection(s) were written: %s",
                                 self.id, name, n, exc)
                for rest in names[n:]:
                    retry.extend(groups[rest][0])
                break
        if failed:
            self._failed.inc(len(failed))
        if not retry and not failed:
            return None
        return WriteResult(retry=sorted(retry), failed=failed)

    async def _insert(self, name: str, docs: list[RawBSONDocument], positions: list[int],
                      retry: list[int], failed: list[tuple[int, str]]) -> None:
        """Insert one collection's documents, sorting each into delivered / retry / failed.
        Raises RetryableError when the insert as a whole failed."""
        try:
            collection = await self._collection_named(name)
        except InvalidName as exc:
            # A name rendered from the event (`%{field}`, the tag) that MongoDB refuses: retrying
            # would block the chunk for good, so these documents go to the dead-letter route.
            failed.extend((pos, f"invalid collection name {name!r}: {exc}") for pos in positions)
            return
        try:
            await collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            self._map_write_errors(dict(exc.details), positions, retry, failed)
        except (InvalidDocument, DocumentTooLarge) as exc:
            # Each document was checked when formatted; what the driver still refuses, it refuses for good.
            failed.extend((pos, f"refused by the driver: {exc}") for pos in positions)
        except PyMongoError as exc:
            raise RetryableError(f"insert into {name} failed: {exc}") from exc

    def _map_write_errors(self, details: Doc, positions: list[int], retry: list[int],
                          failed: list[tuple[int, str]]) -> None:
        bad: set[int] = set()
        duplicates = 0
        for error in details.get("writeErrors", []):
            idx = error.get("index")
            if not isinstance(idx, int) or not 0 <= idx < len(positions):
                continue
            code = error.get("code")
            bad.add(idx)
            if code in DUPLICATE_KEY:
                duplicates += 1
            elif code in TRANSIENT_CODES:
                retry.append(positions[idx])
            else:
                failed.append((positions[idx], f"{code} {error.get('codeName', '')} {error.get('errmsg', '')}"
                               .replace("  ", " ").strip()))
        if duplicates:
            self._duplicates.inc(duplicates)
        if details.get("writeConcernErrors"):
            # Written on the primary but not acknowledged as asked: write again; the
            # repeat is a duplicate-key error, i.e. delivered, once the concern holds.
            retry.extend(positions[i] for i in range(len(positions)) if i not in bad)

    async def _collection_named(self, name: str) -> AsyncCollection[Doc]:
        collection = self._collections.get(name)
        if collection is not None:
            return collection
        assert self._db is not None
        p = self.params
        # First, so that an invalid name raises InvalidName rather than a server error.
        collection = self._db.get_collection(name, write_concern=self._write_concern)
        if p["capped"]:
            options: Doc = {"capped": True, "size": p["capped_size"]}
            if p["capped_max"]:
                options["max"] = p["capped_max"]
            try:
                await self._db.create_collection(name, **options)
            except CollectionInvalid:
                pass  # it exists already: keep it as it is, as Fluentd does
            except PyMongoError as exc:
                raise RetryableError(f"cannot create capped collection {name}: {exc}") from exc
        if len(self._collections) >= 1024:
            self._collections.clear()
        self._collections[name] = collection
        return collection


class MongodbOutput(MongoOutput):
    """The same output under Logstash's plugin name (`output { mongodb { … } }`)."""

    name = "mongodb"


# ---- helpers -----------------------------------------------------------------------------


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _uri_database(uri: str) -> str | None:
    """The database named in the uri path. mongodb+srv URIs are not resolved here (that
    needs DNS): the path is read textually; plain ones are validated by pymongo's parser."""
    if uri.startswith("mongodb://"):
        try:
            return parse_uri(uri).get("database")
        except (ConfigurationError, ValueError) as exc:
            raise ConfigError(f"bad MongoDB uri: {exc}", setting="uri") from exc
    if uri.startswith("mongodb+srv://"):
        path = urlsplit(uri).path.lstrip("/")
        return unquote(path) or None
    raise ConfigError("the uri must start with mongodb:// or mongodb+srv://", setting="uri")


def _tag_collection(prefix: str) -> Any:
    """Fluentd's tag_mapped: the tag (less `remove_tag_prefix`) names the collection."""
    if not prefix:
        return lambda ev: ev.tag
    strip = prefix if prefix.endswith(".") else prefix + "."

    def name(ev: Event) -> str:
        tag = ev.tag
        return tag[len(strip):] if tag.startswith(strip) and len(tag) > len(strip) else tag

    return name


def _write_concern(w: str | None, journaled: bool | None) -> WriteConcern | None:
    if w is None and journaled is None:
        return None
    value: int | str | None = None
    if w is not None:
        text = w.strip()
        value = int(text) if text.lstrip("-").isdigit() else text
    try:
        return WriteConcern(w=value, j=journaled)
    except (ConfigurationError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad write concern: {exc}", setting="write_concern") from exc


def _encoded(doc: Doc) -> bytes:
    """The document as BSON, or a ValueError saying why BSON cannot carry it."""
    try:
        data = bson_encode(doc)
    except (InvalidDocument, OverflowError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot encode as BSON: {exc}") from exc
    if len(data) > 16 * 1024 * 1024:
        raise ValueError(f"document of {len(data)} bytes exceeds MongoDB's 16MB limit")
    return data
