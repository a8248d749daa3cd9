"""A stand-in for Loki's push endpoint (`POST /loki/api/v1/push`, JSON), answering as
Loki does: 204 when the push is taken; 400 with Loki's text for an invalid label name,
a stream without labels, or (with `reject_out_of_order`, Loki before unordered writes)
an entry older than the newest one accepted for its stream; 429 with a reason while
`rate_limited` is set."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from tests.support.net import free_port

_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class LokiStandin:
    reject_out_of_order: bool = True
    rate_limited: int = 0
    streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = field(default_factory=dict)
    tenants: list[str | None] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/loki/api/v1/push"

    async def _push(self, request: web.Request) -> web.Response:
        if self.rate_limited:
            self.rate_limited -= 1
            return web.Response(status=429, text="Ingestion rate limit exceeded for user fake (limit: 4194304 "
                                                 "bytes/sec) while attempting to ingest '10' lines totaling "
                                                 "'1000' bytes, reduce log volume or contact your Loki "
                                                 "administrator to see if the limit can be increased")
        try:
            body = orjson.loads(await request.read())
            streams = body["streams"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(status=400, text="loghttp.PushRequest: cannot parse")
        accepted = []
        for stream in streams:
            labels = stream.get("stream") or {}
            if not labels:
                return web.Response(status=400, text="error at least one label pair is required per stream")
            for name in labels:
                if not _LABEL.fullmatch(name):
                    return web.Response(status=400, text=f'error parsing labels: invalid label name "{name}"')
            key = tuple(sorted(labels.items()))
            last = self.streams[key][-1][0] if self.streams.get(key) else -1
            for ts, line in stream["values"]:
                t = int(ts)
                if self.reject_out_of_order and t < last:
                    return web.Response(status=400, text=f"entry with timestamp {t} ignored, reason: "
                                                         f"'entry out of order' for stream: {labels}")
                last = max(last, t)
                accepted.append((key, t, line))
        for key, t, line in accepted:
            self.streams.setdefault(key, []).append((t, line))
        self.tenants.append(request.headers.get("X-Scope-OrgID"))
        return web.Response(status=204)

    async def __aenter__(self) -> LokiStandin:
        app = web.Application()
        app.router.add_post("/loki/api/v1/push", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
