"""Fluentd `<format>` types, byte for byte. Vectors from Fluentd 1.14's
test/plugin/test_formatter_{json,hash,ltsv,csv,tsv,single_value,msgpack,out_file}.rb and
test_out_stdout.rb (the expected strings, not their code)."""

from __future__ import annotations

import os
import time

import msgpack
import pytest

from logpipe.errors import ConfigError
from logpipe.helpers.formatter import build_formatter
from logpipe.helpers.ruby_text import ruby_inspect, ruby_to_s

S = 1_000_000_000
RECORD = {"message": "awesome", "greeting": "hello"}
#: 2016-07-26 21:08:30 -0700 (test_formatter_out_file.rb)
T_PDT = 1469592510 * S


def fmt(conf: dict, record: dict | None = None, tag: str = "tag", t: int = T_PDT) -> bytes:
    return build_formatter(conf).format(tag, t, RECORD if record is None else record)


@pytest.fixture
def tz_utc_plus_07():
    """ENV['TZ'] = "UTC+07" as Fluentd's test does (POSIX: seven hours west of UTC)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC+07"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(("newline", "end"), [("lf", b"\n"), ("crlf", b"\r\n")])
def test_ltsv(newline: str, end: bytes) -> None:
    assert fmt({"@type": "ltsv", "newline": newline}) == b"message:awesome\tgreeting:hello" + end
    assert fmt({"@type": "ltsv", "delimiter": ",", "label_delimiter": "=", "newline": newline}) == \
        b"message=awesome,greeting=hello" + end
    assert fmt({"@type": "ltsv", "add_newline": "false"}) == b"message:awesome\tgreeting:hello"


def test_ltsv_replaces_the_delimiter_inside_values_and_writes_ruby_to_s() -> None:
    assert fmt({"@type": "ltsv"}, {"a": "x\ty", "n": None, "f": 1.0, "h": {"k": 1}}) == \
        b'a:x y\tn:\tf:1.0\th:{"k"=>1}\n'


@pytest.mark.parametrize(("newline", "end"), [("lf", b"\n"), ("crlf", b"\r\n")])
def test_hash(newline: str, end: bytes) -> None:
    assert fmt({"@type": "hash", "newline": newline}) == b'{"message"=>"awesome", "greeting"=>"hello"}' + end
    assert fmt({"@type": "hash", "add_newline": False}) == b'{"message"=>"awesome", "greeting"=>"hello"}'


def test_ruby_inspect_of_values() -> None:
    assert ruby_inspect({"a": [1, 2.5, None, True], "b": {}, "c": 'q"\\\n\x1b#{x}', "d": 1e20}) == \
        '{"a"=>[1, 2.5, nil, true], "b"=>{}, "c"=>"q\\"\\\\\\n\\e\\#{x}", "d"=>1.0e+20}'
    assert ruby_to_s(None) == "" and ruby_to_s(0.0001) == "0.0001" and ruby_to_s(0.00001) == "1.0e-05"
    assert ruby_inspect("日本") == '"日本"'


@pytest.mark.parametrize(("newline", "end"), [("lf", b"\n"), ("crlf", b"\r\n")])
def test_json(newline: str, end: bytes) -> None:
    assert fmt({"@type": "json", "newline": newline}) == b'{"message":"awesome","greeting":"hello"}' + end
    assert fmt({"@type": "json", "add_newline": "false"}) == b'{"message":"awesome","greeting":"hello"}'
    assert fmt({"@type": "json", "json_parser": "yajl"}, {"u": "é/"}) == '{"u":"é/"}\n'.encode()


def test_msgpack_is_the_record() -> None:
    out = fmt({"@type": "msgpack"})
    assert msgpack.unpackb(out) == RECORD
    assert out == msgpack.packb(RECORD)


@pytest.mark.parametrize(("newline", "end"), [("lf", b"\n"), ("crlf", b"\r\n")])
def test_single_value(newline: str, end: bytes) -> None:
    assert fmt({"@type": "single_value", "newline": newline}, {"message": "awesome"}) == b"awesome" + end
    assert fmt({"@type": "single_value", "add_newline": "false"}, {"message": "awesome"}) == b"awesome"
    assert fmt({"@type": "single_value", "message_key": "foobar", "newline": newline}, {"foobar": "foo"}) == \
        b"foo" + end
    assert fmt({"@type": "single_value"}, {"other": 1}) == b"\n"


@pytest.mark.parametrize(("newline", "end"), [("lf", b"\n"), ("crlf", b"\r\n")])
def test_tsv(newline: str, end: bytes) -> None:
    assert fmt({"@type": "tsv", "keys": "message,greeting", "newline": newline}) == b"awesome\thello" + end
    assert fmt({"@type": "tsv", "keys": "message,greeting", "add_newline": False}) == b"awesome\thello"
    assert fmt({"@type": "tsv", "keys": "message,greeting", "delimiter": ","}) == b"awesome,hello\n"
    with pytest.raises(ConfigError, match="needs 'keys'"):
        build_formatter({"@type": "tsv"})


def test_csv_vectors() -> None:
    two = {"message": "awesome", "message2": "awesome2"}
    assert fmt({"@type": "csv", "fields": "message,message2"}, two) == b'"awesome","awesome2"\n'
    assert fmt({"@type": "csv", "fields": "message,$.nest.key"}, {"message": "awesome", "nest": {"key": "awesome2"}}
               ) == b'"awesome","awesome2"\n'
    assert fmt({"@type": "csv", "fields": "message,message2", "add_newline": False}, two) == b'"awesome","awesome2"'
    assert fmt({"@type": "csv", "fields": "message,message2", "delimiter": "\t"}, two) == b'"awesome"\t"awesome2"\n'
    for spelled in ("\\t", "TAB"):
        assert fmt({"@type": "csv", "fields": "message,message2", "delimiter": spelled}, two) == \
            b'"awesome"\t"awesome2"\n'
    assert fmt({"@type": "csv", "fields": "message,message2", "delimiter": "|"}, two) == b'"awesome"|"awesome2"\n'
    assert fmt({"@type": "csv", "fields": "message,message2", "force_quotes": False}, two) == b"awesome,awesome2\n"
    for middle in (None, ""):
        assert fmt({"@type": "csv", "fields": "message,message2,message3"},
                   {"message": "awesome", "message2": middle, "message3": "awesome3"}) == b'"awesome","","awesome3"\n'
    assert build_formatter({"@type": "csv", "fields": "one , two , three"}).fields == ["one", "two", "three"]
    assert build_formatter({"@type": "csv", "fields": "one,,two,three"}).fields == ["one", "two", "three"]
    for empty in ([], ["", ""]):
        with pytest.raises(ConfigError, match="empty value is specified in fields parameter"):
            build_formatter({"@type": "csv", "fields": empty})


def test_csv_unforced_quotes_only_what_needs_them() -> None:
    conf = {"@type": "csv", "fields": "a,b,c,d,e", "force_quotes": "false"}
    assert fmt(conf, {"a": 'say "hi"', "b": "x,y", "c": None, "d": "", "e": 12}) == b'"say ""hi""","x,y",,"",12\n'


def test_out_file_default_and_options() -> None:
    base = {"@type": "out_file", "utc": "true"}
    assert fmt(base) == b'2016-07-27T04:08:30Z\ttag\t{"message":"awesome","greeting":"hello"}\n'
    assert fmt({**base, "newline": "crlf"}).endswith(b"}\r\n")
    assert fmt({**base, "output_time": "false"}) == b'tag\t{"message":"awesome","greeting":"hello"}\n'
    assert fmt({**base, "output_tag": "false"}) == b'2016-07-27T04:08:30Z\t{"message":"awesome","greeting":"hello"}\n'
    assert fmt({**base, "output_tag": "false", "output_time": "false"}) == b'{"message":"awesome","greeting":"hello"}\n'
    assert fmt({**base, "delimiter": "SPACE"}).startswith(b"2016-07-27T04:08:30Z tag {")
    assert fmt({**base, "delimiter": "comma"}).startswith(b"2016-07-27T04:08:30Z,tag,{")
    assert fmt({**base, "delimiter": ","}).startswith(b"2016-07-27T04:08:30Z\ttag\t{")  # Fluentd: only the words
    assert fmt({**base, "time_format": "%Y%m%d %H:%M:%S.%L %z"}).startswith(b"20160727 04:08:30.000 +0000\t")
    assert fmt({"@type": "out_file", "timezone": "+09:00"}).startswith(b"2016-07-27T13:08:30+09:00\t")
    assert fmt({"@type": "out_file", "timezone": "Asia/Tokyo", "time_format": "%H:%M %Z"}).startswith(b"13:08 JST\t")
    assert fmt({**base, "time_type": "unixtime"}).startswith(b"1469592510\t")


def test_out_file_float_time_as_fluentd_1_14_writes_it() -> None:
    conf = {"@type": "out_file", "time_type": "float", "output_tag": False}
    assert fmt(conf, {}, t=T_PDT + 123456789) == b"1469592510.123456789\t{}\n"
    assert fmt(conf, {}, t=T_PDT + 5_000_000) == b"1469592510.00\t{}\n"  # Fluentd's format_float


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("localtime", "true", b"2016-07-26T21:08:30-07:00"),
    ("utc", "false", b"2016-07-26T21:08:30-07:00"),
    ("localtime", "false", b"2016-07-27T04:08:30Z"),
    ("utc", "true", b"2016-07-27T04:08:30Z"),
])
def test_out_file_utc_or_localtime(tz_utc_plus_07: None, key: str, value: str, expected: bytes) -> None:
    assert fmt({"@type": "out_file", key: value}, tag="test") == \
        expected + b'\ttest\t{"message":"awesome","greeting":"hello"}\n'


@pytest.mark.parametrize("value", ["true", "false"])
def test_out_file_utc_and_localtime_together(value: str) -> None:
    with pytest.raises(ConfigError, match="both of utc and localtime are specified, use only one of them"):
        build_formatter({"@type": "out_file", "utc": value, "localtime": value})


def test_stdout_line_in_local_time(tz_utc_plus_07: None) -> None:
    t = T_PDT + 5_000_000
    assert fmt({"@type": "stdout"}, {"test": "test"}, tag="test", t=t) == \
        b'2016-07-26 21:08:30.005000000 -0700 test: {"test":"test"}\n'
    assert fmt({"@type": "stdout", "output_type": "hash"}, {"test": "test2"}, tag="test", t=t) == \
        b'2016-07-26 21:08:30.005000000 -0700 test: {"test"=>"test2"}\n'
    assert fmt({"@type": "stdout", "time_format": "%Y-%m-%dT%H:%M:%S.%L%z"}, {"test": "test"}, tag="test", t=t) == \
        b'2016-07-26T21:08:30.005-0700 test: {"test":"test"}\n'
    assert fmt({"@type": "stdout", "output_type": "ltsv", "newline": "crlf"}, {"a": 1}, tag="t", t=t) == \
        b"2016-07-26 21:08:30.005000000 -0700 t: a:1\n"
    with pytest.raises(ConfigError, match="output_type 'foo'"):
        build_formatter({"@type": "stdout", "output_type": "foo"})


def test_mistakes_name_the_parameter() -> None:
    with pytest.raises(ConfigError) as err:
        build_formatter({"@type": "ltsv", "label_delimeter": "="})
    assert err.value.setting == "format.label_delimeter" and "did you mean 'label_delimiter'" in err.value.message
    with pytest.raises(ConfigError) as err:
        build_formatter({"@type": "jsn"})
    assert "did you mean 'json'" in err.value.message
    with pytest.raises(ConfigError) as err:
        build_formatter({"@type": "json", "newline": "cr"})
    assert err.value.setting == "format.newline"
    with pytest.raises(ConfigError):
        build_formatter({"@type": "out_file", "output_time": "maybe"})
    with pytest.raises(ConfigError, match="only one <format>"):
        build_formatter([{"@type": "json"}, {"@type": "json"}])


def test_every_formatter_takes_the_time_parameters() -> None:
    assert fmt({"@type": "json", "localtime": "", "time_format": "%s"}, {"a": 1}) == b'{"a":1}\n'
