"""Line-to-record parsers of the Logstash file input.

A parser turns a batch of decoded lines into records, one per line, in one call:
the per-line loop is the hot path. Formats: `none` (`{"message": line}`), `json`
(orjson; a line that is not a JSON object keeps its text as `message` and gets
`_jsonparsefailure`), `regexp` / `/…/` (Fluentd's named groups, `(?<name>…)`), and
named formats from the grok engine (`apache2`, `nginx`, `syslog` …; a line that
does not match keeps `message` and gets `_grokparsefailure`). Fluentd's `<parse>`
parsers live in logpipe.helpers.parsers. Failures are counted, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from logpipe.errors import ConfigError
from logpipe.grok.errors import GrokTimeout
from logpipe.metrics import PluginMetric, PluginMetrics
from logpipe.regex_budget import TIMEOUT_TAG, BoundedPattern, RegexTimeout, batch_guard

Parser = Callable[[list[str]], list[dict[str, Any]]]
JSON_PARSE_FAILURE_TAG = "_jsonparsefailure"
#: Takes the parsed time out of a record (Fluentd: the `time` field becomes the event time).
TimeExtractor = Callable[[dict[str, Any]], "int | None"]

#: Time layouts of Fluentd's named formats, as Joda patterns for logpipe.timefmt.
_FORMAT_TIMES = {
    "apache2": "dd/MMM/yyyy:HH:mm:ss Z", "apache": "dd/MMM/yyyy:HH:mm:ss Z", "nginx": "dd/MMM/yyyy:HH:mm:ss Z",
    "syslog": "MMM d HH:mm:ss", "rfc3164": "MMM d HH:mm:ss", "syslog_rfc5424": "ISO8601", "rfc5424": "ISO8601",
}



def parse_none(lines: list[str]) -> list[dict[str, Any]]:
    return [{"message": line} for line in lines]


def make_json_parser(metrics: PluginMetrics) -> Parser:
    failures = metrics.counter("parse_failures", "lines the input could not parse", format="json")
    return lambda lines: json_records(lines, failures)


def json_records(lines: list[str], failures: PluginMetric, arrays: bool = False) -> list[dict[str, Any]]:
    """A JSON object per line; a line that is not one keeps its text as `message`, is tagged
    _jsonparsefailure and counted. With `arrays` (Logstash's json codec) a line holding an
    array of objects gives each of them."""
    out: list[dict[str, Any]] = []
    append = out.append
    loads = orjson.loads
    for line in lines:
        try:
            value = loads(line)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is dict:
            append(value)
        elif arrays and type(value) is list and all(type(v) is dict for v in value):
            out.extend(value)
        else:
            failures.inc()
            append({"message": line, "tags": [JSON_PARSE_FAILURE_TAG]})
    return out


def make_regex_parser(expression: str, metrics: PluginMetrics, setting: str, flags: int = 0) -> Parser:
    """Fluentd `regexp` format: named groups become fields."""
    source, flags = _regex_literal(expression, flags)
    try:
        match = BoundedPattern(re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", source), flags), "parser").match
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {expression!r}: {exc}", setting=setting) from None
    return _matcher_parser(match, metrics, "regexp", "_regexparsefailure")


def make_named_parser(name: str, metrics: PluginMetrics, setting: str) -> Parser:
    """Named formats (apache2, nginx, syslog …) come from the grok engine."""
    try:
        from logpipe.grok.formats import compile_named_format
    except ImportError:
        raise ConfigError(f"unknown format {name!r}: allowed are none, json, regexp, /regex/ "
                          "(named formats need logpipe.grok.formats)", setting=setting) from None
    try:
        grok = compile_named_format(name)
    except ConfigError as exc:
        raise ConfigError(exc.message, setting=setting) from None
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"unknown format {name!r}: {exc}", setting=setting) from None
    return _matcher_parser(grok.match, metrics, name, "_grokparsefailure", dict_result=True)


def _matcher_parser(match: Callable[[str], Any], metrics: PluginMetrics, fmt: str, failure_tag: str,
                    dict_result: bool = False) -> Parser:
    failures = metrics.counter("parse_failures", "lines the input could not parse", format=fmt)
    timeouts = metrics.counter("parse_timeouts", "lines whose format regex ran out of time", format=fmt)

    def parse(lines: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        append = out.append
        with batch_guard():
            for line in lines:
                try:
                    m = match(line)
                except (RegexTimeout, GrokTimeout):
                    timeouts.inc()
                    append({"message": line, "tags": [TIMEOUT_TAG]})
                    continue
                if m is None:
                    failures.inc()
                    append({"message": line, "tags": [failure_tag]})
                else:
                    append(dict(m) if dict_result else {k: v for k, v in m.groupdict().items() if v is not None})
        return out

    return parse


def make_parser(fmt: Any, metrics: PluginMetrics, setting: str = "format") -> Parser:
    """`format` as written: none | json | regexp-literal `/…/` | a named format."""
    text = str(fmt).strip()
    if text in ("", "none", "plain", "line"):
        return parse_none
    if text in ("json", "json_lines"):
        return make_json_parser(metrics)
    if text.startswith("/"):
        return make_regex_parser(text, metrics, setting)
    return make_named_parser(text, metrics, setting)


def _regex_literal(text: str, flags: int) -> tuple[str, int]:
    """`/body/flags` as written in Fluentd configs, or a bare expression."""
    m = re.fullmatch(r"/(.*)/([imx]*)", text.strip(), re.DOTALL)
    if not m:
        return text, flags
    for flag in m.group(2):
        flags |= {"i": re.IGNORECASE, "m": re.DOTALL, "x": re.VERBOSE}[flag]
    return m.group(1), flags


def make_time_extractor(fmt: Any) -> TimeExtractor | None:
    """For Fluentd's named formats: parse the `time` capture into the event time and drop
    it from the record (Fluentd's keep_time_key false). A time that does not parse stays
    in the record and the event keeps its read time."""
    pattern = _FORMAT_TIMES.get(str(fmt).strip())
    if pattern is None:
        return None
    from logpipe.timefmt import compile_joda_parser

    parse = compile_joda_parser(pattern)
    squeeze = pattern.startswith("MMM")  # syslog pads the day with a space: "Oct  1"

    def extract(record: dict[str, Any]) -> int | None:
        text = record.get("time")
        if not isinstance(text, str):
            return None
        ns = parse(" ".join(text.split()) if squeeze else text)
        if ns is not None:
            del record["time"]
        return ns

    return extract
