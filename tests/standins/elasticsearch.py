"""An Elasticsearch stand-in for tests: speaks the real `/` and `_bulk` HTTP API.

No Elasticsearch can run on the test machine, so this aiohttp server behaves the way
ES does on the wire, strictly enough that the official client accepts it and a wrong
request fails as it would against a server:

- `X-Elastic-Product: Elasticsearch` on every response (switchable off, to see the
  client's product check refuse it);
- REST compatibility headers checked like ES's RestCompatibleVersionHelper: a 9.x
  stand-in accepts `compatible-with=8|9`, an 8.x one `7|8`; Accept and Content-Type
  must agree; anything else is a 400 `media_type_header_exception`;
- `_bulk` NDJSON parsed line by line (index, create, delete, update), the final
  newline required, gzip bodies accepted, per-item results in request order,
  `filter_path` applied to the response;
- index templates (`_index_template` composable, `_template` legacy: PUT, GET, HEAD,
  `?create=true` refusing an existing one), ILM policies (`_ilm/policy`), indices created
  with aliases (`PUT /<logstash-{now/d}-000001>` date math, `is_write_index`), `_alias`
  lookups, and data streams: a `create` into a name whose matching composable template
  has `data_stream` (ES ships `logs-*-*`) makes the stream and its `.ds-` backing index;
  `index` into a stream, or a document without `@timestamp`, is refused as ES refuses it;
  writes to an alias go to its write index;
- a small dynamic mapping per index, so a field first seen as a number and later
  as "abc" is a 400 `document_parsing_exception` with ES's reason text, and
  invalid index names and `_id` inside a document are refused as ES refuses them.

Failure switches (set them on the object from the test): whole-request statuses,
item statuses for the next N items or by predicate, a random 429 storm, delays,
connection resets before or after indexing, and restart (the documents survive,
as with a real node's translog).
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import functools
import random
import re
import socket
import ssl
import struct
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Doc = dict[str, Any]
#: (index, id, source) -> item status to force, or None for normal handling.
ItemRule = Callable[[str, str | None, Doc | None], int | None]

_COMPAT_RE = re.compile(r"compatible-with\s*=\s*(\d+)")
_MEDIA_RE = re.compile(r"^\s*application/(?:vnd\.elasticsearch\+)?(json|x-ndjson)\b")
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')

_ITEM_ERRORS = {
    400: ("illegal_argument_exception", "forced failure"),
    403: ("cluster_block_exception", "index [{index}] blocked by: [FORBIDDEN/8/index write (api)];"),
    404: ("index_not_found_exception", "no such index [{index}]"),
    409: ("version_conflict_engine_exception", "[{id}]: version conflict, document already exists"),
    429: ("es_rejected_execution_exception",
          "rejected execution of coordinating operation [shard_detail=[{index}][0][P]]"),
    500: ("internal_server_error", "forced failure"),
    503: ("unavailable_shards_exception", "[{index}][0] primary shard is not active"),
}
_REQUEST_ERRORS = {
    429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
    500: ("internal_server_error", "forced failure"),
    502: ("bad_gateway", "forced failure"),
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"),
}


@dataclass
class Stats:
    requests: int = 0
    bulk_requests: int = 0
    gzip_requests: int = 0
    items: int = 0
    item_statuses: Counter[int] = field(default_factory=Counter)
    request_statuses: Counter[int] = field(default_factory=Counter)
    resets: int = 0


class ESStandIn:
    """Start with `await es.start()`, point a client at `es.url`, stop with `await es.stop()`."""

    def __init__(self, version: str = "9.1.3", *, product_header: bool = True,
                 basic_auth: tuple[str, str] | None = None, api_key: tuple[str, str] | None = None,
                 seed: int = 1, keep_actions: bool = True, flavor: str = "elasticsearch",
                 tls: tuple[str, str] | None = None, client_ca: str | None = None) -> None:
        #: (certificate, key): serve https; with client_ca, require a client certificate it signed.
        self.tls = tls
        self.client_ca = client_ca
        #: "opensearch": answers as OpenSearch 2.x does (no X-Elastic-Product, its version body,
        #: no REST compatibility media types).
        self.flavor = flavor
        if flavor == "opensearch":
            product_header = False
        self.version = version
        self.major = int(version.split(".")[0])
        self.product_header = product_header
        self.basic_auth = basic_auth
        self.api_key = api_key
        self.indices: dict[str, dict[str, Doc]] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self.mappings: dict[str, dict[str, str]] = {}
        self.stats = Stats()
        self.headers_seen: list[dict[str, str]] = []
        # failure switches
        #: Statuses for the next bulk requests, in turn (None lets that request through).
        self.request_failures: deque[int | None] = deque()
        self.item_failures: deque[int] = deque()
        self.item_rules: list[ItemRule] = []
        self.storm_rate = 0.0
        self.delay = 0.0
        self.reset_before: int = 0
        self.reset_after: int = 0
        self.max_content_length = 100 * 1024 * 1024
        #: Action metadata of every bulk item (`{"_index", "_id", "routing", "pipeline" …}`), in order.
        self.actions: list[Doc] = []
        self.keep_actions = keep_actions
        self.rng = random.Random(seed)
        #: Composable templates by name (ES ships `logs`, matching logs-*-* with data_stream).
        self.templates: dict[str, Doc] = {
            "logs": {"index_patterns": ["logs-*-*"], "priority": 100, "data_stream": {},
                     "composed_of": ["logs-mappings", "logs-settings"]}}
        self.legacy_templates: dict[str, Doc] = {}
        self.policies: dict[str, Doc] = {}
        #: alias -> {index: is_write_index}
        self.aliases: dict[str, dict[str, bool]] = {}
        #: data stream -> backing indices
        self.data_streams: dict[str, list[str]] = {}
        self.index_settings: dict[str, Doc] = {}
        self.bulk_done = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*self.tls)
        if self.client_ca:
            ctx.load_verify_locations(self.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def start(self) -> None:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("GET", "/", self._info)
        app.router.add_route("HEAD", "/", self._info)
        for method in ("POST", "PUT"):
            app.router.add_route(method, "/_bulk", self._bulk)
            app.router.add_route(method, "/{index}/_bulk", self._bulk)
        for kind in ("_index_template", "_template"):
            app.router.add_route("*", "/" + kind + "/{name}", functools.partial(self._template, kind))
        app.router.add_route("*", "/_ilm/policy/{name}", self._policy)
        app.router.add_route("*", "/_alias/{name}", self._alias)
        app.router.add_route("GET", "/_data_stream/{name}", self._data_stream)
        app.router.add_route("PUT", "/{index:<.+>}", self._create_index)  # date math holds a /
        app.router.add_route("PUT", "/{index}", self._create_index)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True, ssl_context=self._ssl_context())
        await site.start()
        if not self.port:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self, down_for: float = 0.0) -> None:
        """Drop every connection and the listening socket, stay down, come back on the same port."""
        await self.stop()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()

    # ---- queries for assertions --------------------------------------------------------

    def docs(self, index: str | None = None) -> list[Doc]:
        if index is not None:
            names = self.data_streams.get(index) or list(self.aliases.get(index, {})) or [index]
            return [d for name in names for d in self.indices.get(name, {}).values()]
        return [d for docs in self.indices.values() for d in docs.values()]

    def count(self) -> int:
        return sum(len(d) for d in self.indices.values())

    async def wait_for_count(self, n: int, timeout: float = 10.0) -> None:
        async def enough() -> None:
            async with self.bulk_done:
                await self.bulk_done.wait_for(lambda: self.count() >= n)

        await asyncio.wait_for(enough(), timeout)

    # ---- HTTP plumbing -----------------------------------------------------------------

    def _reply(self, request: web.Request, status: int, body: Any, compat: int | None) -> web.Response:
        headers = {}
        if self.product_header:
            headers["X-Elastic-Product"] = "Elasticsearch"
        mime = f"application/vnd.elasticsearch+json;compatible-with={compat}" if compat else "application/json"
        self.stats.request_statuses[status] += 1
        data = b"" if request.method == "HEAD" else orjson.dumps(body)
        return web.Response(status=status, body=data, headers={**headers, "Content-Type": mime})

    def _error(self, request: web.Request, status: int, etype: str, reason: str, compat: int | None,
               caused_by: Doc | None = None) -> web.Response:
        error: Doc = {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason}
        if caused_by:
            error["caused_by"] = caused_by
        return self._reply(request, status, {"error": error, "status": status}, compat)

    def _check_headers(self, request: web.Request, has_body: bool) -> tuple[int | None, web.Response | None]:
        """REST compatibility as ES checks it; returns (compat version, error response)."""
        self.headers_seen.append(dict(request.headers))
        if self.flavor == "opensearch":
            return None, None  # OpenSearch has no REST compatibility media types to check
        accept = request.headers.get("Accept", "")
        ctype = request.headers.get("Content-Type", "") if has_body else ""
        a = _COMPAT_RE.search(accept)
        c = _COMPAT_RE.search(ctype)
        av = int(a.group(1)) if a else None
        cv = int(c.group(1)) if c else None
        allowed = (self.major, self.major - 1)
        problem = None
        if av is not None and av not in allowed:
            problem = f"Accept version must be either version {self.major} or {self.major - 1}, but found {av}. " \
                      f"Accept={accept}"
        elif cv is not None and cv not in allowed:
            problem = f"Content-Type version must be either version {self.major} or {self.major - 1}, " \
                      f"but found {cv}. Content-Type={ctype}"
        elif has_body and (av is None) != (cv is None) and accept not in ("", "*/*"):
            problem = "A compatible version is required on both Content-Type and Accept headers if either one " \
                      f"has requested a compatible version. Accept={accept}, Content-Type={ctype}"
        elif av is not None and cv is not None and av != cv:
            problem = "Content-Type and Accept headers have to match when content is present. " \
                      f"Accept={accept} Content-Type={ctype}"
        if problem:
            resp = self._error(request, 400, "media_type_header_exception",
                               "Invalid media-type value on headers [Accept, Content-Type]", None,
                               {"type": "status_exception", "reason": problem})
            return None, resp
        if has_body and ctype and not _MEDIA_RE.match(ctype):
            return None, self._error(request, 406, "media_type_header_exception",
                                     f"Content-Type header [{ctype}] is not supported", None)
        return av or cv, None

    def _check_auth(self, request: web.Request, compat: int | None) -> web.Response | None:
        if self.basic_auth is None and self.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        ok = False
        if self.basic_auth is not None and header.startswith("Basic "):
            ok = base64.b64decode(header[6:]).decode() == ":".join(self.basic_auth)
        if self.api_key is not None and header.startswith("ApiKey "):
            ok = base64.b64decode(header[7:]).decode() == ":".join(self.api_key)
        if ok:
            return None
        return self._error(request, 401, "security_exception",
                           "missing authentication credentials for REST request [/_bulk]", compat)

    async def _info(self, request: web.Request) -> web.Response:
        self.stats.requests += 1
        compat, bad = self._check_headers(request, has_body=False)
        if bad is not None:
            return bad
        denied = self._check_auth(request, compat)
        if denied is not None:
            return denied
        if self.flavor == "opensearch":
            return self._reply(request, 200, {
                "name": "standin-node", "cluster_name": "standin", "cluster_uuid": "sTaNdInClUsTeRuUiD000",
                "version": {"distribution": "opensearch", "number": self.version, "build_type": "tar",
                            "lucene_version": "9.12.1", "minimum_wire_compatibility_version": "7.10.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "The OpenSearch Project: https://opensearch.org/"}, compat)
        body = {
            "name": "standin-node", "cluster_name": "standin", "cluster_uuid": "sTaNdInClUsTeRuUiD000",
            "version": {"number": self.version, "build_flavor": "default", "build_type": "docker",
                        "lucene_version": "10.0.0" if self.major >= 9 else "9.12.0",
                        "minimum_wire_compatibility_version": f"{self.major - 1}.18.0",
                        "minimum_index_compatibility_version": f"{self.major - 1}.0.0"},
            "tagline": "You Know, for Search",
        }
        return self._reply(request, 200, body, compat)

    # ---- templates, ILM, aliases, data streams -----------------------------------------

    async def _admin(self, request: web.Request) -> tuple[int | None, web.Response | None, Doc | None]:
        """Headers, auth and the JSON body of an admin request."""
        self.stats.requests += 1
        has_body = request.can_read_body
        compat, bad = self._check_headers(request, has_body=has_body)
        if bad is None:
            bad = self._check_auth(request, compat)
        if bad is not None or not has_body:
            return compat, bad, None
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return compat, self._error(request, 400, "x_content_parse_exception", f"[1:1] {exc}", compat), None
        return compat, None, body if isinstance(body, dict) else {}

    async def _template(self, kind: str, request: web.Request) -> web.Response:
        compat, bad, body = await self._admin(request)
        if bad is not None:
            return bad
        name = request.match_info["name"]
        store = self.templates if kind == "_index_template" else self.legacy_templates
        if request.method == "PUT" or request.method == "POST":
            if request.query.get("create") == "true" and name in store:
                return self._error(request, 400, "illegal_argument_exception",
                                   f"index template [{name}] already exists", compat)
            if not body or "index_patterns" not in body:
                return self._error(request, 400, "action_request_validation_exception",
                                   "Validation Failed: 1: index patterns are missing;", compat)
            misplaced = next((k for k in ("settings", "mappings") if k in body), None)
            if kind == "_index_template" and misplaced:
                return self._error(request, 400, "x_content_parse_exception",
                                   f"[1:2] [index_template] unknown field [{misplaced}]", compat)
            store[name] = body
            return self._reply(request, 200, {"acknowledged": True}, compat)
        if request.method == "DELETE" and name in store:
            del store[name]
            return self._reply(request, 200, {"acknowledged": True}, compat)
        if name not in store:
            if request.method == "HEAD":
                return self._reply(request, 404, {}, compat)
            return self._error(request, 404, "resource_not_found_exception",
                               f"index template matching [{name}] not found", compat)
        if request.method == "HEAD":
            return self._reply(request, 200, {}, compat)
        if kind == "_index_template":
            return self._reply(request, 200, {"index_templates": [{"name": name, "index_template": store[name]}]},
                               compat)
        return self._reply(request, 200, {name: store[name]}, compat)

    async def _policy(self, request: web.Request) -> web.Response:
        compat, bad, body = await self._admin(request)
        if bad is not None:
            return bad
        name = request.match_info["name"]
        if request.method == "PUT":
            if not body or not isinstance(body.get("policy"), dict):
                return self._error(request, 400, "parse_exception", "request body is required", compat)
            version = self.policies.get(name, {}).get("version", 0) + 1
            self.policies[name] = {"version": version, "modified_date": "2026-01-01T00:00:00.000Z",
                                   "policy": body["policy"]}
            return self._reply(request, 200, {"acknowledged": True}, compat)
        if name not in self.policies:
            return self._error(request, 404, "resource_not_found_exception", f"Lifecycle policy not found: {name}",
                               compat)
        return self._reply(request, 200, {name: self.policies[name]}, compat)

    async def _alias(self, request: web.Request) -> web.Response:
        compat, bad, _ = await self._admin(request)
        if bad is not None:
            return bad
        name = request.match_info["name"]
        members = self.aliases.get(name)
        if not members:
            if request.method == "HEAD":
                return self._reply(request, 404, {}, compat)
            return self._reply(request, 404, {"error": f"alias [{name}] missing", "status": 404}, compat)
        return self._reply(request, 200, {index: {"aliases": {name: {"is_write_index": w} if w else {}}}
                                          for index, w in members.items()}, compat)

    async def _data_stream(self, request: web.Request) -> web.Response:
        compat, bad, _ = await self._admin(request)
        if bad is not None:
            return bad
        name = request.match_info["name"]
        if name not in self.data_streams:
            return self._error(request, 404, "index_not_found_exception", f"no such index [{name}]", compat)
        backing = self.data_streams[name]
        template = self._matching_template(name)
        return self._reply(request, 200, {"data_streams": [{
            "name": name, "timestamp_field": {"name": "@timestamp"},
            "indices": [{"index_name": i, "index_uuid": uuid.uuid5(uuid.NAMESPACE_DNS, i).hex} for i in backing],
            "generation": len(backing), "status": "GREEN", "template": template[0] if template else None,
            "hidden": False, "system": False}]}, compat)

    async def _create_index(self, request: web.Request) -> web.Response:
        compat, bad, body = await self._admin(request)
        if bad is not None:
            return bad
        name = resolve_date_math(request.match_info["index"])
        problem = _index_name_problem(name)
        if problem:
            return self._error(request, 400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}",
                               compat)
        if name in self.aliases:
            return self._error(request, 400, "invalid_index_name_exception",
                               f"Invalid index name [{name}], already exists as alias", compat)
        if name in self.indices:
            return self._error(request, 400, "resource_already_exists_exception",
                               f"index [{name}/{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:22]}] already exists",
                               compat)
        for alias, spec in ((body or {}).get("aliases") or {}).items():
            if alias in self.indices:
                return self._error(request, 400, "invalid_alias_name_exception",
                                   f"Invalid alias name [{alias}]: an index or data stream exists with the same name "
                                   "as the alias", compat)
            self.aliases.setdefault(alias, {})[name] = bool((spec or {}).get("is_write_index"))
        self._new_index(name)
        return self._reply(request, 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}, compat)

    def _new_index(self, name: str) -> None:
        """An index, with the settings of the templates that match it (composable first)."""
        self.indices.setdefault(name, {})
        settings: Doc = {}
        for legacy in sorted(self.legacy_templates.values(), key=lambda t: t.get("order", 0)):
            if any(fnmatch.fnmatchcase(name, p) for p in _patterns(legacy)):
                settings.update(legacy.get("settings") or {})
        match = self._matching_template(name)
        if match is not None:
            settings = dict((match[1].get("template") or {}).get("settings") or {})
        self.index_settings[name] = settings

    def _matching_template(self, name: str) -> tuple[str, Doc] | None:
        """The composable template ES applies: the matching one of highest priority."""
        found = [(t.get("priority", 0), n, t) for n, t in self.templates.items()
                 if any(fnmatch.fnmatchcase(name, p) for p in _patterns(t))]
        if not found:
            return None
        _, tname, template = max(found, key=lambda f: (f[0], f[1]))
        return tname, template

    def _resolve(self, op: _Op) -> tuple[str | None, Doc | None]:
        """The concrete index a bulk item writes to, or an item error (as ES words it)."""
        name = op.index
        members = self.aliases.get(name)
        if members:
            writers = [i for i, w in members.items() if w] or (list(members) if len(members) == 1 else [])
            if not writers:
                return None, {"type": "illegal_argument_exception", "reason": f"no write index is defined for alias "
                              f"[{name}]. The write index may be explicitly disabled using is_write_index=false "
                              "or the alias points to multiple indices without one being designated as a write index"}
            return writers[0], None
        stream = self.data_streams.get(name)
        if stream is None and name not in self.indices:
            match = self._matching_template(name)
            if match is not None and "data_stream" in match[1]:
                if op.action != "create":
                    return None, {"type": "illegal_argument_exception",
                                  "reason": "only write ops with an op_type of create are allowed in data streams"}
                stream = self.data_streams[name] = [f".ds-{name}-{time.strftime('%Y.%m.%d', time.gmtime())}-000001"]
                self._new_index(stream[0])
        if stream is not None:
            if op.action not in ("create", "delete"):
                return None, {"type": "illegal_argument_exception",
                              "reason": "only write ops with an op_type of create are allowed in data streams"}
            if op.source is not None and "@timestamp" not in op.source:
                return None, {"type": "document_parsing_exception",
                              "reason": "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
                              "caused_by": {"type": "illegal_argument_exception",
                                            "reason": "data stream timestamp field [@timestamp] is missing"}}
            return stream[-1], None
        if name not in self.indices:
            self._new_index(name)
        return name, None

    async def _unknown(self, request: web.Request) -> web.Response:
        self.stats.requests += 1
        return self._error(request, 400, "illegal_argument_exception",
                           f"request [{request.path}] contains unrecognized parameter or path", None)

    def _reset(self, request: web.Request) -> None:
        """Close the connection with a TCP RST, as a crashed or unplugged node does."""
        self.stats.resets += 1
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

    # ---- _bulk -------------------------------------------------------------------------

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        self.stats.bulk_requests += 1
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            self.stats.gzip_requests += 1
        compat, bad = self._check_headers(request, has_body=True)
        if bad is not None:
            return bad
        denied = self._check_auth(request, compat)
        if denied is not None:
            return denied
        if (request.content_length or 0) > self.max_content_length:
            self.stats.request_statuses[413] += 1
            return web.Response(status=413, headers={"X-Elastic-Product": "Elasticsearch"} if self.product_header
                                else {})
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reset_before > 0:
            self.reset_before -= 1
            self._reset(request)
            return web.Response(status=500)
        status = self.request_failures.popleft() if self.request_failures else None
        if status is not None:
            etype, reason = _REQUEST_ERRORS.get(status, ("internal_server_error", "forced failure"))
            return self._error(request, status, etype, reason, compat)
        if not body:
            return self._error(request, 400, "parse_exception", "request body is required", compat)
        if not body.endswith(b"\n"):
            return self._error(request, 400, "illegal_argument_exception",
                               "The bulk request must be terminated by a newline [\\n]", compat)
        try:
            ops = _parse_bulk(body, request.match_info.get("index"))
        except ValueError as exc:
            return self._error(request, 400, "illegal_argument_exception", str(exc), compat)
        started = time.monotonic()
        items = [self._apply(op) for op in ops]
        async with self.bulk_done:
            self.bulk_done.notify_all()
        if self.reset_after > 0:
            self.reset_after -= 1
            self._reset(request)
            return web.Response(status=500)
        errors = any("error" in next(iter(i.values())) for i in items)
        response: Doc = {"errors": errors, "took": int((time.monotonic() - started) * 1000), "items": items}
        filter_path = request.query.get("filter_path")
        if filter_path:
            response = _filter(response, [p.split(".") for p in filter_path.split(",") if p])
        return self._reply(request, 200, response, compat)

    def _forced_status(self, index: str, doc_id: str | None, source: Doc | None) -> int | None:
        if self.item_failures:
            return self.item_failures.popleft()
        for rule in self.item_rules:
            status = rule(index, doc_id, source)
            if status is not None:
                return status
        if self.storm_rate and self.rng.random() < self.storm_rate:
            return 429
        return None

    def _apply(self, op: _Op) -> Doc:
        self.stats.items += 1
        if self.keep_actions:
            self.actions.append(op.meta)
        result = self._apply_inner(op)
        self.stats.item_statuses[result["status"]] += 1
        return {op.action: result}

    def _apply_inner(self, op: _Op) -> Doc:
        index, doc_id = op.index, op.doc_id
        head: Doc = {"_index": index, "_id": doc_id}
        if op.parse_error is not None:
            return _item_error(head, 400, "document_parsing_exception", f"[1:1] failed to parse: {op.parse_error}")
        bad_name = _index_name_problem(index)
        if bad_name:
            return _item_error(head, 400, "invalid_index_name_exception", f"Invalid index name [{index}], {bad_name}")
        forced = self._forced_status(index, doc_id, op.source)
        if forced is not None:
            etype, reason = _ITEM_ERRORS.get(forced, ("exception", "forced failure"))
            return _item_error(head, forced, etype, reason.format(index=index, id=doc_id))
        concrete, refused = self._resolve(op)
        if refused is not None or concrete is None:
            refused = refused or {}
            return _item_error(head, 400, refused.get("type", "illegal_argument_exception"),
                               refused.get("reason", ""), refused.get("caused_by"))
        index = head["_index"] = concrete
        docs = self.indices.setdefault(index, {})
        if op.action == "delete":
            if doc_id in docs:
                del docs[doc_id]
                return {**head, "result": "deleted", "status": 200}
            return {**head, "result": "not_found", "status": 404}
        if op.action == "update":
            assert op.source is not None
            partial = op.source.get("doc") or {}
            if doc_id not in docs:
                if op.source.get("doc_as_upsert"):
                    source = partial
                elif isinstance(op.source.get("upsert"), dict):
                    source = op.source["upsert"]
                else:
                    return _item_error(head, 404, "document_missing_exception", f"[{doc_id}]: document missing")
            else:
                source = {**docs[doc_id], **partial}
        else:
            assert op.source is not None
            source = op.source
        if "_id" in source:
            return _item_error(head, 400, "document_parsing_exception",
                               "[1:7] Field [_id] is a metadata field and cannot be added inside a document. "
                               "Use the index API request parameters.")
        problem = _check_mapping(self.mappings.setdefault(index, {}), source, doc_id)
        if problem is not None:
            return _item_error(head, 400, "document_parsing_exception", problem[0],
                               {"type": "illegal_argument_exception", "reason": problem[1]})
        if doc_id is None:
            doc_id = head["_id"] = uuid.uuid4().hex[:20]
        if op.action == "create" and doc_id in docs:
            return _item_error(head, 409, "version_conflict_engine_exception",
                               f"[{doc_id}]: version conflict, document already exists (current version "
                               f"[{self.versions[(index, doc_id)]}])")
        existed = doc_id in docs
        docs[doc_id] = source
        version = self.versions[(index, doc_id)] = self.versions.get((index, doc_id), 0) + 1
        return {**head, "_version": version, "result": "updated" if existed else "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": self.stats.items,
                "_primary_term": 1, "status": 200 if existed else 201}


@dataclass(slots=True)
class _Op:
    action: str
    index: str
    doc_id: str | None
    source: Doc | None
    meta: Doc
    parse_error: str | None = None


def _patterns(template: Doc) -> list[str]:
    patterns = template.get("index_patterns") or []
    return [patterns] if isinstance(patterns, str) else list(patterns)


_DATE_MATH = re.compile(r"\{now(?:/([dMyHwm]))?(?:\{([^}|]*)(?:\|[^}]*)?\})?\}")
_JODA = (("yyyy", "%Y"), ("YYYY", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"))


def resolve_date_math(name: str) -> str:
    """`<logstash-{now/d}-000001>` → `logstash-2026.12.02-000001` (UTC), as ES resolves index names."""
    if not (name.startswith("<") and name.endswith(">")):
        return name

    def date(match: re.Match[str]) -> str:
        fmt = match.group(2) or "yyyy.MM.dd"
        for joda, strf in _JODA:
            fmt = fmt.replace(joda, strf)
        return time.strftime(fmt, time.gmtime())

    return _DATE_MATH.sub(date, name[1:-1])


def _parse_bulk(body: bytes, path_index: str | None) -> list[_Op]:
    """NDJSON as ES reads it: an action line, then a source line for index/create/update.
    A malformed action line fails the whole request; a malformed source only its item."""
    lines = body.split(b"\n")
    ops: list[_Op] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        try:
            action_doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"Malformed action/metadata line [{len(ops) + 1}], {exc}") from exc
        if not isinstance(action_doc, dict) or len(action_doc) != 1:
            raise ValueError(f"Malformed action/metadata line [{len(ops) + 1}], expected a simple value "
                             f"for field [{next(iter(action_doc), '')}] but found [START_OBJECT]")
        action, meta = next(iter(action_doc.items()))
        if action not in ("index", "create", "delete", "update"):
            raise ValueError(f"Malformed action/metadata line [{len(ops) + 1}], expected one of [create, delete, "
                             f"index, update] but found [{action}]")
        index = meta.get("_index") or path_index
        if not index:
            raise ValueError("Validation Failed: 1: index is missing;")
        doc_id = meta.get("_id")
        if action in ("delete", "update") and doc_id is None:
            raise ValueError("Validation Failed: 1: id is missing;")
        if action == "delete":
            ops.append(_Op(action, index, doc_id, None, meta))
            continue
        if i >= n or not lines[i].strip():
            raise ValueError("The bulk request must be terminated by a newline [\\n]")
        raw = lines[i]
        i += 1
        try:
            source = orjson.loads(raw)
            if not isinstance(source, dict):
                raise orjson.JSONDecodeError("not an object", raw.decode("utf-8", "replace"), 0)
            ops.append(_Op(action, index, None if doc_id is None else str(doc_id), source, meta))
        except orjson.JSONDecodeError as exc:
            ops.append(_Op(action, index, None if doc_id is None else str(doc_id), None, meta, str(exc)))
    return ops


def _item_error(head: Doc, status: int, etype: str, reason: str, caused_by: Doc | None = None) -> Doc:
    error: Doc = {"type": etype, "reason": reason}
    if caused_by:
        error["caused_by"] = caused_by
    return {**head, "status": status, "error": error}


def _index_name_problem(name: str) -> str | None:
    if name != name.lower():
        return "must be lowercase"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if any(c in _BAD_INDEX_CHARS for c in name):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict):
        return "object"
    return "text"


def _check_mapping(mapping: dict[str, str], source: Doc, doc_id: str | None, prefix: str = "") -> \
        tuple[str, str] | None:
    """Dynamic mapping, the part that produces real-world rejections: a field keeps the
    type it was first seen with; values that cannot be coerced to it are refused."""
    for key, value in source.items():
        path = prefix + key
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            kind = _kind(v)
            known = mapping.get(path)
            if known is None:
                mapping[path] = kind
                known = kind
            problem = _coerce_problem(known, kind, v, path, doc_id)
            if problem is not None:
                return problem
            if kind == "object":
                nested = _check_mapping(mapping, v, doc_id, path + ".")
                if nested is not None:
                    return nested
    return None


def _coerce_problem(known: str, kind: str, value: Any, path: str, doc_id: str | None) -> tuple[str, str] | None:
    preview = str(value)[:20]
    head = f"[1:2] failed to parse field [{path}] of type [{known}] in document with id '{doc_id}'. " \
           f"Preview of field's value: '{preview}'"
    if known == "object" and kind != "object":
        reason = f"[1:2] object mapping for [{path}] tried to parse field [{path}] as object, " \
                 "but found a concrete value"
        return reason, "concrete value for object"
    if kind == "object" and known != "object":
        return head, f"Can't get text on a START_OBJECT at 1:{len(path) + 5}"
    if known in ("long", "float"):
        if kind in ("long", "float"):
            return None
        try:
            float(value)
        except (TypeError, ValueError):
            return head, f'For input string: "{value}"'
        return None
    if known == "boolean" and kind != "boolean" and value not in ("true", "false"):
        return head, f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    return None


@functools.lru_cache(maxsize=4096)
def _key_matches(key: str, pattern: str) -> bool:
    return pattern == "**" or fnmatch.fnmatchcase(key, pattern)


def _filter(value: Any, patterns: list[list[str]]) -> Any:
    """ES's `filter_path` (include filters, `*` wildcards, arrays transparent)."""
    if isinstance(value, list):
        kept = [_filter(v, patterns) for v in value]
        return [v for v in kept if v not in (None, {}, [])]
    if not isinstance(value, dict):
        return value
    out: Doc = {}
    for key, v in value.items():
        rest = [p[1:] for p in patterns if p and _key_matches(key, p[0])]
        if not rest:
            continue
        if any(not r for r in rest):
            out[key] = v
            continue
        sub = _filter(v, rest)
        if sub not in (None, {}, []) and isinstance(v, (dict, list)):
            out[key] = sub
    return out
