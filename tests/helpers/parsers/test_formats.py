"""Fluentd's parsers against the examples of docs.fluentd.org/parser/… (records, times, types)."""

from __future__ import annotations

import time

import pytest

from logpipe.errors import ConfigError
from logpipe.helpers.parsers import ParseError, build_parser, flat_parse_section

S = 10**9
# 28/Feb/2013:12:00:00 +0900, the docs' example time.
DOC_TIME = 1362020400 * S


def test_apache2_types_code_and_size_and_nils_dashes() -> None:
    t, r = build_parser({"@type": "apache2"}).parse(
        '192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0"')
    assert t == DOC_TIME
    assert r == {"user": None, "method": "GET", "code": 200, "size": 777, "host": "192.168.0.1", "path": "/",
                 "referer": None, "agent": "Opera/12.0"}


def test_nginx_keeps_strings() -> None:
    t, r = build_parser({"@type": "nginx"}).parse(
        '127.0.0.1 192.168.0.1 - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0" -')
    assert t == DOC_TIME
    assert r == {"remote": "127.0.0.1", "host": "192.168.0.1", "user": "-", "method": "GET", "path": "/",
                 "code": "200", "size": "777", "referer": "-", "agent": "Opera/12.0", "http_x_forwarded_for": "-"}


def test_apache_error_with_generic_time() -> None:
    t, r = build_parser({"@type": "apache_error", "utc": True}).parse(
        "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration")
    assert t == 971274772 * S
    assert r == {"level": "error", "client": "127.0.0.1", "message": "client denied by server configuration"}


def test_syslog_rfc3164_without_year_is_this_year() -> None:
    t, r = build_parser({"@type": "syslog", "utc": True}).parse(
        "Feb 28 12:00:00 192.168.0.1 fluentd[11111]: [error] Syslog test")
    assert r == {"host": "192.168.0.1", "ident": "fluentd", "pid": "11111", "message": "[error] Syslog test"}
    assert time.gmtime(t // S)[:6] == (time.gmtime().tm_year, 2, 28, 12, 0, 0)


@pytest.mark.parametrize("message_format", ["rfc5424", "auto"])
def test_syslog_rfc5424(message_format: str) -> None:
    line = ('<16>1 2013-02-28T12:00:00.003Z 192.168.0.1 fluentd 11111 ID24224 [exampleSDID@20224 iut="3" '
            'eventSource="Application" eventID="11211"] Hi, from Fluentd!')
    t, r = build_parser({"@type": "syslog", "message_format": message_format, "with_priority": True}).parse(line)
    assert t == 1362052800 * S + 3_000_000
    assert r == {"pri": 16, "host": "192.168.0.1", "ident": "fluentd", "pid": "11111", "msgid": "ID24224",
                 "extradata": '[exampleSDID@20224 iut="3" eventSource="Application" eventID="11211"]',
                 "message": "Hi, from Fluentd!"}


def test_syslog_auto_falls_back_to_rfc3164_with_priority() -> None:
    _, r = build_parser({"@type": "syslog", "message_format": "auto", "with_priority": True}).parse(
        "<6>Feb 28 12:00:00 192.168.0.1 fluentd[11111]: [error] Syslog test")
    assert r["pri"] == 6 and r["ident"] == "fluentd"


def test_csv_with_time_key_null_pattern_and_types() -> None:
    parser = build_parser({"@type": "csv", "keys": "time,host,req_id,user", "time_key": "time",
                           "time_format": "%Y/%m/%d %H:%M:%S", "timezone": "+09:00",
                           "null_value_pattern": "-", "types": "req_id:integer"})
    t, r = parser.parse('2013/02/28 12:00:00,192.168.0.1,111,-')
    assert t == DOC_TIME and r == {"host": "192.168.0.1", "req_id": 111, "user": None}
    _, quoted = parser.parse('2013/02/28 12:00:00,"a,b",2,x')
    assert quoted["host"] == "a,b"


def test_tsv_and_ltsv() -> None:
    t, r = build_parser({"@type": "tsv", "keys": "time,host", "time_format": "%Y-%m-%d %H:%M:%S",
                         "utc": True}).parse("2013-02-28 03:00:00\t192.168.0.1")
    assert t == DOC_TIME and r == {"host": "192.168.0.1"}
    t, r = build_parser({"@type": "ltsv", "time_format": "[%d/%b/%Y:%H:%M:%S %z]"}).parse(
        "time:[28/Feb/2013:12:00:00 +0900]\thost:192.168.0.1\treq_id:111\tuser:-")
    assert t == DOC_TIME and r == {"host": "192.168.0.1", "req_id": "111", "user": "-"}
    _, r = build_parser({"@type": "ltsv", "delimiter_pattern": "/\\s+/", "label_delimiter": "="}).parse("a=1  b=2")
    assert r == {"a": "1", "b": "2"}


def test_json_time_is_float_unless_a_format_is_given() -> None:
    t, r = build_parser({"@type": "json"}).parse('{"time":1362020400.25,"host":"192.168.0.1","size":777}')
    assert t == DOC_TIME + S // 4 and r == {"host": "192.168.0.1", "size": 777}
    t, r = build_parser({"@type": "json", "time_format": "%iso8601", "keep_time_key": True}).parse(
        '{"time":"2013-02-28T12:00:00+09:00","a":1}')
    assert t == DOC_TIME and r == {"time": "2013-02-28T12:00:00+09:00", "a": 1}
    with pytest.raises(ParseError):
        build_parser({"@type": "json"}).parse("not json")
    with pytest.raises(ParseError):
        build_parser({"@type": "json"}).parse("[1, 2]")


def test_json_null_empty_string_and_estimate_current_event() -> None:
    before = time.time_ns()
    t, r = build_parser({"@type": "json", "null_empty_string": True}).parse('{"a":"","b":"x"}')
    assert r == {"a": None, "b": "x"} and t is not None and t >= before
    t, _ = build_parser({"@type": "json", "estimate_current_event": False}).parse('{"a":1}')
    assert t is None


def test_regexp_time_capture_becomes_event_time_and_types_apply() -> None:
    parser = build_parser({"@type": "regexp",
                           "expression": "/^(?<time>[^ ]+) (?<code>\\d+) (?<ok>\\w+) (?<t>\\S+) (?<l>\\S+)$/",
                           "time_format": "%d/%b/%Y:%H:%M:%S%z",
                           "types": "code:integer,ok:bool,t:time:%d/%b/%Y,l:array:|"})
    t, r = parser.parse("28/Feb/2013:12:00:00+0900 200 true 01/Mar/2013 a|b")
    assert t == DOC_TIME
    assert r == {"code": 200, "ok": True, "t": 1362096000, "l": ["a", "b"]}


def test_regexp_ignorecase_and_unmatched() -> None:
    parser = build_parser({"@type": "regexp", "expression": "^(?<verb>get|put) (?<path>\\S+)$",
                           "ignorecase": True, "estimate_current_event": "false"})
    assert parser.parse("GET /x") == (None, {"verb": "GET", "path": "/x"})
    with pytest.raises(ParseError):
        parser.parse("DELETE /x")


def test_bad_time_is_a_parse_error_not_an_exception() -> None:
    with pytest.raises(ParseError, match="invalid time"):
        build_parser({"@type": "regexp", "expression": "^(?<time>\\S+)$", "time_format": "%Y-%m-%d"}).parse("x")


def test_time_type_unixtime_and_mixed() -> None:
    unix = build_parser({"@type": "regexp", "expression": "^(?<time>\\S+)$", "time_type": "unixtime"})
    assert unix.parse("1362020400")[0] == DOC_TIME
    mixed = build_parser({"@type": "json", "time_type": "mixed", "time_format": "%iso8601",
                          "time_format_fallbacks": "unixtime"})
    assert mixed.parse('{"time": 1362020400}')[0] == DOC_TIME
    assert mixed.parse('{"time": "2013-02-28T03:00:00Z"}')[0] == DOC_TIME


def test_none_and_message_key() -> None:
    assert build_parser({"@type": "none"}).parse("hello")[1] == {"message": "hello"}
    assert build_parser({"@type": "none", "message_key": "log"}).parse("hello")[1] == {"log": "hello"}


def test_multiline_joins_formats_with_dot_matching_newlines() -> None:
    parser = build_parser({"@type": "multiline", "format_firstline": "/^Started/",
                           "format1": "/^Started (?<method>[^ ]+) \"(?<path>[^\"]+)\"/",
                           "format2": "/.*Completed (?<code>\\d+)/"})
    _, r = parser.parse('Started GET "/users"\n  Processing\nCompleted 200 OK')
    assert r == {"method": "GET", "path": "/users", "code": "200"}


def test_multi_format_tries_patterns_in_order() -> None:
    parser = build_parser({"@type": "multi_format", "pattern": [
        {"format": "json"}, {"format": "/^(?<n>\\d+)$/"}, {"format": "none"}]})
    assert parser.parse('{"a":1}')[1] == {"a": 1}
    assert parser.parse("12")[1] == {"n": "12"}
    assert parser.parse("words")[1] == {"message": "words"}


def test_grok_parser_types_failure_key_and_named_sections() -> None:
    parser = build_parser({"@type": "grok", "grok_pattern": "%{IP:ip} %{NUMBER:n:integer} %{WORD:w}",
                           "grok_failure_key": "grokfailure"})
    assert parser.parse("1.2.3.4 12 x")[1] == {"ip": "1.2.3.4", "n": 12, "w": "x"}
    assert parser.parse("zz")[1] == {"message": "zz", "grokfailure": "No grok pattern matched"}
    named = build_parser({"@type": "grok", "grok_name_key": "which", "grok": [
        {"name": "a", "pattern": "^A %{WORD:x}$"}, {"name": "b", "pattern": "^B %{WORD:y:bool}$"}]})
    assert named.parse("B true")[1] == {"y": True, "which": "b"}
    with pytest.raises(ParseError):
        named.parse("C x")


def test_msgpack_parser() -> None:
    import msgpack

    t, r = build_parser({"@type": "msgpack"}).parse(msgpack.packb({"time": 1362020400, "a": "b"}))
    assert t == DOC_TIME and r == {"a": "b"}


@pytest.mark.parametrize("conf, words", [
    ({"@type": "regexp"}, "needs 'expression'"),
    ({"@type": "regexp", "expression": "(?<a>x"}, "invalid regular expression"),
    ({"@type": "csv"}, "needs 'keys'"),
    ({"@type": "jsonn"}, "did you mean 'json'"),
    ({"@type": "json", "types": "a:int"}, "'integer'"),
    ({"@type": "json", "time_type": "epoch"}, "time_type must be one of"),
    ({"@type": "json", "timezone": "Mars/Base"}, "unknown time zone"),
    ({"@type": "json", "tim_key": "x"}, "did you mean 'time_key'"),
    ({"@type": "regexp", "expression": "/^(?<t>.*)$/", "time_format": "%Q%J"}, "unknown directive %J"),
])
def test_config_mistakes(conf: dict, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_parser(conf)
    assert words in err.value.message and err.value.setting in ("parse", "time_type", "timezone", "time_format")


def test_catastrophic_regex_costs_only_its_line() -> None:
    parser = build_parser({"@type": "regexp", "expression": "^(?<a>(x|xx)+)$", "timeout": "0.05"})
    with pytest.raises(ParseError, match="timed out"):
        parser.parse("x" * 5000 + "y")


def test_flat_v012_format_becomes_a_parse_section() -> None:
    assert flat_parse_section("/^(?<a>.)$/", {"time_format": "%s"}) == {
        "@type": "regexp", "expression": "/^(?<a>.)$/", "time_format": "%s"}
    assert flat_parse_section("apache2", {})["@type"] == "apache2"
