"""cef, dots, msgpack and es_bulk codecs: vectors from the Logstash codecs' specs."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from logpipe.event import Event
from logpipe_plugins.codecs.cef import CefCodec
from logpipe_plugins.codecs.dots import DotsCodec
from logpipe_plugins.codecs.es_bulk import EsBulkCodec
from logpipe_plugins.codecs.msgpack import MsgpackCodec

SIMPLE = "CEF:0|security|threatmanager|1.0|100|trojan successfully stopped|10|src=10.0.0.192 dst=12.121.122.82 spt=1232"


def decode(codec: CefCodec, line: str) -> dict[str, Any]:
    (record,) = codec.decode([line])
    return record


def test_cef_decode_legacy_header_and_extensions() -> None:
    rec = decode(CefCodec(ecs_compatibility="disabled"), SIMPLE)
    assert rec == {"cefVersion": "0", "deviceVendor": "security", "deviceProduct": "threatmanager",
                   "deviceVersion": "1.0", "deviceEventClassId": "100", "name": "trojan successfully stopped",
                   "severity": "10", "sourceAddress": "10.0.0.192", "destinationAddress": "12.121.122.82",
                   "sourcePort": "1232"}


def test_cef_decode_ecs() -> None:
    rec = decode(CefCodec(ecs_compatibility="v8"), SIMPLE)
    assert rec["cef"] == {"version": "0", "name": "trojan successfully stopped"}
    assert rec["observer"] == {"vendor": "security", "product": "threatmanager", "version": "1.0"}
    assert rec["event"] == {"code": "100", "severity": "10"}
    assert rec["source"] == {"ip": "10.0.0.192", "port": "1232"} and rec["destination"] == {"ip": "12.121.122.82"}


@pytest.mark.parametrize("line", ["this is not cef", "a|b|c with several \\| escaped\\| pipes|d|bananas",
                                  "CEF:0|security|threatmanager|1.0|100|trojan successfully stopped|10|this is in the "
                                  "extensions space but it is not valid because it is not equals-separated key/value"])
def test_cef_failures_keep_the_message(line: str) -> None:
    assert decode(CefCodec(), line) == {"message": line, "tags": ["_cefparsefailure"]}


def test_cef_escapes_spaces_pipes_equals_and_syslog_header() -> None:
    codec = CefCodec(ecs_compatibility="disabled")
    assert decode(codec, "CEF:0|security|threatmanager|1.0|100|double backslash\\\\\\\\|10|")["name"] == \
        "double backslash\\\\"
    assert decode(codec, "CEF:0|||1.0|100|x|10|src=1")["deviceVendor"] == ""
    assert decode(codec, SIMPLE.replace("|10|", "|10| "))["sourceAddress"] == "10.0.0.192"
    assert decode(codec, "CEF:0|s|t|1.0|100|x|10|moo=this\\|has an escaped pipe")["moo"] == "this\\|has an escaped pipe"
    assert decode(codec, "CEF:0|s|t|1.0|100|x|10|moo=this =has = equals\\=")["moo"] == "this =has = equals="
    msg = decode(codec, "CEF:0|s|t|1.0|100|x|10|foo=bar msg=a \\= b \\n c \\\\ d bar=baz")
    assert (msg["message"], msg["bar"]) == ("a = b \n c \\ d", "baz")
    syslog = decode(codec, "Sep 19 08:26:10 host CEF:0|Security|threatmanager|1.0|100|x|10|src=10.0.0.1")
    assert syslog["syslog"] == "Sep 19 08:26:10 host" and syslog["cefVersion"] == "0"


def test_cef_ecs_timestamps() -> None:
    rec = decode(CefCodec(ecs_compatibility="v1"),
                 "CEF:0|FooBar|Web Gateway|1.2.3.45.67|200|Success|2|rt=Sep 07 2018 14:50:39 cat=Access Log "
                 "requestClientApplication='Foo-Bar/2018.1.7; Email:user@example.com; Guid:test=' cs1= "
                 "cs1Label=Foo Bar start= art=1500464384997")
    assert rec["@timestamp"] == "2018-09-07T14:50:39.000Z"
    assert rec["event"]["created"] == "2017-07-19T11:39:44.997Z" and "start" not in rec["event"]
    assert rec["cef"]["category"] == "Access Log"
    assert rec["user_agent"]["original"] == "'Foo-Bar/2018.1.7; Email:user@example.com; Guid:test='"
    assert rec["cef"]["device_custom_string_1"] == {"value": "", "label": "Foo Bar"}
    (ev,) = CefCodec(ecs_compatibility="v1").events("t", 0, [rec])
    assert ev.time == 1536331839 * 10**9 and "@timestamp" not in ev.record


def test_cef_encode_header_defaults_sprintf_and_escaping() -> None:
    ev = Event("t", 0, {"foo": "foo\\value\n", "bar": "bar=value\n", "v": "ven dor", "arr": [1, "a"]})
    assert CefCodec().encode_one(ev) == "CEF:0|Elasticsearch|Logstash|1.0|Logstash|Logstash|6|"
    custom = CefCodec(vendor="%{v}", product="pro|duct", version="ver\\sion", signature="sig nature",
                      name="na me", severity="4", fields=["foo", "bar", "missing", "arr"])
    assert custom.encode_one(ev) == ("CEF:0|ven dor|pro\\|duct|ver\\\\sion|sig nature|na me|4|"
                                     "foo=foo\\\\value\\n bar=bar\\=value\\n arr=[1,\"a\"]")
    assert CefCodec(severity="11").encode_one(ev).endswith("|6|")
    # Logstash's `name` is the event name; the codec stays "cef" (its name and id were "na me" before).
    assert (custom.name, custom.id, custom.event_name) == ("cef", "cef", "na me")


def test_cef_encode_full_names_or_short_keys() -> None:
    ev = Event("t", 0, {"deviceAction": "floop", "sourceAddress": "1.2.3.4", "sourceLatitude": "1"})
    fields = ["deviceAction", "sourceAddress", "sourceLatitude"]
    assert CefCodec(fields=fields).encode_one(ev).endswith("|deviceAction=floop sourceAddress=1.2.3.4 sourceLatitude=1")
    assert CefCodec(fields=fields, reverse_mapping=True).encode_one(ev).endswith("|act=floop src=1.2.3.4 slat=1")


def test_cef_round_trip() -> None:
    codec = CefCodec(ecs_compatibility="disabled", fields=["sourceAddress", "message"])
    ev = Event("t", 0, {"sourceAddress": "10.1.1.1", "message": "a = b\nc"})
    back = decode(codec, codec.encode([ev]).decode().rstrip("\n"))
    assert (back["sourceAddress"], back["message"]) == ("10.1.1.1", "a = b\nc")


def test_dots() -> None:
    assert DotsCodec().encode([Event("t", 0, {}), Event("t", 0, {})]) == b".."


def test_msgpack_round_trip_and_failure() -> None:
    codec = MsgpackCodec()
    data = codec.encode([Event("t", 1_700_000_000 * 10**9, {"a": 1, "n": {"b": [1, 2]}})])
    (doc,) = list(msgpack.Unpacker(__import__("io").BytesIO(data), raw=False))
    assert doc == {"@timestamp": "2023-11-14T22:13:20.000Z", "a": 1, "n": {"b": [1, 2]}}
    (record,) = codec.decode_bytes([data])
    (ev,) = codec.events("t", 0, [record])
    assert ev.time == 1_700_000_000 * 10**9 and ev.record == {"a": 1, "n": {"b": [1, 2]}}
    assert codec.decode_bytes([b"\xc1"])[0]["tags"] == ["_msgpackparsefailure"]
    assert msgpack.unpackb(MsgpackCodec(format="%{a}!").encode([Event("t", 0, {"a": 1})]))["message"] == "1!"


def test_es_bulk_decode_metadata_delete_and_split_reads() -> None:
    codec = EsBulkCodec(ecs_compatibility="disabled")
    first = codec.decode(['{"index":{"_index":"test","_id":"1"}}'])
    rest = codec.decode(['{"field1":"value1"}', '{"delete":{"_index":"test","_id":"2"}}',
                         '{"create":{"_index":"test","_id":"3"}}', "not json", '{"field1":"value3"}'])
    assert first == []
    events = codec.events("t", 0, rest)
    assert [(e.record, e.meta) for e in events] == [
        ({"field1": "value1"}, {"_index": "test", "_id": "1", "action": "index"}),
        ({}, {"_index": "test", "_id": "2", "action": "delete"}),
        ({"field1": "value3"}, {"_index": "test", "_id": "3", "action": "create"}),
    ]
    assert codec.failures == 1


def test_es_bulk_ecs_and_target() -> None:
    codec = EsBulkCodec(ecs_compatibility="v1", target="[doc]")
    (ev,) = codec.events("t", 0, codec.decode(['{"update":{"_id":"9"}}', '{"a":1}']))
    assert ev.record == {"doc": {"a": 1}}
    assert ev.meta == {"codec": {"es_bulk": {"_id": "9", "action": "update"}}}
