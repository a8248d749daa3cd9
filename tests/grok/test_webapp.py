"""The web Grok Debugger: its JSON API, and the page itself in real headless Chromium
(Debian's `chromium`, driven by Playwright) — captures highlighted, the divergence caret,
pattern completion, the URL as state. Screenshots are kept in $LOGPIPE_TEST_ARTIFACTS
(default: the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from logpipe.grok.webapp import build_app, discover_lines, list_patterns, match_lines

CHROMIUM = os.environ.get("LOGPIPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def test_match_reports_spans_of_every_capture_and_the_divergence() -> None:
    doc = match_lines({"pattern": "%{IP:client} %{WORD:[http][method]} %{NUMBER:bytes:int}",
                       "lines": ["55.3.244.1 GET 42", "55.3.244.1 GET many"]})
    hit, miss = doc["results"]
    assert hit["fields"] == {"client": "55.3.244.1", "http": {"method": "GET"}, "bytes": 42}
    assert [(c["field"], c["start"], c["end"]) for c in hit["captures"]] == [
        ("client", 0, 10), ("[http][method]", 11, 14), ("bytes", 15, 17)]
    assert miss["matched"] is False
    assert miss["diagnosis"]["expected"] == "%{NUMBER:bytes:int}" and miss["diagnosis"]["end"] == 15


def test_pattern_errors_custom_patterns_and_ecs() -> None:
    bad = match_lines({"pattern": "%{TIMESTAMP:t}", "lines": ["x"]})
    assert "did you mean %{TIMESTAMP_ISO8601}" in bad["error"]["message"]
    custom = match_lines({"pattern": "%{QUEUEID:id}", "custom": "QUEUEID [0-9A-F]{10}", "lines": ["0123456789"]})
    assert custom["results"][0]["fields"] == {"id": "0123456789"}
    ecs = match_lines({"pattern": "%{HTTPD_COMMONLOG}", "ecs": "v1",
                       "lines": ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326']})
    assert ecs["results"][0]["fields"]["source"]["address"] == "1.2.3.4"


def test_completion_and_ranked_discovery() -> None:
    names = [p["name"] for p in list_patterns("TIMESTAMP")]
    assert names[0] == "TIMESTAMP_ISO8601" and all("TIMESTAMP" in n for n in names)
    ranked = discover_lines({"lines": ["2024-01-23T10:00:00 user=alice 10.0.0.1",
                                       "2024-01-23T10:00:01 user=bob 10.0.0.2", "something else"]})
    assert ranked[0]["matches"] == 2 and ranked[0]["of"] == 3
    assert ranked[0]["pattern"].startswith("%{TIMESTAMP_ISO8601:timestamp}")


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(build_app())) as c:
        yield c


async def test_http_api_refuses_bad_bodies(client: TestClient) -> None:  # type: ignore[type-arg]
    assert (await client.post("/api/match", data=b"not json")).status == 400
    assert (await client.post("/api/match", json=[1])).status == 400
    assert (await client.get("/api/patterns?ecs=nope")).status == 400
    too_many = await client.post("/api/match", json={"pattern": "%{WORD:w}", "lines": ["a"] * 201})
    assert "at most 200" in (await too_many.json())["error"]["message"]
    page = await client.get("/")
    assert page.status == 200 and "Grok Debugger" in await page.text()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    path = Path(os.environ.get("LOGPIPE_TEST_ARTIFACTS", tmp_path))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_the_page_in_a_real_browser(artifacts: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium for this test")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    runner = web.AppRunner(build_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])  # no outbound connections on this network
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            url = (f"http://127.0.0.1:{port}/?pattern=%25%7BIP%3Aclient%7D+%25%7BWORD%3Averb%7D+%25%7BNUMBER%3Abytes%7D"
                   "&line=55.3.244.1+GET+42&line=55.3.244.1+GET+lots")
            await page.goto(url)
            hit = page.locator(".result.hit")
            await hit.wait_for()
            assert await hit.locator('span.cap[data-field="client"]').inner_text() == "55.3.244.1"
            assert await hit.locator('span.cap[data-field="bytes"]').inner_text() == "42"
            miss = page.locator(".result.miss")
            assert "diverges at column 16" in await miss.locator(".status").inner_text()
            assert (await miss.locator(".caret").inner_text()).endswith("^")
            await page.screenshot(path=str(artifacts / "grok-debugger-url-state.png"), full_page=True)

            # Typing: completion of %{TIMES…, Tab accepts, results follow the keystrokes, URL keeps state.
            pattern = page.locator("#pattern")
            await pattern.fill("")
            await page.locator("#lines").fill("2024-01-23T10:00:00 alice")
            await pattern.press_sequentially("%{TIMES")
            first = page.locator("#suggestions div").first
            await first.wait_for()
            assert "TIMESTAMP_ISO8601" in await first.inner_text()
            await page.screenshot(path=str(artifacts / "grok-debugger-completion.png"))
            await pattern.press("Tab")
            assert await pattern.input_value() == "%{TIMESTAMP_ISO8601:}"
            await pattern.press_sequentially("ts")  # the caret waits after the colon, for the field name
            await pattern.press("End")
            await pattern.press_sequentially(" %{WORD:user}")
            await page.wait_for_function(
                "document.querySelector('.result.hit span.cap[data-field=\"user\"]') !== null")
            assert await page.locator('span.cap[data-field="ts"]').inner_text() == "2024-01-23T10:00:00"
            query = parse_qs(urlsplit(page.url).query)
            assert query["pattern"] == ["%{TIMESTAMP_ISO8601:ts} %{WORD:user}"]
            assert query["line"] == ["2024-01-23T10:00:00 alice"]

            # Discovery proposes a pattern; "use" puts it in the pattern box and it matches.
            await page.locator("#lines").fill("10.0.0.1 GET /index.html 200")
            await page.locator("#discover").click()
            await page.locator("#proposals button").first.click()
            await page.wait_for_function("document.querySelector('.result.hit') !== null")
            assert "%{IP:" in await pattern.input_value()
            await page.screenshot(path=str(artifacts / "grok-debugger-discover.png"), full_page=True)
            await browser.close()
    finally:
        await runner.cleanup()
