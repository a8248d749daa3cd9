"""Fluentd's named formats (`format apache2`, `<parse> @type nginx`) as grok expressions.

Fluentd users expect its field names (`host`, `user`, `method`, `path`, `code`,
`size`, `referer`, `agent` …) and `code`/`size` as integers, so these expressions
reproduce Fluentd's built-in parsers (lib/fluent/plugin/parser_*.rb) on top of
the grok library — one engine, one timeout story, one set of tests. A `-` user
or size is absent, as in Fluentd (which sets it to nil). The `time` field keeps
the text; the input that uses the format decides what becomes the event time.
"""

from __future__ import annotations

import difflib

from logpipe.errors import ConfigError, GrokError
from logpipe.grok.engine import Grok

_APACHE_HEAD = r"^%{NOTSPACE:host} %{NOTSPACE} (?:-|%{NOTSPACE:user}) \[(?<time>[^\]]*)\] "

NAMED_FORMATS: dict[str, str] = {
    # Fluentd parser_apache2: combined log, path may contain escaped quotes.
    "apache2": _APACHE_HEAD
    + r'"%{NOTSPACE:method}(?: +(?<path>(?:[^\"]|\\.)*?)(?: +\S*)?)?" %{INT:code:int} (?:-|%{INT:size:int})'
    + r'(?: "(?<referer>(?:[^\"]|\\.)*)" "(?<agent>(?:[^\"]|\\.)*)")?$',
    # Fluentd parser_apache (common log, optional referer/agent).
    "apache": _APACHE_HEAD
    + r'"%{NOTSPACE:method}(?: +(?<path>[^ ]*) +\S*)?" %{INT:code:int} (?:-|%{INT:size:int})'
    + r'(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")?$',
    # Fluentd parser_apache_error.
    "apache_error": r"^\[[^ ]* (?<time>[^\]]*)\] \[(?<level>[^\]]*)\](?: \[pid (?<pid>[^\]]*)\])?"
    r"(?: \[client (?<client>[^\]]*)\])? (?<message>.*)$",
    # Fluentd parser_nginx (with the optional X-Forwarded-For tail).
    "nginx": r"^%{NOTSPACE:remote} %{NOTSPACE:host} (?:-|%{NOTSPACE:user}) \[(?<time>[^\]]*)\] "
    r'"%{NOTSPACE:method}(?: +(?<path>[^\"]*?)(?: +\S*)?)?" %{INT:code:int} (?:-|%{INT:size:int})'
    r'(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)"(?:\s+(?<http_x_forwarded_for>[^ ]+))?)?$',
    # Fluentd parser_syslog, RFC 3164, priority optional.
    "syslog": r"^(?:<%{NONNEGINT:pri:int}>)?(?<time>[^ ]* {1,2}[^ ]* [^ ]*) %{NOTSPACE:host} "
    r"(?<ident>[^ :\[]*)(?:\[%{NONNEGINT:pid}\])?(?:[^\:]*\:)? *%{GREEDYDATA:message}$",
    # Fluentd parser_syslog with message_format rfc5424.
    "syslog_rfc5424": r"^<%{NONNEGINT:pri:int}>%{NONNEGINT} (?<time>[^ ]+) %{NOTSPACE:host} %{NOTSPACE:ident} "
    r"%{NOTSPACE:pid} %{NOTSPACE:msgid} (?<extradata>(?:-|(?:\[.*?(?<!\\)\])+))(?: %{GREEDYDATA:message})?$",
    # Logstash's own names, for people who think in grok.
    "combined": "%{COMBINEDAPACHELOG}",
    "common": "%{COMMONAPACHELOG}",
}
NAMED_FORMATS["rfc3164"] = NAMED_FORMATS["syslog"]
NAMED_FORMATS["rfc5424"] = NAMED_FORMATS["syslog_rfc5424"]

_COMPILED: dict[tuple[str, str], Grok] = {}


def compile_named_format(name: str, ecs_compatibility: str = "disabled") -> Grok:
    """The compiled Grok for a named format; ConfigError naming the allowed ones otherwise."""
    key = (name, ecs_compatibility)
    grok = _COMPILED.get(key)
    if grok is not None:
        return grok
    expression = NAMED_FORMATS.get(name)
    if expression is None:
        close = difflib.get_close_matches(name, list(NAMED_FORMATS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown format {name!r}{hint} (named formats: {', '.join(sorted(NAMED_FORMATS))})")
    try:
        grok = Grok(expression, ecs_compatibility=ecs_compatibility)
    except GrokError as exc:  # a bug in the table above, not a user mistake
        raise RuntimeError(f"named format {name!r} does not compile: {exc}") from exc
    _COMPILED[key] = grok
    return grok
