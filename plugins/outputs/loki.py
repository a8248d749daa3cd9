"""`loki` output: Fluent Bit's loki output, on Loki's JSON push API (`/loki/api/v1/push`).

Each event becomes a line in the stream named by its labels: static `labels` (`job=app`),
labels read from the record (`labels $kubernetes['namespace_name']`, or `label_keys`;
Fluent Bit's record accessors and Logstash references both work, the label is named
after the last key), and the line is the record (minus `remove_keys` and the label
fields) as `line_format json` or `key_value`. `tenant_id` is sent as `X-Scope-OrgID`.

Labels are an index, and Loki suffers from too many values: each label name keeps at
most `max_label_values` distinct values; events bringing a new value past that get the
value `_overflow` (and `logpipe_output_loki_label_overflow_total` counts them) rather than a new
stream. Loki's replies follow the HTTP rules: 204 delivered, 429/5xx retried, 400 (bad
labels, entries too old or out of order) dead-lettered with Loki's text.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, parse_ref
from logpipe.helpers.http_client import HttpClient, HttpSession, reason
from logpipe.jsonvalues import json_default
from logpipe.plugin import Output, Setting, WriteResult

OVERFLOW = "_overflow"
_ACCESSOR = re.compile(r"\$([A-Za-z0-9_.@-]+)((?:\[['\"][^'\"]+['\"]\])*)")
_SUBKEY = re.compile(r"\[['\"]([^'\"]+)['\"]\]")
_LABEL_NAME_BAD = re.compile(r"[^A-Za-z0-9_]")


def accessor_path(text: str) -> tuple[str, ...]:
    """Fluent Bit `$a['b']` or Logstash `[a][b]` → ("a", "b")."""
    text = text.strip()
    m = _ACCESSOR.fullmatch(text)
    if m:
        return (m[1], *_SUBKEY.findall(m[2]))
    return parse_ref(text)


def label_name(name: str) -> str:
    """A valid Loki label name: [A-Za-z_][A-Za-z0-9_]*."""
    clean = _LABEL_NAME_BAD.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def line_text(record: dict[str, Any], fmt: str) -> str:
    """The log line of one record (pure: the output API's per-event `format`)."""
    if fmt == "key_value":
        return " ".join(f"{k}={v if isinstance(v, str) else orjson.dumps(v, default=json_default).decode()}"
                        for k, v in record.items())
    return orjson.dumps(record, default=json_default).decode()


class LokiOutput(Output):
    name = "loki"
    doc = "Grafana Loki push API: labels from fields (bounded cardinality), tenant header, json/key_value lines"
    helpers = [HttpClient]
    settings: ClassVar[list[Setting]] = [
        Setting("url", "string", doc="push URL (default http://host:port/uri)"),
        Setting("host", "string", default="127.0.0.1", doc="Loki host"),
        Setting("port", "int", default=3100, min=1, max=65535, doc="Loki port"),
        Setting("uri", "string", default="/loki/api/v1/push", doc="push path"),
        Setting("tls", "bool", default=False, doc="https (with the ssl_*/tls_* client settings)"),
        Setting("tenant_id", "string", doc="sent as X-Scope-OrgID (multi-tenant Loki)"),
        Setting("labels", "array", default=["job=logpipe"],
                doc="static `name=value` labels and record accessors (`$field`, `$a['b']`, `[a][b]`)"),
        Setting("label_keys", "array", default=[], doc="record accessors whose values become labels"),
        Setting("remove_keys", "array", default=[], doc="record keys left out of the line"),
        Setting("drop_single_key", "bool", default=False,
                doc="a line left with one key is that key's value alone"),
        Setting("line_format", "string", default="json", choices=("json", "key_value"), doc="how the line is written"),
        Setting("max_label_values", "int", default=1000, min=1,
                doc="distinct values kept per label name; later new values become _overflow"),
    ]
    labels: list[str]
    label_keys: list[str]
    remove_keys: list[str]
    drop_single_key: bool
    line_format: str
    max_label_values: int
    tenant_id: str | None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        scheme = "https" if p["tls"] else "http"
        self._url: str = p["url"] or f"{scheme}://{p['host']}:{p['port']}{p['uri']}"
        self._static: dict[str, str] = {}
        dynamic: list[str] = list(self.label_keys)
        for entry in self.labels:
            for part in str(entry).split(","):
                part = part.strip()
                if not part:
                    continue
                if "=" in part and not part.startswith(("$", "[")):
                    name, _, value = part.partition("=")
                    self._static[label_name(name.strip())] = value.strip()
                else:
                    dynamic.append(part)
        try:
            paths = [accessor_path(d) for d in dynamic]
        except ConfigError as exc:
            raise ConfigError(exc.message, setting="labels") from None
        self._dynamic = [(label_name(path[-1]), compile_getter(path), path) for path in paths]
        self._removed = {path[0] for path in paths if len(path) == 1} | set(self.remove_keys)
        self._seen: dict[str, set[str]] = {}
        self._overflow = self.metrics.counter("loki_label_overflow",
                                              "events whose label value was replaced by _overflow")
        headers = {"Content-Type": "application/json"}
        if self.tenant_id:
            headers["X-Scope-OrgID"] = self.tenant_id
        self._headers = headers
        self.http = HttpSession(self)

    async def close(self) -> None:
        await self.http.close()

    def stream_labels(self, event: Event) -> dict[str, str]:
        """The event's label set, with each label's cardinality bounded."""
        labels = dict(self._static)
        for name, getter, _ in self._dynamic:
            value = getter(event)
            if value is MISSING or value is None:
                continue
            text = value if isinstance(value, str) else orjson.dumps(value, default=json_default).decode()
            seen = self._seen.setdefault(name, set())
            if text not in seen:
                if len(seen) >= self.max_label_values:
                    self._overflow.inc()
                    text = OVERFLOW
                else:
                    seen.add(text)
            labels[name] = text
        return labels

    def line(self, event: Event) -> str:
        record = {k: v for k, v in event.record.items() if k not in self._removed}
        if self.drop_single_key and len(record) == 1:
            (value,) = record.values()
            return value if isinstance(value, str) else orjson.dumps(value, default=json_default).decode()
        return line_text(record, self.line_format)

    def push_body(self, events: list[Event]) -> bytes:
        streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
        for ev in events:
            key = tuple(sorted(self.stream_labels(ev).items()))
            streams.setdefault(key, []).append((ev.time, self.line(ev)))
        body = {"streams": [
            {"stream": dict(key), "values": [[str(t), line] for t, line in sorted(values, key=lambda v: v[0])]}
            for key, values in streams.items()
        ]}
        return orjson.dumps(body)

    async def write(self, events: list[Event]) -> WriteResult | None:
        if not events:
            return None
        reply = await self.http.send("POST", self._url, self.push_body(events), self._headers)
        outcome = self.http.outcome(reply)
        if outcome == "delivered":
            return None
        everything = list(range(len(events)))
        if outcome == "retry":
            self.log.warning("loki answered %d; retrying", reply.status)
            await self.http.honour_retry_after([reply])
            return WriteResult(retry=everything)
        return WriteResult(failed=[(i, reason(reply)) for i in everything])
