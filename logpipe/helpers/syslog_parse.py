"""RFC 3164 and RFC 5424 syslog messages → their parts, for the syslog input (both
front-ends' event layouts are built from these parts).

Fluentd's `<parse> @type syslog` (logpipe/helpers/parsers/formats.py) is not this parser,
on purpose: it reproduces Fluentd's parser_syslog — its own regular expressions, which take
a line without `<PRI>`, name the parts `ident`/`pid`/`extradata` (the structured data kept
as text), and read the time with `time_format` — so a Fluentd config gets Fluentd's fields.
The two share no code; what they share is the RFCs.

One regular expression per format and caches for the timestamps: a syslog stream repeats
the same second thousands of times, so each distinct timestamp text is converted once.
RFC 3164 timestamps carry no year and no zone: the zone is the receiver's (`timezone`,
default the local zone, as Logstash and Fluentd do), and the year is the one that puts the
time nearest to now — so a December message read on 1 January lands in the old year, the
rule RFC 3164 §4.3.2 leaves to the receiver. A message whose PRI is valid but whose header
is not is kept whole as the message with its priority (the relay rule of RFC 3164 §4.3.3);
only a line without a valid PRI fails to parse.
"""

from __future__ import annotations

import re
import time as _time
from datetime import UTC, datetime
from typing import Any

from logpipe.timefmt import parse_iso8601, resolve_zone

#: Fluentd's names (in_syslog tags `prefix.facility.severity` with these).
FACILITY_NAMES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
#: Logstash's default `facility_labels` / `severity_labels` (logstash-input-syslog).
LOGSTASH_FACILITY_LABELS = (
    "kernel", "user-level", "mail", "system", "security/authorization", "syslogd", "line printer",
    "network news", "UUCP", "clock", "security/authorization", "FTP", "NTP", "log audit", "log alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
LOGSTASH_SEVERITY_LABELS = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")

_MONTHS = {m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                           "Nov", "Dec"))}

# <PRI>TIMESTAMP HOST TAG[PID]: MSG — timestamp `Mmm dd hh:mm:ss` (or ISO 8601, as Logstash allows),
# TAG the program (RFC 3164 §4.1.3: alphanumerics up to a non-alphanumeric, in practice up to `[`, `:` or space).
_RFC3164 = re.compile(
    r"<(\d{1,3})>"
    r"(?:([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)) "
    r"(?:([^\s\[\]:]+) )?"
    r"(?:([^\s\[\]:]+)(?:\[([^\]\s]*)\])?: ?)?"
    r"(.*)",
    re.DOTALL,
)
# <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
_SD_ELEMENT = r'\[[^\]\s="]+(?: +[^\]\s="]+="(?:[^"\\]|\\.)*")* *\]'
_RFC5424 = re.compile(
    r"<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:" + _SD_ELEMENT + r")+)(?: (.*))?",
    re.DOTALL,
)
#: RFC 5424 puts a VERSION after the PRI; an RFC 3164 header a month name or an ISO date.
_VERSION_FOLLOWS = re.compile(r"<\d{1,3}>\d{1,3} ").match
_PRI_ONLY = re.compile(r"<(\d{1,3})>(.*)", re.DOTALL)
_SD_PARAMS = re.compile(r'([^\]\s="]+)="((?:[^"\\]|\\.)*)"')
_SD_ELEMENTS = re.compile(r'\[([^\]\s="]+)((?: +[^\]\s="]+="(?:[^"\\]|\\.)*")*) *\]')
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')
_CACHE_LIMIT = 4096


class SyslogMessage:
    """The parts of one message. `rfc` is 3164 or 5424; `time` is ns since the epoch (None
    when the message had none: the receiver stamps it); `timestamp` the text as sent.
    Absent parts are None (RFC 5424's NILVALUE `-` too)."""

    __slots__ = ("rfc", "priority", "version", "timestamp", "time", "host", "app", "procid", "msgid",
                 "structured_data", "sd_text", "message")

    def __init__(self, rfc: int, priority: int, message: str) -> None:
        self.rfc = rfc
        self.priority = priority
        self.message = message
        self.version: int | None = None
        self.timestamp: str | None = None
        self.time: int | None = None
        self.host: str | None = None
        self.app: str | None = None
        self.procid: str | None = None
        self.msgid: str | None = None
        self.structured_data: dict[str, dict[str, str]] | None = None
        self.sd_text: str | None = None

    @property
    def facility(self) -> int:
        return self.priority >> 3

    @property
    def severity(self) -> int:
        return self.priority & 7


class SyslogParser:
    """`parse(line)` → SyslogMessage, or None when the line has no valid `<PRI>` (or does not
    fit the one format that was asked for). `fmt` is auto | rfc3164 | rfc5424: auto picks
    RFC 5424 when a version digit follows the PRI."""

    def __init__(self, fmt: str = "auto", tz: str | None = "local", now: Any = _time.time) -> None:
        if fmt not in ("auto", "rfc3164", "rfc5424"):
            raise ValueError(f"unknown syslog format {fmt!r}")
        self.fmt = fmt
        self._zone = datetime.now().astimezone().tzinfo if tz in (None, "local") else resolve_zone(tz)
        self._now = now
        self._bsd_times: dict[str, int | None] = {}
        self._iso_times: dict[str, int | None] = {}

    def parse(self, line: str) -> SyslogMessage | None:
        fmt = self.fmt
        if fmt == "auto":
            end = line.find(">", 1, 5)
            # a digit after the PRI: RFC 5424's VERSION (RFC 3164 has a month name or an ISO year there)
            fmt = "rfc5424" if end > 0 and line[end + 1:end + 2].isdigit() and _VERSION_FOLLOWS(line) else "rfc3164"
        if fmt == "rfc5424":
            return self._rfc5424(line)
        return self._rfc3164(line)

    def _rfc3164(self, line: str) -> SyslogMessage | None:
        m = _RFC3164.match(line)
        if m is None:
            m = _PRI_ONLY.match(line)
            if m is None or int(m.group(1)) > 191:
                return None
            return SyslogMessage(3164, int(m.group(1)), m.group(2))
        pri, bsd, iso, host, app, pid, text = m.groups()
        priority = int(pri)
        if priority > 191:
            return None
        msg = SyslogMessage(3164, priority, text)
        msg.timestamp = bsd or iso
        if bsd:
            ns = self._bsd_times.get(bsd, -1)
            msg.time = self._bsd_time(bsd) if ns == -1 else ns
        else:
            msg.time = self._iso_time(iso)
        msg.host = host
        msg.app = app
        msg.procid = pid
        return msg

    def _rfc5424(self, line: str) -> SyslogMessage | None:
        m = _RFC5424.match(line)
        if m is None:
            return None
        pri, version, stamp, host, app, procid, msgid, sd, text = m.groups()
        priority = int(pri)
        if priority > 191:
            return None
        if text and text.startswith("\ufeff"):
            text = text[1:]  # the BOM that marks UTF-8 MSG (RFC 5424 §6.4)
        msg = SyslogMessage(5424, priority, text or "")
        msg.version = int(version)
        if stamp != "-":
            msg.timestamp = stamp
            msg.time = self._iso_time(stamp)
        msg.host = None if host == "-" else host
        msg.app = None if app == "-" else app
        msg.procid = None if procid == "-" else procid
        msg.msgid = None if msgid == "-" else msgid
        if sd != "-":
            msg.sd_text = sd
            msg.structured_data = parse_structured_data(sd)
        return msg

    def _bsd_time(self, text: str) -> int | None:
        cached = self._bsd_times.get(text, -1)
        if cached != -1:
            return cached
        if len(self._bsd_times) >= _CACHE_LIMIT:
            self._bsd_times.clear()
        ns = self._bsd_times[text] = bsd_time(text, self._zone, self._now())
        return ns

    def _iso_time(self, text: str) -> int | None:
        """RFC 5424 / ISO 8601; the whole-second part is cached, the fraction added."""
        head, dot, rest = text.partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            frac, zone = rest[:digits], rest[digits:]
            key = head + zone
        else:
            frac, key = "", text
        base = self._iso_times.get(key, -1)
        if base == -1:
            if len(self._iso_times) >= _CACHE_LIMIT:
                self._iso_times.clear()
            base = self._iso_times[key] = _iso_seconds(key, self._zone)
        if base is None:
            return None
        return base + (int(frac[:9].ljust(9, "0")) if frac else 0)


def _iso_seconds(text: str, zone: Any) -> int | None:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return parse_iso8601(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone or UTC)
    return int(dt.timestamp()) * 1_000_000_000


def bsd_time(text: str, zone: Any, now: float) -> int | None:
    """`Mmm dd hh:mm:ss` in `zone`, in the year that puts it nearest to `now` (RFC 3164 has no year)."""
    month = _MONTHS.get(text[:3])
    if month is None:
        return None
    try:
        day, hour, minute, second = int(text[4:6]), int(text[7:9]), int(text[10:12]), int(text[13:15])
        this_year = datetime.fromtimestamp(now, zone or UTC).year
        best: int | None = None
        for year in (this_year, this_year - 1, this_year + 1):
            try:
                stamp = datetime(year, month, day, hour, minute, second, tzinfo=zone or UTC).timestamp()
            except ValueError:  # Feb 29 outside a leap year
                continue
            if best is None or abs(stamp - now) < abs(best - now):
                best = int(stamp)
    except ValueError:
        return None
    return None if best is None else best * 1_000_000_000


def parse_structured_data(text: str) -> dict[str, dict[str, str]]:
    """`[id k="v" …][id2 …]` → {id: {k: v}} with `\\"`, `\\\\` and `\\]` unescaped."""
    out: dict[str, dict[str, str]] = {}
    for element in _SD_ELEMENTS.finditer(text):
        params = out.setdefault(element.group(1), {})
        for key, value in _SD_PARAMS.findall(element.group(2)):
            params[key] = _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value
    return out
