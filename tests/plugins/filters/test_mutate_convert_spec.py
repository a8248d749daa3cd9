"""Type conversions derived from logstash-filter-mutate's spec (spec/filters/mutate_spec.rb,
the Logstash 8.14+ rules): strings, hex, exponent forms, big integers kept exact, booleans,
US/UK and EU separators, arrays converted element by element, and `coerce`."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.event import Event
from logpipe_plugins.filters.mutate import MutateFilter

TO_STRING = [(123, "123"), (123.0, "123.0"), ("123", "123"), ("0x7b", "0x7b"), ("123.0", "123.0"),
             ("1.230000e+02", "1.230000e+02"), (123.45, "123.45"), ("0x1.edcdp6", "0x1.edcdp6"),
             (16777217, "16777217"), (1.6777217e7, "16777217.0"), (2147483648, "2147483648"),
             (2.147483648e9, "2147483648.0"), (9007199254740993, "9007199254740993"),
             ("9223372036854775808.0", "9223372036854775808.0"), (True, "true"), (False, "false")]
TO_INTEGER = [(123, 123), (123.0, 123), ("123", 123), ("0x7b", 123), ("123.0", 123), ("1.230000e+02", 123),
              (123.45, 123), ("123.45", 123), ("1.234500e+02", 123), ("0x1.edcdp6", 123), (-123.45, -123),
              ("-123.45", -123), ("-1.234500e+02", -123), ("-0x1.edcdp6", -123), (16777217, 16777217),
              (1.6777217e7, 16777217), ("16777217.0", 16777217), (2147483648, 2147483648),
              (2.147483648e9, 2147483648), ("2147483648.0", 2147483648), (9007199254740993, 9007199254740993),
              ("9007199254740993", 9007199254740993), ("9007199254740993.0", 9007199254740993),
              ("9.007199254740993e+15", 9007199254740993), ("9223372036854775808", 9223372036854775808),
              ("9223372036854775808.0", 9223372036854775808),
              ("680564693277057720000000000000000000000", 680564693277057720000000000000000000000),
              ("680564693277057720000000000000000000000.0", 680564693277057720000000000000000000000),
              (False, 0), (True, 1), ("0", 0), ("1", 1), ("1,000", 1000), ("1,234,567.8", 1234567)]
TO_FLOAT = [(123, 123.0), ("123", 123.0), ("0x7b", 123.0), ("1.230000e+02", 123.0), (123.45, 123.45),
            ("1.234500e+02", 123.45), ("0x1.edcdp6", 123.4501953125), ("-0x1.edcdp6", -123.4501953125),
            ("-123.45", -123.45), (16777217, 1.6777217e7), ("2147483648.0", 2.147483648e9),
            (9007199254740993, 9.007199254740992e15), ("9.007199254740993e+15", 9007199254740992.0),
            ("9223372036854775808", 9.223372036854775808e18),
            ("680564693277057720000000000000000000000.0", 6.805646932770577e38), ("3141.5926", 3141.5926),
            ("3,141.5926", 3141.5926), ("3,141", 3141.0), (True, 1.0), (False, 0.0), ("1,234,567.8", 1234567.8)]
EU = [("integer_eu", "1.000", 1000), ("integer_eu", "1.234.567,8", 1234567), ("integer_eu", "123,4", 123),
      ("float_eu", "1.000", 1000.0), ("float_eu", "1.234.567,8", 1234567.8), ("float_eu", "123,4", 123.4)]


def convert(value: Any, kind: str) -> Any:
    ev = Event("t", 0, {"a": value})
    MutateFilter(convert={"a": kind}).filter([ev])
    return ev.record["a"]


@pytest.mark.parametrize(("value", "expected"), TO_STRING, ids=[repr(v) for v, _ in TO_STRING])
def test_to_string(value: Any, expected: str) -> None:
    assert convert(value, "string") == expected


@pytest.mark.parametrize(("value", "expected"), TO_INTEGER, ids=[repr(v) for v, _ in TO_INTEGER])
def test_to_integer(value: Any, expected: int) -> None:
    out = convert(value, "integer")
    assert type(out) is int and out == expected


@pytest.mark.parametrize(("value", "expected"), TO_FLOAT, ids=[repr(v) for v, _ in TO_FLOAT])
def test_to_float(value: Any, expected: float) -> None:
    out = convert(value, "float")
    assert type(out) is float and out == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("kind", "value", "expected"), EU, ids=[f"{k} {v}" for k, v, _ in EU])
def test_eu_separators(kind: str, value: str, expected: Any) -> None:
    out = convert(value, kind)
    assert type(out) is type(expected) and out == pytest.approx(expected)


def test_booleans() -> None:
    cases = {"true_field": ("true", True), "false_field": ("false", False), "true_upper": ("True", True),
             "false_upper": ("False", False), "true_one": ("1", True), "false_zero": ("0", False),
             "true_yes": ("yes", True), "false_no": ("no", False), "true_y": ("Y", True), "false_n": ("N", False),
             "wrong_field": ("none of the above", "none of the above"), "integer_false": (0, False),
             "integer_true": (1, True), "integer_negative": (-1, -1), "integer_wrong": (2, 2),
             "float_true": (1.0, True), "float_false": (0.0, False), "float_negative": (-1.0, -1.0),
             "float_wrong": (1.0123, 1.0123), "float_wrong2": (0.01, 0.01),
             "array": (["1", "0", 0, 1, 2], [True, False, False, True, 2]), "hash": ({"a": 0}, {"a": 0})}
    ev = Event("t", 0, {k: v for k, (v, _) in cases.items()})
    MutateFilter(convert={k: "boolean" for k in cases}).filter([ev])
    for key, (_, want) in cases.items():
        assert ev.record[key] == want and type(ev.record[key]) is type(want), key


def test_nil_stays_nil() -> None:
    assert convert(None, "float") is None


def test_coerce_writes_the_value_given_as_text() -> None:
    ev = Event("t", 0, {"field1": None, "field2": None, "field3": None, "field4": True})
    MutateFilter(coerce={"field1": "Hello", "field2": "Bye", "field3": 5, "field4": False}).filter([ev])
    assert ev.record == {"field1": "Hello", "field2": "Bye", "field3": "5", "field4": True}
