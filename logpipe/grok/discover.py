"""Propose a grok pattern for a sample line (GrokConstructor's automatic construction).

First the whole line is tried against well-known formats (an Apache access line is
`%{HTTPD_COMBINEDLOG}`, a syslog line `%{SYSLOGLINE}` …): a format that fits the whole line
says more than any assembly of tokens. Otherwise the line is read left to right. At each
position the known tokens are tried most specific first (timestamps and dates before
numbers, IPs before hostnames, quoted strings before words); what matches there, ends on a
token boundary and covers a letter or digit becomes `%{NAME:field}`:

- `key=value` takes the key as a literal and names the value after it (`user=%{WORD:user}`);
  a line of two or more such pairs also gets the advice to use the kv filter;
- field names come from what the token is: the first IP is `client_ip`, a three-digit number
  between 100 and 599 `status`, a number with a unit `duration`;
- bare words are constants (`new users:` stays `new users:`), unless they are a log level,
  inside brackets or quotes, or a value.

Spaces, brackets and dashes stay literals. The result is checked against the line before it
is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from logpipe.grok.engine import Grok, cached_compile
from logpipe.grok.errors import GrokError

#: Whole-line formats, tried first, in this order (the more specific before the more general).
WHOLE_LINE = ["HTTPD_COMBINEDLOG", "HTTPD_COMMONLOG", "HTTPD_ERRORLOG", "HAPROXYHTTP", "HAPROXYTCP",
              "ELB_ACCESS_LOG", "CLOUDFRONT_ACCESS_LOG", "S3_ACCESS_LOG", "SQUID3", "BIND9", "SYSLOG5424LINE",
              "SYSLOGLINE", "CATALINALOG", "TOMCATLOG", "RAILS3", "RUBY_LOGGER", "MONGO3_LOG", "REDISLOG",
              "POSTGRESQL", "NAGIOSLOGLINE"]

#: (pattern or expression, field name) in the order they are tried.
CANDIDATES: list[tuple[str, str]] = [
    ("TIMESTAMP_ISO8601", "timestamp"),
    ("HTTPDATE", "timestamp"),
    ("DATESTAMP_RFC2822", "timestamp"),
    ("DATESTAMP_OTHER", "timestamp"),
    ("SYSLOGTIMESTAMP", "timestamp"),
    ("DATESTAMP", "timestamp"),
    ("%{YEAR}-%{MONTHNUM}-%{MONTHDAY}", "date"),
    ("UUID", "uuid"),
    ("MAC", "mac"),
    ("IP", "ip"),
    ("EMAILADDRESS", "email"),
    ("URI", "uri"),
    ("QUOTEDSTRING", "quoted"),
    ("UNIXPATH", "path"),
    ("TIME", "time"),
    ("LOGLEVEL", "level"),
    ("NUMBER", "number"),
    ("HOSTNAME", "host"),
    ("WORD", "word"),
    ("NOTSPACE", "token"),
]

_ALNUM = re.compile(r"[A-Za-z0-9]")
#: Characters that structure a line: always literals, and never inside a plain token.
_DELIMS = frozenset("[](){}<>=,;|\"'")
#: Tokens that must not swallow delimiters (structured ones like QUOTEDSTRING may).
_PLAIN = {"NOTSPACE", "WORD", "HOSTNAME"}


_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=(?=[^\s=])")
_UNIT = re.compile(r"(?:ms|us|µs|ns|s|sec|m|h|kb|mb|gb|b|%)\b", re.IGNORECASE)
_HTTP_VERB = re.compile(r'^"(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT|TRACE) ')


@dataclass
class Proposal:
    pattern: str
    captures: dict[str, object]
    #: Advice beyond the pattern (a kv filter for key=value lines), "" when there is none.
    suggestion: str = ""
    #: The well-known format the whole line is, when it is one.
    format: str | None = None
    names: list[str] = field(default_factory=list)


def discover(line: str, ecs_compatibility: str = "disabled") -> Proposal:
    """A grok pattern that matches `line`: a whole-line format if one fits, else tokens."""
    for name in WHOLE_LINE:
        try:
            grok = Grok(f"^%{{{name}}}$", ecs_compatibility=ecs_compatibility)
        except GrokError:
            continue  # not in this pattern set
        captures = grok.match(line)
        if captures is not None and _fits(name, captures):
            return Proposal(f"%{{{name}}}", captures, format=name)
    return _assemble(line, ecs_compatibility)


#: Formats whose last part takes any text (GREEDYDATA) fit almost any line; such a format counts
#: only when the parts that make it that format were found.
_NEEDS = {"SYSLOGLINE": ("program", "process"), "SYSLOG5424LINE": ("syslog5424_app", "service", "process")}


def _fits(name: str, captures: dict[str, object]) -> bool:
    needed = _NEEDS.get(name)
    return needed is None or any(captures.get(key) for key in needed)


def _assemble(line: str, ecs_compatibility: str) -> Proposal:
    compiled = [(name, fld, cached_compile(name if "%{" in name else f"%{{{name}}}",
                                           ecs_compatibility=ecs_compatibility).regex)
                for name, fld in CANDIDATES]
    parts: list[str] = []
    used: dict[str, int] = {}
    pairs = 0
    value_name: str | None = None
    depth = 0  # inside brackets or quotes: words there are values, not constants
    i, n = 0, len(line)
    while i < n:
        key = _KEY.match(line, i) if value_name is None and (i == 0 or not line[i - 1].isalnum()) else None
        if key is not None:
            value_name = _field_name(key.group(1))
            parts.append(re.escape(key.group(1)) + "=")
            pairs += 1
            i = key.end()
            continue
        token = _token_at(line, i, compiled)
        if token is None:
            ch = line[i]
            depth += 1 if ch in "[({<" else -1 if ch in "])}>" and depth else 0
            parts.append(_literal(ch))
            i += 1
            continue
        name, label, end = token
        text = line[i:end]
        in_list = (i > 0 and line[i - 1] == ",") or (end < n and line[end] == ",")
        if value_name is None and depth == 0 and name in _PLAIN and text.isalpha() and not in_list:
            parts.append(re.escape(text))  # a bare word: a constant of the format
            i = end
            continue
        label = value_name or _kind_name(name, label, text, line, end, parts)
        value_name = None
        used[label] = used.get(label, 0) + 1
        if used[label] > 1:
            label = f"{label}{used[label]}"
        if "%{" in name:  # a composite expression: a named group around it
            parts.append(f"(?<{_field_name(label)}>{name})")
        else:
            parts.append(f"%{{{name}:{label}}}")
        i = end
    pattern = _squeeze_spaces("".join(parts))
    try:
        captures = Grok(f"^{pattern}$", ecs_compatibility=ecs_compatibility).match(line)
    except GrokError:
        captures = None
    if captures is None:  # a token that only matched in context: fall back to the literal line
        pattern = re.escape(line)
        captures = {}
    suggestion = ""
    if pairs >= 2:
        suggestion = ("the line is key=value pairs: kv { source => \"message\" } reads every pair, "
                      "whatever their order or number")
    return Proposal(pattern, captures, suggestion=suggestion, names=list(used))


def _field_name(key: str) -> str:
    """A capture name from a key as written (`http.status` → `http_status`)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", key) or "value"


def _kind_name(name: str, default: str, text: str, line: str, end: int, parts: list[str]) -> str:
    """A capture name from what the token is."""
    if name == "IP":
        return "client_ip"
    if name == "NUMBER":
        if len(text) == 3 and text.isdigit() and 100 <= int(text) <= 599:
            return "status"
        if _UNIT.match(line, end):
            return "duration"
    if name == "QUOTEDSTRING" and _HTTP_VERB.match(text):
        return "request"
    return default


def _token_at(line: str, i: int, compiled: list[tuple[str, str, re.Pattern[str]]]) -> tuple[str, str, int] | None:
    c = line[i]
    if c.isspace() or (c in _DELIMS and c not in "\"'") or (i > 0 and line[i - 1].isalnum() and c.isalnum()):
        return None
    for name, label, rx in compiled:
        m = rx.match(line, i)
        if m is None or m.end() == i:
            continue
        end = m.end()
        text = line[i:end]
        if not _ALNUM.search(text):
            continue
        if name in _PLAIN and (_DELIMS.intersection(text) or (name == "HOSTNAME" and "." not in text)):
            continue
        if end < len(line) and line[end].isalnum() and line[end - 1].isalnum() and name != "NUMBER":
            continue  # stops inside a word: not a token boundary (a number may carry a unit: 12ms)
        return name, label, end
    return None


def _literal(ch: str) -> str:
    return re.escape(ch) if ch not in " -:,;=/@'\"<>" else ch


def _squeeze_spaces(pattern: str) -> str:
    """Runs of spaces become ` +`, so lines padded differently still match."""
    return re.sub(r" {2,}", " +", pattern)
