"""A MongoDB stand-in on mockupdb, MongoDB's wire-protocol test server.

pymongo's AsyncMongoClient talks OP_MSG to it exactly as to mongod. mockupdb 1.8.1 announces
maxWireVersion 6 in its automatic hello reply, which pymongo 4.20 refuses: the peer passes
`max_wire_version=21`. Its string matchers do not see OP_MSG document sections, so the peer
dispatches on `command_name` instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mockupdb import MockupDB, OpMsg

Doc = dict[str, Any]


class MongoPeer:
    """A mockupdb server with a tiny document store behind `insert`, `create` and
    `listCollections`, plus failure switches."""

    def __init__(self, port: int | None = None) -> None:
        self.server = MockupDB(port=port, auto_ismaster=True, max_wire_version=21)
        self.lock = threading.Lock()
        self.collections: dict[tuple[str, str], dict[Any, Doc]] = {}
        self.created: dict[str, Doc] = {}
        self.inserts: list[OpMsg] = []
        self.hangups = 0
        self.command_errors: list[tuple[int, str]] = []
        self.doc_error: Callable[[Doc], tuple[int, str] | None] = lambda doc: None
        self.write_concern_errors = 0
        # A string matcher such as autoresponds("insert", …) does not match pymongo's OP_MSG
        # inserts (their documents travel in a separate section), so dispatch by command name.
        handlers = {"insert": self._insert, "create": self._create, "listCollections": self._list,
                    "endSessions": lambda r: r.ok(), "ping": lambda r: r.ok()}
        self.server.autoresponds(lambda r: r.command_name in handlers and handlers[r.command_name](r))

    @property
    def uri(self) -> str:
        return str(self.server.uri)

    def docs(self, db: str, coll: str) -> list[Doc]:
        with self.lock:
            return list(self.collections.get((db, coll), {}).values())

    def _insert(self, request: OpMsg) -> bool:
        with self.lock:
            self.inserts.append(request)
            if self.hangups:
                self.hangups -= 1
                return bool(request.hangup())
            if self.command_errors:
                code, msg = self.command_errors.pop(0)
                return bool(request.command_err(code=code, errmsg=msg))
            store = self.collections.setdefault((request["$db"], request["insert"]), {})
            errors = []
            n = 0
            for i, doc in enumerate(request.doc.get("documents", [])):
                forced = self.doc_error(doc)
                if forced is not None:
                    errors.append({"index": i, "code": forced[0], "errmsg": forced[1]})
                elif doc["_id"] in store:
                    errors.append({"index": i, "code": 11000, "errmsg": f"E11000 duplicate key error collection: "
                                   f"{request['$db']}.{request['insert']} index: _id_ dup key: "
                                   f"{{ _id: \"{doc['_id']}\" }}"})
                else:
                    store[doc["_id"]] = doc
                    n += 1
            reply: Doc = {"n": n}
            if errors:
                reply["writeErrors"] = errors
            if self.write_concern_errors:
                self.write_concern_errors -= 1
                reply["writeConcernError"] = {"code": 64, "errmsg": "waiting for replication timed out"}
            return bool(request.ok(**reply))

    def _create(self, request: OpMsg) -> bool:
        with self.lock:
            name = request["create"]
            if name in self.created:
                return bool(request.command_err(code=48, errmsg=f"Collection {name} already exists."))
            self.created[name] = dict(request.doc)
            return bool(request.ok())

    def _list(self, request: OpMsg) -> bool:
        with self.lock:
            names = [{"name": n, "type": "collection"} for n in self.created
                     if request.doc.get("filter", {}).get("name") in (None, n)]
        return bool(request.ok(cursor={"id": 0, "ns": f"{request['$db']}.$cmd.listCollections",
                                       "firstBatch": names}))
