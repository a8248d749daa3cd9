"""`syslog` input: RFC 3164 and RFC 5424 over UDP, TCP and TLS (RFC 5425), in either
front-end's shape.

Logstash's `syslog {}` listens on TCP and UDP at once (port 514) and writes
logstash-input-syslog's fields (`priority`, `facility`, `severity`, their `_label`s,
`timestamp`, `logsource`, `program`, `pid`, `message`, the sender in `host`) or, with
`ecs_compatibility => v8`, the ECS ones (`[log][syslog][…]`, `[host][hostname]`,
`[process][name]`, `[event][original]` …). A Fluentd `<source> @type syslog` (recognised by
its `tag`, which Fluentd requires, or any in_syslog-only setting) listens on one
`<transport udp|tcp|tls>` (port 5140), writes in_syslog's record (`host`, `ident`, `pid`,
`message`, plus `msgid` and `extradata` for RFC 5424) and tags events
`<tag>.<facility>.<severity>`.

Both parse RFC 3164 and RFC 5424 (auto-detected per message unless `message_format` says),
frame TCP by newline or octet counting (RFC 6587, detected per connection unless
`frame_type` says). A line that does not parse is kept: Logstash-shaped with the tag
`_grokparsefailure_sysloginput` (and priority 13, as Logstash does), Fluentd-shaped as
`{"unmatched_line": …}` tagged `<tag>.unmatched` (`emit_unmatched_lines`), and counted.
Syslog has no acknowledgement, so nothing waits for the outputs; TCP senders are slowed
by backpressure when the pipeline is full, UDP datagrams beyond `queue_size` are dropped
and counted.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import add_tag, compile_getter, compile_setter
from logpipe.grok import Grok, GrokError, GrokTimeout
from logpipe.helpers import ecs
from logpipe.helpers.framing import SyslogFramer
from logpipe.helpers.server import ProtocolError, ServerInput
from logpipe.helpers.stream_limits import STREAM_LIMIT, StreamLimits, read_frames
from logpipe.helpers.syslog_parse import (
    FACILITY_NAMES,
    LOGSTASH_FACILITY_LABELS,
    LOGSTASH_SEVERITY_LABELS,
    SEVERITY_NAMES,
    SyslogMessage,
    SyslogParser,
)
from logpipe.helpers.tls import TlsServer
from logpipe.helpers.udp import Datagram, DatagramServer
from logpipe.plugin import Helper, InputContext, Setting
from logpipe.timefmt import compile_joda_parser

FAILURE_TAG = "_grokparsefailure_sysloginput"
#: Settings only Fluentd's in_syslog has: any of them written makes the input Fluentd-shaped.
_FLUENTD_ONLY = ("protocol_type", "message_format", "frame_type", "source_hostname_key", "source_address_key",
                 "severity_key", "facility_key", "parse", "emit_unmatched_lines", "resolve_hostname")
_HOSTNAME_CACHE = 1024

#: (parsed message or None, the line, sender address, sender host name or "") → the event, or None to drop.
Builder = Callable[[SyslogMessage | None, str, str, str], Event | None]


class SyslogInput(ServerInput):
    name = "syslog"
    doc = "Syslog server: RFC 3164/5424 over UDP, TCP and TLS (Logstash syslog, Fluentd in_syslog)"
    default_port = 514
    helpers: ClassVar[list[type[Helper]]] = [*ServerInput.helpers, StreamLimits]
    default_message_length_limit: ClassVar[int] = 64 * 1024
    settings: ClassVar[list[Setting]] = [
        Setting("port", "int", min=0, max=65535,
                doc="port for TCP and UDP (default 514; 5140 in a Fluentd config; 0 picks a free one)"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="v1/v8: ECS field names ([log][syslog][priority], [host][hostname] …)"),
        Setting("use_labels", "bool", default=True, doc="add facility_label and severity_label"),
        Setting("facility_labels", "array", default=list(LOGSTASH_FACILITY_LABELS), doc="labels of facilities 0…23"),
        Setting("severity_labels", "array", default=list(LOGSTASH_SEVERITY_LABELS), doc="labels of severities 0…7"),
        Setting("timezone", "string", doc="zone of RFC 3164 timestamps (default: this host's)"),
        Setting("locale", "string", doc="accepted for Logstash compatibility (month names are English)"),
        Setting("proxy_protocol", "bool", default=False, doc="TCP: the first line is a PROXY v1 header"),
        Setting("grok_pattern", "string",
                doc="Logstash: parse each line with this grok pattern instead of the built-in RFC 3164/5424 "
                    "parser (captures into the event, `[syslog_field]` overwritten, priority and `timestamp` "
                    "read from the captures as Logstash's syslog input does)"),
        Setting("syslog_field", "string", default="message",
                doc="with grok_pattern: the field matched and overwritten"),
        Setting("service_type", "string", default="system", doc="ECS with grok_pattern: [service][type]"),
        Setting("protocol_type", "string", choices=("udp", "tcp"),
                doc="Fluentd (deprecated there): the transport; use <transport udp|tcp|tls>"),
        Setting("message_format", "string", choices=("auto", "rfc3164", "rfc5424"), doc="auto detects per message"),
        Setting("frame_type", "string", choices=("auto", "traditional", "octet_count"),
                doc="TCP framing: newline (traditional) or RFC 6587 octet counting; auto detects per connection"),
        Setting("source_hostname_key", "string", doc="record key for the sender's host name (reverse DNS, cached)"),
        Setting("source_address_key", "string", doc="record key for the sender's IP address"),
        Setting("severity_key", "string", deprecated_alias=("priority_key",),
                doc="record key for the severity name (Fluentd)"),
        Setting("facility_key", "string", doc="record key for the facility name (Fluentd)"),
        Setting("emit_unmatched_lines", "bool", default=True,
                doc="Fluentd: emit lines that do not parse as {unmatched_line} tagged <tag>.unmatched"),
        Setting("resolve_hostname", "bool", doc="accepted for Fluentd compatibility (source_hostname_key resolves)"),
        Setting("parse", "hash", doc="Fluentd <parse>: message_format, with_priority"),
        Setting("queue_size", "int", default=2000, min=1, doc="UDP datagrams waiting for the pipeline; more drop"),
        Setting("receive_buffer_bytes", "bytes", doc="UDP socket receive buffer (SO_RCVBUF)"),
    ]
    port: int  # None until __init__ picks the front-end's default
    ecs_compatibility: str
    use_labels: bool
    facility_labels: list[str]
    severity_labels: list[str]
    timezone: str | None
    proxy_protocol: bool
    protocol_type: str | None
    message_format: str | None
    frame_type: str | None
    source_hostname_key: str | None
    source_address_key: str | None
    severity_key: str | None
    facility_key: str | None
    emit_unmatched_lines: bool
    message_length_limit: int
    max_bytes_held: int
    idle_timeout: float
    frame_timeout: float
    queue_size: int
    receive_buffer_bytes: int | None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        written = set(settings)
        self.fluentd = self.params.get("tag") is not None or any(k in written for k in _FLUENTD_ONLY) \
            or self.setting_name("host") == "bind"
        if self.fluentd and self.params["grok_pattern"] is not None:
            raise ConfigError("grok_pattern is a Logstash syslog setting; in a Fluentd config parse with "
                              "<parse> @type grok or a parser filter", setting="grok_pattern")
        parse = self.params["parse"] or {}
        fmt = self.message_format or str(parse.get("message_format", "auto"))
        if fmt not in ("auto", "rfc3164", "rfc5424"):
            raise ConfigError(f"message_format must be auto, rfc3164 or rfc5424, got {fmt!r}", setting="parse")
        try:
            self._parser = SyslogParser(fmt, self.timezone or "local")
        except ConfigError as exc:
            raise ConfigError(exc.message, setting="timezone") from None
        transport = self.params["transport"]
        kind = transport.arg if transport.arg else self.protocol_type
        if self.fluentd:
            self.transports = {kind or "udp"}
        elif TlsServer.enabled(self):
            self.transports = {"tls"}
        else:
            self.transports = {kind} if kind else {"udp", "tcp"}
        if "tls" in self.transports and not TlsServer.enabled(self):
            raise ConfigError("<transport tls> needs cert_path and private_key_path", setting="transport")
        port = self.port if self.port is not None else (5140 if self.fluentd else self.default_port)
        self.port = port
        self._listen(self.host, port, TlsServer.context(self) if "tls" in self.transports else None,
                     self.max_connections, stream_limit=STREAM_LIMIT)
        self._udp: DatagramServer | None = None
        if "udp" in self.transports:
            self._udp = DatagramServer(
                self.host, port, max_size=self.message_length_limit, receive_buffer_bytes=self.receive_buffer_bytes,
                queue_size=self.queue_size, workers=1, log=self.log, metrics=self.metrics)
        self._budget = StreamLimits.budget(self)
        self._frame_mode = {"traditional": "traditional", "octet_count": "octet_count"}.get(self.frame_type or "",
                                                                                             "auto")
        self._failures = self.metrics.counter("syslog_unparsed", "syslog lines that did not parse")
        self._oversized = self.metrics.counter("oversized", "lines over the size limit (dropped)")
        self._hostnames: dict[str, str] = {}
        if self.fluentd:
            self._build = self._fluentd_builder()
        elif self.params["grok_pattern"] is not None:
            self._build = self._grok_builder(self.params["grok_pattern"])
        else:
            self._build = self._logstash_builder()

    # ---- life cycle: TCP through ServerInput, UDP beside it --------------------------

    @property
    def bound_port(self) -> int:
        return self._server.port if self._tcp_enabled else (self._udp.port if self._udp else 0)

    @property
    def _tcp_enabled(self) -> bool:
        return bool(self.transports & {"tcp", "tls"})

    async def start(self) -> None:
        if self._tcp_enabled:
            await self._server.bind()
        if self._udp is not None:
            if self._tcp_enabled and self.port == 0:
                self._udp.port = self._server.port  # the same free port for both, as with a fixed one
            await self._udp.bind()

    async def run(self, ctx: InputContext) -> None:
        self._ctx = ctx
        tasks = []
        if self._tcp_enabled:
            tasks.append(asyncio.ensure_future(self._server.serve()))
        if self._udp is not None:
            tasks.append(asyncio.ensure_future(self._udp.serve(self._datagrams)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self._server.close()
        if self._udp is not None:
            self._udp.close()

    # ---- receiving --------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        if self.proxy_protocol:
            async with asyncio.timeout(self.frame_timeout or None):
                header = await reader.readline()
            parts = header.split()
            if len(parts) < 3 or parts[0] != b"PROXY":
                raise ProtocolError("proxy_protocol", f"expected a PROXY header, got {header[:40]!r}")
            address = parts[2].decode("ascii", "replace")
        framer = SyslogFramer(self.message_length_limit, self._frame_mode)
        hostname = await self._hostname(address) if self.source_hostname_key else ""
        counted = 0
        async for frames in read_frames(reader, framer, budget=self._budget,
                                        idle_timeout=self.idle_timeout or None,
                                        frame_timeout=self.frame_timeout or None):
            if framer.oversized != counted:
                self._oversized.inc(framer.oversized - counted)
                counted = framer.oversized
            events = [self._event(f, address, hostname) for f in frames]
            await self._emit([ev for ev in events if ev is not None])
        if framer.oversized != counted:
            self._oversized.inc(framer.oversized - counted)

    async def _datagrams(self, batch: list[Datagram]) -> None:
        events = []
        for data, address in batch:
            hostname = await self._hostname(address) if self.source_hostname_key else ""
            event = self._event(data.rstrip(b"\r\n\x00"), address, hostname)
            if event is not None:
                events.append(event)
        await self._emit(events)

    def _event(self, frame: bytes, address: str, hostname: str) -> Event | None:
        line = frame.decode("utf-8", "replace")
        msg = self._parser.parse(line)
        if msg is None:
            self._failures.inc()
        return self._build(msg, line, address, hostname)

    async def _emit(self, events: list[Event]) -> None:
        assert self._ctx is not None
        if events:
            await self._ctx.emit(events, None)

    async def _hostname(self, address: str) -> str:
        """Reverse DNS of a sender, cached (Fluentd's resolve_hostname); the address when it has no name."""
        name = self._hostnames.get(address)
        if name is None:
            loop = asyncio.get_running_loop()
            try:
                name = (await loop.run_in_executor(None, socket.gethostbyaddr, address))[0]
            except OSError:
                name = address
            if len(self._hostnames) >= _HOSTNAME_CACHE:
                self._hostnames.clear()
            self._hostnames[address] = name
        return name

    # ---- event shapes -----------------------------------------------------------------

    def _logstash_builder(self) -> Builder:
        tag = self.event_tag
        labels = self.use_labels
        facility_labels = list(self.facility_labels)
        severity_labels = list(self.severity_labels)
        ecs = self.ecs_compatibility != "disabled"

        def label(names: list[str], index: int) -> str | None:
            return names[index] if index < len(names) else None

        def legacy(msg: SyslogMessage | None, line: str, address: str, _hostname: str) -> Event:
            if msg is None:
                record: dict[str, Any] = {"message": line, "host": address, "tags": [FAILURE_TAG]}
                priority, time = 13, None
            else:
                record = {"message": msg.message, "host": address}
                priority, time = msg.priority, msg.time
                if msg.timestamp is not None:
                    record["timestamp"] = msg.timestamp
                if msg.host is not None:
                    record["logsource"] = msg.host
                if msg.app is not None:
                    record["program"] = msg.app
                if msg.procid is not None:
                    record["pid"] = msg.procid
                if msg.msgid is not None:
                    record["msgid"] = msg.msgid
                if msg.structured_data is not None:
                    record["structured_data"] = msg.structured_data
            facility, severity = priority >> 3, priority & 7
            record["priority"] = priority
            record["severity"] = severity
            record["facility"] = facility
            if labels:
                if (fl := label(facility_labels, facility)) is not None:
                    record["facility_label"] = fl
                if (sl := label(severity_labels, severity)) is not None:
                    record["severity_label"] = sl
            return Event(tag, time, record)

        def ecs_shape(msg: SyslogMessage | None, line: str, address: str, _hostname: str) -> Event:
            priority = 13 if msg is None else msg.priority
            facility, severity = priority >> 3, priority & 7
            syslog: dict[str, Any] = {"priority": priority, "facility": {"code": facility},
                                      "severity": {"code": severity}}
            if labels:
                if (fl := label(facility_labels, facility)) is not None:
                    syslog["facility"]["name"] = fl
                if (sl := label(severity_labels, severity)) is not None:
                    syslog["severity"]["name"] = sl
            host: dict[str, Any] = {"ip": address}
            record: dict[str, Any] = {"event": {"original": line}, "host": host, "log": {"syslog": syslog}}
            if msg is None:
                record["message"] = line
                record["tags"] = [FAILURE_TAG]
                return Event(tag, None, record)
            record["message"] = msg.message
            if msg.host is not None:
                host["hostname"] = msg.host
            process: dict[str, Any] = {}
            if msg.app is not None:
                process["name"] = msg.app
            if msg.procid is not None:
                process["pid"] = int(msg.procid) if msg.procid.isdigit() else msg.procid
            if process:
                record["process"] = process
            if msg.version is not None:
                syslog["version"] = str(msg.version)
            if msg.msgid is not None:
                syslog["msgid"] = msg.msgid
            if msg.structured_data is not None:
                syslog["structured_data"] = msg.structured_data
            return Event(tag, msg.time, record)

        return ecs_shape if ecs else legacy

    def _grok_builder(self, pattern: str) -> Builder:
        """Logstash's syslog input with `grok_pattern`: the line is matched against the pattern
        (ECS-aware pattern set, the regex time budget); on a match the captures go into the
        event and `[syslog_field]` is overwritten, the priority is read from its capture (13 when
        absent), and `timestamp` is parsed with Logstash's formats (MMM dd HH:mm:ss,
        MMM  d HH:mm:ss, MMM d HH:mm:ss, ISO8601) into the event time. No match (or a match
        over its budget): the line is kept whole, tagged `_grokparsefailure_sysloginput`, and
        given priority 13, as Logstash does."""
        ecs_mode = self.ecs_compatibility
        ecs_on = ecs_mode != "disabled"
        try:
            grok = Grok(pattern, ecs_compatibility="v1" if ecs_on else "disabled", timeout=GROK_BUDGET)
        except GrokError as exc:
            raise ConfigError(f"grok_pattern does not compile: {exc}", setting="grok_pattern") from None
        tag = self.event_tag
        set_original = compile_setter(self.params["syslog_field"])
        keys = _priority_keys(ecs_on)
        get_priority = compile_getter(keys["priority"])
        setters = {name: compile_setter(ref) for name, ref in keys.items()}
        parsers = [compile_joda_parser(f, self.timezone) for f in
                   ("MMM dd HH:mm:ss", "MMM  d HH:mm:ss", "MMM d HH:mm:ss", "ISO8601")]
        labels = self.use_labels
        facility_labels, severity_labels = list(self.facility_labels), list(self.severity_labels)
        service_type = self.params["service_type"]
        failures = self._failures

        def build(_msg: SyslogMessage | None, line: str, address: str, _hostname: str) -> Event:
            ev = Event(tag, None, {})
            if ecs_on:
                ev.record["host"] = {"ip": address}
                ev.record["event"] = {"original": line}
            else:
                ev.record["host"] = address
            set_original(ev, line)
            try:
                captures = grok.match(line)
            except GrokTimeout:
                captures = None
            if captures is None:
                failures.inc()
                ev.record["tags"] = [FAILURE_TAG]
                priority = 13
            else:
                _merge(ev.record, captures)
                raw = get_priority(ev)
                priority = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else 13
                record = ev.record
                if not ecs_on and "timestamp8601" in record:
                    record["timestamp"] = record["timestamp8601"]
                stamp = record.get("timestamp")
                if isinstance(stamp, str):
                    for parse in parsers:
                        ns = parse(stamp)
                        if ns is not None:
                            ev.time = ns
                            break
                    else:
                        add_tag(ev, "_dateparsefailure")
                    if ecs_on:
                        del record["timestamp"]
                if ecs_on and service_type:
                    ev.record.setdefault("service", {}).setdefault("type", service_type)
            facility, severity = priority >> 3, priority & 7
            setters["priority"](ev, priority)
            setters["facility"](ev, facility)
            setters["severity"](ev, severity)
            if labels:
                if facility < len(facility_labels):
                    setters["facility_label"](ev, facility_labels[facility])
                if severity < len(severity_labels):
                    setters["severity_label"](ev, severity_labels[severity])
            return ev

        return build

    def _fluentd_builder(self) -> Builder:
        prefix = self.params.get("tag") or self.name
        address_key = self.source_address_key
        hostname_key = self.source_hostname_key
        severity_key = self.severity_key
        facility_key = self.facility_key
        unmatched = self.emit_unmatched_lines
        tags = [[f"{prefix}.{f}.{s}" for s in SEVERITY_NAMES] for f in FACILITY_NAMES]

        def build(msg: SyslogMessage | None, line: str, address: str, hostname: str) -> Event | None:
            if msg is None:
                if not unmatched:
                    return None
                record: dict[str, Any] = {"unmatched_line": line}
                event = Event(f"{prefix}.unmatched", None, record)
            else:
                if msg.rfc == 5424:
                    record = {"host": msg.host or "-", "ident": msg.app or "-", "pid": msg.procid or "-",
                              "msgid": msg.msgid or "-", "extradata": msg.sd_text or "-", "message": msg.message}
                else:
                    record = {}
                    if msg.host is not None:
                        record["host"] = msg.host
                    if msg.app is not None:
                        record["ident"] = msg.app
                    if msg.procid is not None:
                        record["pid"] = msg.procid
                    record["message"] = msg.message
                facility, severity = msg.priority >> 3, msg.priority & 7
                if severity_key:
                    record[severity_key] = SEVERITY_NAMES[severity]
                if facility_key:
                    record[facility_key] = FACILITY_NAMES[facility]
                event = Event(tags[facility][severity], msg.time, record)
            if address_key:
                record[address_key] = address
            if hostname_key:
                record[hostname_key] = hostname or address
            return event

        return build


#: Per-line budget of a grok_pattern match (the grok filter's default timeout_millis).
GROK_BUDGET = 2.0


def _priority_keys(ecs_on: bool) -> dict[str, str]:
    """Where Logstash's syslog input puts priority, facility and severity (and their labels)."""
    if ecs_on:
        return {"priority": "[log][syslog][priority]", "facility": "[log][syslog][facility][code]",
                "severity": "[log][syslog][severity][code]", "facility_label": "[log][syslog][facility][name]",
                "severity_label": "[log][syslog][severity][name]"}
    return {"priority": "priority", "facility": "facility", "severity": "severity",
            "facility_label": "facility_label", "severity_label": "severity_label"}


def _merge(record: dict[str, Any], captures: dict[str, Any]) -> None:
    """Captures into the record, nested dicts merged (`[log][syslog][priority]` beside `[host][ip]`)."""
    for key, value in captures.items():
        current = record.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        else:
            record[key] = value
