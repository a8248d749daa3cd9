"""Vectors derived from logstash-filter-dissect's spec (spec/filters/dissect_spec.rb) and its
compatibility suite (spec/fixtures/dissect_tests.json, kept in vectors/ with its source)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.testing import FilterDriver
from logpipe_plugins.filters.dissect import DissectFilter

SUITE = json.loads((Path(__file__).parent / "vectors" / "dissect_logstash.json").read_text())["vectors"]


def run(record: dict[str, Any], **settings: Any) -> Event:
    ev = Event("t", 0, record)
    DissectFilter(**settings).filter([ev])
    return ev


@pytest.mark.parametrize("case", [c for c in SUITE if not c["skip"]], ids=[c["name"] for c in SUITE if not c["skip"]])
async def test_compatibility_suite(case: dict[str, Any]) -> None:
    async with FilterDriver(DissectFilter(mapping={"message": case["tok"]})) as driver:
        [ev] = driver.run([{"message": case["msg"]}])
    for key, value in case["expected"].items():
        assert ev.record.get(key) == value, (key, ev.record)


def test_basic_dissection_with_padding() -> None:
    ev = run({"message": "[25/05/16 09:10:38:425 BST] 00000001 SystemOut     O "
                         "java.lang:type=MemoryPool,name=class storage"},
             mapping={"message": "[%{occurred_at}] %{code} %{service->} %{ic} %{svc_message}"})
    assert (ev.record["occurred_at"], ev.record["code"], ev.record["service"], ev.record["ic"]) == (
        "25/05/16 09:10:38:425 BST", "00000001", "SystemOut", "O")
    assert ev.record["svc_message"] == "java.lang:type=MemoryPool,name=class storage" and "tags" not in ev.record


def test_csv_like_with_missing_fields() -> None:
    ev = run({"message": '[25/05/16 09:10:38:425 BST] 00000001 SystemOut values: "f1","","f3"'},
             mapping={"message": '[%{occurred_at}] %{code} %{service} values: "%{v1}","%{v2}","%{v3}"%{rest}'})
    assert [ev.record[k] for k in ("v1", "v2", "v3", "rest")] == ["f1", "", "f3", ""] and "tags" not in ev.record


@pytest.mark.parametrize("sep", [" ", "྿"])
def test_datatype_conversion_and_indirect_fields(sep: str) -> None:
    if sep == " ":
        mapping = "[%{occurred_at}] %{code} %{service} %{?ic}=%{&ic}% %{svc_message}"
        msg = "[25/05/16 09:10:38:425 BST] 00000001 SystemOut cpu=95.43% java.lang:type=MemoryPool,name=class storage"
    else:
        mapping = "[%{occurred_at}]྿྿྿%{code}྿%{service}྿྿྿྿%{?ic}=%{&ic}%྿྿%{svc_message}"
        msg = ("[25/05/16 09:10:38:425 BST]྿྿྿00000001྿SystemOut྿྿྿྿cpu=95.43%྿྿"
               "java.lang:type=MemoryPool,name=class storage")
    ev = run({"message": msg}, mapping={"message": mapping}, convert_datatype={"cpu": "float", "code": "int"})
    assert ev.record["code"] == 1 and ev.record["cpu"] == 95.43 and ev.record["service"] == "SystemOut"
    assert ev.record["svc_message"] == "java.lang:type=MemoryPool,name=class storage"


def test_failing_conversions_keep_the_dissection_and_tag() -> None:
    ev = run({"message": "[25/05/16 09:10:38:425 BST] 00000001 SystemOut cpu=95.43% java.lang:type=MemoryPool",
              "other": {}},
             mapping={"message": "[%{occurred_at}] %{code} %{service} %{?ic}=%{&ic}% %{svc_message}"},
             convert_datatype={"ccu": "float", "other": "int"})
    assert ev.record["code"] == "00000001"
    assert "_dataconversionnullvalue_ccu_float" in ev.record["tags"]
    assert "_dataconversionuncoercible_other_int" in ev.record["tags"]


def test_missing_source_field_is_not_tagged() -> None:
    assert "tags" not in run({"message": "foo", "other": {}}, mapping={"msg": "%{a} %{b}"}).record
    assert "tags" not in run({}, mapping={"message": "%{a} %{b}"}).record


def test_empty_field_is_a_failure() -> None:
    assert run({"message": ""}, mapping={"message": "%{a} %{b}"}).record["tags"] == ["_dissectfailure"]


def test_only_int_and_float_conversions() -> None:
    with pytest.raises(ConfigError):
        DissectFilter(convert_datatype={"code": "integer"})


def test_big_numbers_stay_exact() -> None:
    assert run({"big_number": "43947404257507186289"}, convert_datatype={"big_number": "int"}).record[
        "big_number"] == 43947404257507186289
    value = run({"big_number": "43947404257507186289.345324"}, convert_datatype={"big_number": "float"}).record[
        "big_number"]
    assert Decimal(str(value)) == Decimal("43947404257507186289.345324") or value == pytest.approx(4.39474042575e19)


def test_skip_and_append() -> None:
    ev = run({"message": "Mar 16 00:01:25 evita skip-this postfix/smtpd[1713]: connect from camomile.cloud9.net[1.3]"},
             mapping={"message": "%{timestamp} %{+timestamp} %{+timestamp} %{logsource} %{} "
                                 "%{program}[%{pid}]: %{msg}"},
             add_field={"favorite_filter": "why, dissect of course"})
    assert ev.record["timestamp"] == "Mar 16 00:01:25" and ev.record["logsource"] == "evita"
    assert (ev.record["program"], ev.record["pid"]) == ("postfix/smtpd", "1713")
    assert ev.record["msg"] == "connect from camomile.cloud9.net[1.3]"
    assert ev.record["favorite_filter"] == "why, dissect of course" and "tags" not in ev.record


def test_field_formats() -> None:
    DissectFilter(mapping={"message": "%{+timestamp/2} %{+timestamp/1} %{?no_name} %{&no_name} %{} %{p}[%{pid}]: %{m}"})
    for bad in ("%{+&timestamp}", "%{&+timestamp}"):
        with pytest.raises(ConfigError):
            DissectFilter(mapping={"message": bad})


def test_braces_as_delimiters() -> None:
    ev = run({"message": "{foo}{bar}"}, mapping={"message": "{%{a}}{%{b}}%{rest}"})
    assert (ev.record["a"], ev.record["b"], ev.record["rest"]) == ("foo", "bar", "") and "tags" not in ev.record
