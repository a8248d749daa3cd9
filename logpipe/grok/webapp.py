"""The web Grok Debugger: `logpipe grok --serve [--port N]`.

Kibana's Grok Debugger shows the captures of one line; GrokConstructor proposes patterns.
This page does both, for several lines at once, on the same engine the pipeline runs
(so a pattern that matches here matches in production): every capture highlighted in its
line as you type, the divergence caret and the longest matching part of the pattern for a
miss, pattern-name completion with definitions, ECS on/off, custom patterns, `--discover`
proposals ranked by how many sample lines they match, and the whole state in the URL
(`/?pattern=…&line=…&line=…&ecs=v1`) to share.

The page is one static HTML file with its script inline (logpipe/grok/static/): nothing to
build at install time. The JSON API it calls is small and pure (`match`, `patterns`,
`discover`), tested without a browser; the page is tested in real Chromium. It listens on
127.0.0.1 by default and runs each match under the grok timeout, with bounded request sizes:
it evaluates user regexes, so it must stay a local tool unless you mean otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
from typing import Any

from aiohttp import web

from logpipe.errors import LogpipeError
from logpipe.grok.diagnose import diagnose
from logpipe.grok.discover import discover
from logpipe.grok.engine import Grok, cached_compile, definitions_for
from logpipe.grok.errors import GrokError, GrokTimeout
from logpipe.grok.library import parse_pattern_text

MAX_BODY = 1024 * 1024
MAX_LINES = 200
MAX_LINE = 64 * 1024
MATCH_TIMEOUT = 2.0


def _options(doc: dict[str, Any]) -> dict[str, Any]:
    ecs = doc.get("ecs") or "disabled"
    if ecs not in ("disabled", "v1", "v8"):
        raise GrokError(f"ecs must be disabled, v1 or v8, not {ecs!r}")
    custom = str(doc.get("custom") or "")
    definitions = parse_pattern_text(custom, "custom patterns") if custom.strip() else {}
    return {"ecs_compatibility": ecs, "pattern_definitions": definitions}


def _lines(doc: dict[str, Any]) -> list[str]:
    lines = doc.get("lines") or []
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise GrokError(f"lines must be a list of at most {MAX_LINES} strings")
    return [str(line)[:MAX_LINE] for line in lines]


def match_lines(doc: dict[str, Any]) -> dict[str, Any]:
    """{"pattern", "lines", "ecs", "custom"} → per line: captures with their spans, or the diagnosis."""
    options = _options(doc)
    pattern = str(doc.get("pattern") or "")
    if not pattern:
        return {"error": None, "results": []}
    try:
        grok = Grok(pattern, timeout=MATCH_TIMEOUT, **options)
        compiled = cached_compile(pattern, **options)
    except GrokError as exc:
        return {"error": {"message": exc.reason, "position": exc.position}, "results": []}
    results = []
    for line in _lines(doc):
        results.append(_match_one(grok, compiled, pattern, line, options))
    return {"error": None, "results": results}


def _match_one(grok: Grok, compiled: Any, pattern: str, line: str, options: dict[str, Any]) -> dict[str, Any]:
    try:
        fields = grok.match(line)
    except GrokTimeout:
        return {"line": line, "matched": False, "timeout": True}
    if fields is None:
        try:
            d = diagnose(pattern, line, **options)
            diagnosis = {"prefix": d.prefix, "expected": d.expected, "start": d.start, "end": d.end,
                         "via": list(d.via)}
        except (GrokError, GrokTimeout):
            diagnosis = None
        return {"line": line, "matched": False, "diagnosis": diagnosis}
    m = compiled.regex.search(line)
    spans = []
    if m is not None:
        for entry in compiled.entries:
            start, end = m.span(entry.group)
            if start >= 0:
                spans.append({"field": entry.field, "type": entry.type, "start": start, "end": end,
                              "value": line[start:end]})
    return {"line": line, "matched": True, "fields": fields, "captures": spans}


def list_patterns(prefix: str, ecs: str = "disabled", limit: int = 50) -> list[dict[str, str]]:
    """Library names starting with `prefix` (then containing it), with their definitions."""
    defs = definitions_for(ecs)
    upper = prefix.upper()
    names = sorted(n for n in defs if n.startswith(upper))
    names += sorted(n for n in defs if upper in n and not n.startswith(upper))
    return [{"name": n, "definition": defs[n]} for n in names[:limit]]


def discover_lines(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One proposal per distinct sample line, ranked by how many of the lines it matches whole."""
    options = _options(doc)
    lines = [line for line in _lines(doc) if line.strip()]
    proposals: dict[str, int] = {}
    for line in lines[:20]:
        with contextlib.suppress(GrokError, GrokTimeout):
            proposals.setdefault(discover(line, options["ecs_compatibility"]).pattern, 0)
    ranked: list[tuple[int, str]] = []
    for pattern in proposals:
        try:
            # Whole lines only: unanchored, any short proposal would "match" every line.
            grok = Grok(f"^{pattern}$", timeout=MATCH_TIMEOUT, **options)
            hits = sum(1 for line in lines if _safe_match(grok, line))
        except GrokError:
            continue
        ranked.append((hits, pattern))
    ranked.sort(key=lambda p: (-p[0], len(p[1])))
    return [{"pattern": pattern, "matches": hits, "of": len(lines)} for hits, pattern in ranked]


def _safe_match(grok: Grok, line: str) -> bool:
    try:
        return grok.match(line) is not None
    except GrokTimeout:
        return False


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return doc


def _page() -> str:
    return importlib.resources.files("logpipe.grok").joinpath("static/index.html").read_text("utf-8")


def build_app() -> web.Application:
    """The aiohttp application: the page and its three JSON endpoints."""
    page = _page()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def api_match(request: web.Request) -> web.Response:
        doc = await _json_body(request)
        try:
            result = await asyncio.to_thread(match_lines, doc)
        except GrokError as exc:
            return web.json_response({"error": {"message": exc.reason, "position": exc.position}, "results": []})
        return web.json_response(result)

    async def api_patterns(request: web.Request) -> web.Response:
        ecs = request.query.get("ecs", "disabled")
        if ecs not in ("disabled", "v1", "v8"):
            raise web.HTTPBadRequest(text="ecs must be disabled, v1 or v8")
        return web.json_response(list_patterns(request.query.get("prefix", ""), ecs))

    async def api_discover(request: web.Request) -> web.Response:
        doc = await _json_body(request)
        try:
            return web.json_response(await asyncio.to_thread(discover_lines, doc))
        except GrokError as exc:
            raise web.HTTPBadRequest(text=exc.reason) from None

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/", index)
    app.router.add_post("/api/match", api_match)
    app.router.add_get("/api/patterns", api_patterns)
    app.router.add_post("/api/discover", api_discover)
    return app


async def serve(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    """Run until cancelled; prints the URL once listening (port 0 picks a free one)."""
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except (OSError, OverflowError) as exc:  # in use, no such address, out of range (embedders)
        await runner.cleanup()
        raise LogpipeError(f"cannot listen on {host}:{port}: {exc}") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"Grok Debugger on http://{host}:{bound}/  (Ctrl-C stops it)", flush=True)
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
