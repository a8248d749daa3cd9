"""csv filter: vectors derived from logstash-filter-csv's spec (csv_spec.rb)."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import get_field
from logpipe.helpers.csv_line import CsvLineError, parse_csv_line
from logpipe_plugins.filters.csv import CsvFilter, ruby_float, ruby_integer


def run(doc: Any, field: str = "message", **settings: Any) -> list[Event]:
    return CsvFilter(**settings).filter([Event("t", 0, {field: doc})])


def one(doc: Any, field: str = "message", **settings: Any) -> dict[str, Any]:
    (ev,) = run(doc, field, **settings)
    return ev.record


def test_invalid_conversion_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="wrong_type") as err:
        CsvFilter(convert={"custom1": "integer", "custom3": "wrong_type"}, columns=["custom1", "custom2", "custom3"])
    assert err.value.setting == "convert"


def test_all_defaults_and_source_untouched() -> None:
    rec = one("big,bird,sesame street")
    assert rec == {"message": "big,bird,sesame street", "column1": "big", "column2": "bird",
                   "column3": "sesame street"}


def test_empty_rows() -> None:
    assert one("", skip_empty_rows=True)["tags"] == ["_csvskippedemptyfield"]
    assert one("")["tags"] == ["_csvparsefailure"]


@pytest.mark.parametrize(("doc", "settings", "expected"), [
    ("big,bird;sesame street", {"separator": ";"}, ["big,bird", "sesame street"]),
    ("big,bird,'sesame street'", {"quote_char": "'"}, ["big", "bird", "sesame street"]),
    ('big,bird,"sesame, street"', {}, ["big", "bird", "sesame, street"]),
    ('big,bird,"sesame" street', {"quote_char": "\x00"}, ["big", "bird", '"sesame" street']),
    ('big,bird,"sesame" street', {"quote_char": "\\x00"}, ["big", "bird", '"sesame" street']),
    ("a||b||c", {"separator": "||"}, ["a", "b", "c"]),
])
def test_separators_and_quotes(doc: str, settings: dict[str, Any], expected: list[str]) -> None:
    rec = one(doc, **settings)
    assert [rec[f"column{i + 1}"] for i in range(len(expected))] == expected


def test_given_columns_more_data_and_no_autogeneration() -> None:
    assert one("big,bird,sesame street", columns=["first", "last", "address"])["address"] == "sesame street"
    extra = one("val1,val2,val3", columns=["custom1", "custom2"])
    assert (extra["custom2"], extra["column3"]) == ("val2", "val3")
    none = one("val1,val2,val3", columns=["custom1", "custom2"], autogenerate_column_names=False)
    assert "column3" not in none and none["custom2"] == "val2"


def test_skip_header_drops_the_header_line() -> None:
    cols = ["first_column", "second_column", "third_column"]
    assert run("first_column,second_column,third_column", columns=cols, skip_header=True) == []
    assert len(run("a,b,c", columns=cols, skip_header=True)) == 1


def test_skip_empty_columns_and_empty_values_are_nil() -> None:
    rec = one("val1,,val3", "datafield", source="datafield", skip_empty_columns=True,
              columns=["custom1", "custom2", "custom3"])
    assert "custom2" not in rec and rec["custom3"] == "val3"
    assert one("val1,,val3")["column2"] is None


def test_metadata_and_target_references() -> None:
    (ev,) = run("hello,world", columns=["[@metadata][one]", "foo"])
    assert ev.meta == {"one": "hello"} and ev.record["foo"] == "world"
    assert one("big,bird", target="data")["data"] == {"column1": "big", "column2": "bird"}
    (nested,) = run("hello,world", target="[foo][bar]", columns=["[test][one]", "[test][two]"])
    assert get_field(nested, "[foo][bar][test][two]") == "world"


def test_conversions() -> None:
    rec = one("1234,bird,false,3.14159265359,2017-06-01,2001-02-03 04:05:06,invalid_date,invalid_date_time",
              convert={"column1": "integer", "column3": "boolean", "column4": "float", "column5": "date",
                       "column6": "date_time", "column7": "date", "column8": "date_time"})
    assert rec["column1"] == 1234 and rec["column2"] == "bird" and rec["column3"] is False
    assert rec["column4"] == 3.14159265359
    assert rec["column5"] == "2017-06-01T00:00:00.000Z"
    assert rec["column6"] == "2001-02-03T04:05:06.000Z"
    assert (rec["column7"], rec["column8"]) == ("invalid_date", "invalid_date_time")
    named = one("1234,bird,false", convert={"custom1": "integer", "custom3": "boolean"},
                columns=["custom1", "custom2", "custom3"])
    assert (named["custom1"], named["custom3"]) == (1234, False)


def test_autodetect_column_names() -> None:
    f = CsvFilter(autodetect_column_names=True)
    assert f.filter([Event("t", 0, {"message": "first,last,address"})]) == []
    (ev,) = f.filter([Event("t", 0, {"message": "big,bird,sesame street"})])
    assert ev.record["address"] == "sesame street"


@pytest.mark.parametrize("bad", ['a"b,c', '"a"b,c', '"abc'])
def test_ruby_refuses_what_python_forgives(bad: str) -> None:
    rec = one(bad, add_tag=["ok"])
    assert rec == {"message": bad, "tags": ["_csvparsefailure"]}
    with pytest.raises(CsvLineError):
        parse_csv_line(bad)


def test_line_reader_details() -> None:
    assert parse_csv_line('"a""b",,""') == ['a"b', None, ""]
    assert parse_csv_line("a,b\nc,d") == ["a", "b"]
    assert parse_csv_line('"multi\nline",x') == ["multi\nline", "x"]
    assert parse_csv_line("a,") == ["a", None]


def test_ruby_number_rules() -> None:
    assert [ruby_integer(v) for v in ("12", " 7 ", "0x1A", "010", "1_000", "08", "1.5", "x")] == \
        [12, 7, 26, 8, 1000, "08", "1.5", "x"]
    assert [ruby_float(v) for v in ("1.5", "1e3", "2", "x")] == [1.5, 1000.0, 2.0, "x"]
