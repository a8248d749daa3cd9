"""Vectors derived from logstash-filter-kv's spec (spec/filters/kv_spec.rb): the same settings and
messages, and the fields Logstash extracts (None = the field must be absent)."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, get_field
from logpipe_plugins.filters.kv import KvFilter

ALL = ("hello=world foo=bar baz=fizz doublequoted=\"hello world\" singlequoted='hello world' "
       "bracketsone=(hello world) bracketstwo=[hello world] bracketsthree=<hello world>")
FIVE = "hello=world foo=bar baz=fizz doublequoted=\"hello world\" singlequoted='hello world'"
ALL_EXPECTED = {"hello": "world", "foo": "bar", "baz": "fizz", "doublequoted": "hello world",
                "singlequoted": "hello world", "bracketsone": "hello world", "bracketstwo": "hello world",
                "bracketsthree": "hello world"}
FIVE_EXPECTED = {k: ALL_EXPECTED[k] for k in ("hello", "foo", "baz", "doublequoted", "singlequoted")}
SLOPPY = ("hello = world foo =bar baz= fizz doublequoted = \"hello world\" singlequoted= 'hello world' "
          "brackets =(hello world)")
SPACED = {"hello": "world", "foo": "bar", "baz": "fizz", "doublequoted": "hello world", "singlequoted": "hello world",
          "brackets": "hello world"}
POSTFIX = ("to=<foo@example.com>, orig_to=<bar@example.com>, %+relay=mail.example.com[private/dovecot-lmtp], "
           "delay=2.2, delays=1.9/0.01/0.01/0.21, dsn=2.0.0, status=sent (250 2.0.0 <foo@example.com> "
           "YERDHejiRSXFDSdfUXTV Saved)")

VECTORS: list[tuple[str, dict[str, Any], dict[str, Any] | str, dict[str, Any]]] = [
    ("defaults", {}, ALL, ALL_EXPECTED),
    ("uppercase keys, lowercase values", {"transform_key": "uppercase", "transform_value": "lowercase"},
     "hello = world Foo =Bar BAZ= FIZZ doublequoteD = \"hellO worlD\" Singlequoted= 'Hello World' "
     "brAckets =(hello World)",
     {"HELLO": "world", "FOO": "bar", "BAZ": "fizz", "DOUBLEQUOTED": "hello world", "SINGLEQUOTED": "hello world",
      "BRACKETS": "hello world"}),
    ("strict, unquoted", {"whitespace": "strict"},
     "IN=eth0 OUT= MAC=0f:5f:5e:aa:d3:a2:21:ff:09:00:0f:e1:c8:17 SRC=192.168.0.1",
     {"IN": "eth0", "OUT": None, "MAC": "0f:5f:5e:aa:d3:a2:21:ff:09:00:0f:e1:c8:17", "SRC": "192.168.0.1"}),
    ("strict, mixed quotations", {"whitespace": "strict"},
     'hello=world goodbye=cruel\\ world empty_quoted="" quoted="value1" empty_unquoted= unquoted=value2 '
     'empty_bracketed=[] bracketed=[value3] cake=delicious',
     {"hello": "world", "goodbye": "cruel\\ world", "empty_quoted": None, "quoted": "value1", "empty_unquoted": None,
      "unquoted": "value2", "empty_bracketed": None, "bracketed": "value3", "cake": "delicious"}),
    ("strict, sloppy input", {"whitespace": "strict"},
     "hello = world foo =bar baz= fizz whitespace=none doublequoted = \"hello world\" singlequoted= 'hello world' "
     "brackets =(hello world) strict=true",
     {"whitespace": "none", "strict": "true", "hello": None, "foo": None, "baz": None, "doublequoted": None,
      "singlequoted": None, "brackets": None}),
    ("lowercase keys, uppercase values", {"transform_key": "lowercase", "transform_value": "uppercase"},
     "Hello = World fOo =bar baz= FIZZ DOUBLEQUOTED = \"hellO worlD\" singlequoted= 'hEllo wOrld' "
     "brackets =(HELLO world)",
     {"hello": "WORLD", "foo": "BAR", "baz": "FIZZ", "doublequoted": "HELLO WORLD", "singlequoted": "HELLO WORLD",
      "brackets": "HELLO WORLD"}),
    ("capitalize", {"transform_key": "capitalize", "transform_value": "capitalize"},
     "Hello = World fOo =bar baz= FIZZ DOUBLEQUOTED = \"hellO worlD\" singlequoted= 'hEllo wOrld' "
     "brackets =(HELLO world)",
     {"Hello": "World", "Foo": "Bar", "Baz": "Fizz", "Doublequoted": "Hello world", "Singlequoted": "Hello world",
      "Brackets": "Hello world"}),
    ("spaces attached to the splitter", {}, SLOPPY, SPACED),
    ("escaped spaces", {"value_split": ":"},
     r"IKE:=Quick\ Mode\ completion IKE\ IDs:=subnet:\ x.x.x.x\ (mask=\ 255.255.255.254)\ and\ host:\ y.y.y.y",
     {"IKE": r"=Quick\ Mode\ completion",
      r"IKE\ IDs": r"=subnet:\ x.x.x.x\ (mask=\ 255.255.255.254)\ and\ host:\ y.y.y.y"}),
    ("alternate value_split", {"value_split": ":"},
     "hello:=world foo:bar baz=:fizz doublequoted:\"hello world\" singlequoted:'hello world' brackets:(hello world)",
     {"hello": "=world", "foo": "bar", "baz=": "fizz", "doublequoted": "hello world", "singlequoted": "hello world",
      "brackets": "hello world"}),
    ("recursive without inner splitter", {"recursive": True}, "foo=bar", {"foo": "bar"}),
    ("recursive with inner splitter", {"recursive": True}, "foo=1 bar=(baz=2)", {"foo": "1", "[bar][baz]": "2"}),
    ("field_split ?&", {"field_split": "?&"},
     "?hello=world&foo=bar&baz=fizz&doublequoted=\"hello world\"&singlequoted='hello world'&ignoreme&foo12=bar12",
     {**FIVE_EXPECTED, "foo12": "bar12"}),
    ("include_brackets false", {"include_brackets": False}, "bracketsone=(hello world) bracketstwo=[hello world]",
     {"bracketsone": "(hello", "bracketstwo": "[hello"}),
    ("recursive", {"recursive": True},
     r'IKE="Quick Mode completion" IKE\ IDs = (subnet= x.x.x.x mask= 255.255.255.254 and host=y.y.y.y)',
     {"IKE": "Quick Mode completion", r"[IKE\ IDs][subnet]": "x.x.x.x", r"[IKE\ IDs][mask]": "255.255.255.254",
      r"[IKE\ IDs][host]": "y.y.y.y"}),
    ("field_split |", {"field_split": "|"}, "field1=test|field2=another test|field3=test3",
     {"field1": "test", "field2": "another test", "field3": "test3"}),
    ("prefix", {"prefix": "__"}, FIVE, {f"__{k}": v for k, v in FIVE_EXPECTED.items()}),
    ("add_tag on success", {"add_tag": ["hello"]}, "hello=world", {"hello": "world", "tags": ["hello"]}),
    ("no add_tag on failure", {"add_tag": ["hello"]}, "this is not key value", {"tags": None}),
    ("add_field on success", {"add_field": {"whoa": "fancypants"}}, "hello=world",
     {"hello": "world", "whoa": "fancypants"}),
    ("target", {"target": "kv"}, FIVE, {f"[kv][{k}]": v for k, v in FIVE_EXPECTED.items()}),
    ("empty target", {"target": "kv"}, "hello:world:foo:bar:baz:fizz", {"kv": None}),
    ("sub source", {"source": "data"}, {"data": FIVE}, FIVE_EXPECTED),
    ("top source", {"source": "@data"}, {"@data": FIVE}, FIVE_EXPECTED),
    ("literal backslash patterns", {"source": "headers", "field_split_pattern": "\\\\r\\\\n",
                                    "value_split_pattern": ": ", "whitespace": "strict", "target": "headerskv"},
     {"headers": "Host: foo.com\\r\\nUser-Agent: Qwerty/1.2.3 (www.qwerty.org)\\r\\nContent-Type: text/xml; "
                 "charset=utf-8\\r\\nAccept: */*\\r\\nAccept-Encoding: gzip, deflate\\r\\nContent-Length: 123"
                 "\\r\\nX-UUID: 0:15713435944943992"},
     {"[headerskv][Host]": "foo.com", "[headerskv][User-Agent]": "Qwerty/1.2.3 (www.qwerty.org)",
      "[headerskv][Content-Type]": "text/xml; charset=utf-8", "[headerskv][Accept]": "*/*",
      "[headerskv][Accept-Encoding]": "gzip, deflate", "[headerskv][Content-Length]": "123",
      "[headerskv][X-UUID]": "0:15713435944943992"}),
    ("sub source and target", {"source": "data", "target": "kv"}, {"data": FIVE},
     {f"[kv][{k}]": v for k, v in FIVE_EXPECTED.items()}),
    ("missing source", {"source": "non-exisiting-field", "target": "kv"}, "", {"kv": None, "tags": None}),
    ("include_keys", {"include_keys": ["foo", "singlequoted"]}, FIVE,
     {"foo": "bar", "singlequoted": "hello world", "hello": None, "baz": None}),
    ("exclude_keys", {"exclude_keys": ["foo", "singlequoted"]}, FIVE,
     {"hello": "world", "baz": "fizz", "doublequoted": "hello world", "foo": None, "singlequoted": None}),
    ("include_keys with prefix", {"include_keys": ["foo", "singlequoted"], "prefix": "__"}, FIVE,
     {"__foo": "bar", "__singlequoted": "hello world", "__hello": None}),
    ("exclude_keys with prefix", {"exclude_keys": ["foo", "singlequoted"], "prefix": "__"}, FIVE,
     {"__hello": "world", "__baz": "fizz", "__doublequoted": "hello world", "__foo": None}),
    ("include_keys sprintf", {"source": "data", "include_keys": ["%{key}"]}, {"data": "foo=bar baz=fizz", "key": "foo"},
     {"foo": "bar", "baz": None}),
    ("exclude_keys sprintf", {"source": "data", "exclude_keys": ["%{key}"]}, {"data": "foo=bar baz=fizz", "key": "foo"},
     {"foo": None, "baz": "fizz"}),
    ("include and exclude", {"include_keys": ["foo", "singlequoted"], "exclude_keys": ["foo", "singlequoted"]}, FIVE,
     {"hello": None, "foo": None, "baz": None, "doublequoted": None, "singlequoted": None}),
    ("default_keys", {"default_keys": {"foo": "xxx", "goo": "yyy"}}, FIVE, {**FIVE_EXPECTED, "goo": "yyy"}),
    ("overwrite the source", {"source": "happy", "target": "happy"}, {"happy": "foo=bar baz=fizz"},
     {"[happy][foo]": "bar", "[happy][baz]": "fizz"}),
    ("no duplicate values", {"field_split": "&", "source": "source", "allow_duplicate_values": False},
     {"source": "foo=bar&foo=yeah&foo=yeah"}, {"foo": ["bar", "yeah"]}),
    ("allow empty values", {"field_split": " ", "source": "source", "allow_empty_values": True, "whitespace": "strict"},
     {"source": "present=one empty= emptyquoted='' present=two emptybracketed=[] endofinput="},
     {"present": ["one", "two"], "empty": "", "emptyquoted": "", "emptybracketed": "", "endofinput": ""}),
    ("duplicates by default", {"field_split": "&", "source": "source"}, {"source": "foo=bar&foo=yeah&foo=yeah"},
     {"foo": ["bar", "yeah", "yeah"]}),
    ("keys without values", {"field_split": "\r\n", "value_split": " ", "trim_key": ":"},
     "AccountStatus: 4\r\nAdditionalInformation\r\n\r\nCode: \r\nHttpStatusCode: \r\nIsSuccess: True\r\nMessage: \r\n",
     {"AccountStatus": "4", "IsSuccess": "True", "AdditionalInformation": None, "Code": None, "HttpStatusCode": None,
      "Message": None}),
    ("trim leading and trailing", {"field_split": "|", "value_split": "=", "trim_value": " ", "trim_key": " "},
     "key1= value1 with spaces | key2 with spaces =value2",
     {"key1": "value1 with spaces", "key2 with spaces": "value2"}),
    ("trim repeated", {"field_split": "|", "value_split": "=", "trim_value": " ", "trim_key": " "},
     "key1=  value1 with spaces    |  key2 with spaces  =value2",
     {"key1": "value1 with spaces", "key2 with spaces": "value2"}),
    ("trim multi-character", {"field_split": " ", "value_split": "=", "trim_value": "<>,", "trim_key": "%+"}, POSTFIX,
     {"to": "foo@example.com", "orig_to": "bar@example.com", "relay": "mail.example.com[private/dovecot-lmtp]",
      "delay": "2.2", "delays": "1.9/0.01/0.01/0.21", "dsn": "2.0.0", "status": "sent"}),
    ("remove chars", {"field_split": "|", "value_split": "=", "remove_char_value": " ", "remove_char_key": " "},
     "key1= value1 with spaces | key2 with spaces =value2", {"key1": "value1withspaces", "key2withspaces": "value2"}),
    ("single split", {"field_split": " ", "value_split": ":"}, ALL.replace("=", ":"), ALL_EXPECTED),
    ("value split multi", {"field_split": " ", "value_split_pattern": "::"}, ALL.replace("=", "::"), ALL_EXPECTED),
    ("multi-char field split, quoted then unquoted", {"field_split_pattern": "!!!!!"},
     'foo=bar!!!!!baz="quoted stuff" and more unquoted!!!!!msg="fully-quoted with a part! of the separator"'
     '!!!!!blip="this!!!!!is it"!!!!!empty=""!!!!!non-empty="foo"',
     {"foo": "bar", "baz": '"quoted stuff" and more unquoted', "msg": "fully-quoted with a part! of the separator",
      "blip": "this!!!!!is it", "empty": None, "non-empty": "foo"}),
    ("standard split, quoted then unquoted", {},
     'foo=bar baz="quoted stuff" and more unquoted msg="some fully-quoted message " empty="" non-empty="foo"',
     {"foo": "bar", "baz": "quoted stuff", "msg": "some fully-quoted message ", "empty": None, "non-empty": "foo"}),
    ("field and value split multi", {"field_split_pattern": "__", "value_split_pattern": "::"},
     ALL.replace("=", "::").replace(" ", "__").replace("hello__world", "hello world")
        .replace("\"hello world\"", "\"hello world\""), ALL_EXPECTED),
    ("split multi with regex", {"field_split_pattern": "_+", "value_split_pattern": ":+"},
     "hello:world_foo::bar__baz:::fizz___doublequoted:::\"hello world\"____singlequoted:::::'hello world'____"
     "bracketsone:::(hello world)__bracketstwo:[hello world]_bracketsthree::::::<hello world>", ALL_EXPECTED),
    ("split multi single char", {"field_split_pattern": " ", "value_split_pattern": ":"}, ALL.replace("=", ":"),
     ALL_EXPECTED),
    ("split multi escaping", {"field_split_pattern": "\\?\\?", "value_split_pattern": "\\+\\+"},
     "hello++world??foo++bar??baz++fizz??doublequoted++\"hello world\"??singlequoted++'hello world'??"
     "bracketsone++(hello world)??bracketstwo++[hello world]??bracketsthree++<hello world>", ALL_EXPECTED),
    ("lookahead patterns (#15)", {"field_split_pattern": ";\\s*(?=key.+?:)|;$", "value_split_pattern": ":\\s+"},
     'key1: val1; key2: val2; key3:  https://site/?g={......"...;  CLR  rv:11.0)"..}; key4: val4;',
     {"key1": "val1", "key2": "val2", "key3": 'https://site/?g={......"...;  CLR  rv:11.0)"..}', "key4": "val4"}),
    ("empty values, char class", {"field_split": "|", "value_split": "="}, "a=1|b=|c=3",
     {"a": "1", "b": None, "c": "3"}),
    ("empty values, patterns", {"field_split_pattern": "\\|", "value_split_pattern": "="}, "a=1|b=|c=3",
     {"a": "1", "b": None, "c": "3"}),
    ("non-pathological with timeout", {"value_split_pattern": "(?:=+=+)+:", "timeout_millis": 250},
     "foo==:bar baz==:bingo", {"foo": "bar", "baz": "bingo"}),
]


def _record(message: dict[str, Any] | str) -> dict[str, Any]:
    return dict(message) if isinstance(message, dict) else {"message": message}


@pytest.mark.parametrize(("name", "settings", "message", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_spec_vector(name: str, settings: dict[str, Any], message: dict[str, Any] | str,
                     expected: dict[str, Any]) -> None:
    ev = Event("t", 0, _record(message))
    KvFilter(**settings).filter([ev])
    for ref, want in expected.items():
        have = get_field(ev, ref)
        if want is None:
            assert have is MISSING, (ref, ev.record)
        else:
            assert have == want, (ref, ev.record)


@pytest.mark.parametrize("settings", [{"value_split": ""}, {"value_split_pattern": ""}, {"field_split_pattern": ""}])
def test_empty_splitters_are_config_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        KvFilter(**settings)


@pytest.mark.parametrize(("extra", "tag"), [({}, "_kv_filter_timeout"), ({"tag_on_timeout": "BADKV"}, "BADKV")])
def test_pathological_input_times_out_tagged(extra: dict[str, Any], tag: str) -> None:
    ev = Event("t", 0, {"message": "foo========:bar baz================================================bingo"})
    KvFilter(value_split_pattern="(?:=+=+)+:", timeout_millis=250, default_keys={"default": "key"},
             add_field={"kv": "success"}, **extra).filter([ev])
    assert tag in ev.record["tags"]
    assert "default" not in ev.record and "kv" not in ev.record
