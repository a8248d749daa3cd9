"""An HTTP endpoint that records what it is sent and answers as scripted: the receiving end
of the http output's tests (a log collector's intake as Logstash's http input or a SaaS
endpoint would answer: 200, or 429/503 with Retry-After, or 400 with a reason)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tests.support.net import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpSink:
    """`script` holds (status, headers, body) answers used in turn; afterwards 200."""

    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip, as real intakes do
        self.received.append(Received(request.method, request.path_qs, dict(request.headers), body))
        if self.script:
            status, headers, text = self.script.pop(0)
            return web.Response(status=status, headers=headers, text=text)
        return web.Response(status=200, text="ok")

    async def __aenter__(self) -> HttpSink:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
