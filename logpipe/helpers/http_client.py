"""What the HTTP-speaking outputs (http, loki) share: one aiohttp session per output, the
auth and TLS settings, and the reading of a reply into delivered / retry / dead-letter.

The rule, as Logstash's http output and Fluent Bit have it: 2xx is delivered; 429, 5xx
(and `retryable_codes`) are retried, after the server's `Retry-After` when it sends one
(capped by `retry_after_max`); another 4xx will not get better and is dead-lettered with
the status and the start of the response body; connection failures and timeouts retry.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import time
from dataclasses import dataclass
from typing import ClassVar

import aiohttp

from logpipe.helpers.tls import TlsClient
from logpipe.plugin import Helper, Plugin, RetryableError, Setting

#: How much of a refusing server's body goes into the dead-letter reason.
BODY_EXCERPT = 512


class HttpClient(Helper):
    settings: ClassVar[list[Setting]] = [
        Setting("headers", "hash", default={}, doc="extra request headers"),
        Setting("user", "string", spellings=("http_user", "username"), doc="basic auth user"),
        Setting("password", "string", secret=True, spellings=("http_passwd",), doc="basic auth password"),
        Setting("bearer_token", "string", secret=True, doc="sent as `Authorization: Bearer <token>`"),
        Setting("request_timeout", "duration", default=60.0, min=0.001, spellings=("read_timeout",),
                doc="time allowed for one request"),
        Setting("connect_timeout", "duration", default=10.0, min=0.001, spellings=("open_timeout",),
                doc="time allowed to connect"),
        Setting("retryable_codes", "array", default=[429, 500, 502, 503, 504],
                doc="statuses retried (besides every 5xx)"),
        Setting("ignorable_codes", "array", default=[], doc="statuses counted as delivered"),
        Setting("retry_after_max", "duration", default=60.0, min=0, doc="longest Retry-After honoured"),
        Setting("pool_max", "int", default=50, min=1, doc="concurrent connections"),
    ]

    @classmethod
    def settings_for(cls, plugin: type[Plugin]) -> list[Setting]:
        return list(cls.settings) + TlsClient.settings_for(plugin)


@dataclass
class Reply:
    status: int
    body: str
    retry_after: float | None


class HttpSession:
    """The session and request rules of one HTTP output."""

    def __init__(self, plugin: Plugin) -> None:
        p = plugin.params
        self._headers: dict[str, str] = {str(k): str(v) for k, v in p["headers"].items()}
        if p["bearer_token"]:
            self._headers["Authorization"] = f"Bearer {p['bearer_token']}"
        elif p["user"] is not None:
            token = base64.b64encode(f"{p['user']}:{p['password'] or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._timeout = aiohttp.ClientTimeout(total=p["request_timeout"], sock_connect=p["connect_timeout"])
        self._ssl = TlsClient.context(plugin)
        self._pool = p["pool_max"]
        self.retryable = {int(c) for c in p["retryable_codes"]}
        self.ignorable = {int(c) for c in p["ignorable_codes"]}
        self.retry_after_max: float = p["retry_after_max"]
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        """One request; connection failures raise RetryableError."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool, ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        try:
            async with self._session.request(method, url, data=body, headers={**self._headers, **headers}) as resp:
                text = (await resp.content.read(BODY_EXCERPT)).decode("utf-8", "replace")
                return Reply(resp.status, text, _retry_after(resp.headers.get("Retry-After")))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableError(f"{method} {url}: {type(exc).__name__}: {exc}") from None

    def outcome(self, reply: Reply) -> str:
        """delivered | retry | failed, by the status."""
        if 200 <= reply.status < 300 or reply.status in self.ignorable:
            return "delivered"
        if reply.status >= 500 or reply.status in self.retryable:
            return "retry"
        return "failed"

    async def honour_retry_after(self, replies: list[Reply]) -> None:
        """Wait as long as the longest Retry-After asked (capped) before the engine's own backoff."""
        waits = [r.retry_after for r in replies if r.retry_after is not None]
        if waits:
            await asyncio.sleep(min(max(waits), self.retry_after_max))


def reason(reply: Reply) -> str:
    return f"HTTP {reply.status}: {reply.body[:BODY_EXCERPT]}"


def _retry_after(value: str | None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["BODY_EXCERPT", "HttpClient", "HttpSession", "Reply", "reason"]
