"""dissect filter."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.dissect import DissectFilter

SYSLOG = "Mar 16 00:01:25 evita - postfix/smtpd[1713]: connect from camomile.cloud9.net"


def run(record: dict[str, Any], **settings: Any) -> tuple[Event, DissectFilter]:
    f = DissectFilter(**settings)
    ev = Event("t", 0, record)
    f.filter([ev])
    return ev, f


def test_fields_append_and_skip() -> None:
    ev, f = run({"message": SYSLOG},
                mapping={"message": "%{ts} %{+ts} %{+ts} %{src} %{} %{prog}[%{pid}]: %{msg}"}, add_tag=["ok"])
    assert ev.record == {"message": SYSLOG, "ts": "Mar 16 00:01:25", "src": "evita", "prog": "postfix/smtpd",
                         "pid": "1713", "msg": "connect from camomile.cloud9.net", "tags": ["ok"]}
    assert f.failures == 0


def test_append_order_and_joiner() -> None:
    ev, _ = run({"m": "b-a c"}, mapping={"m": "%{+x/2}-%{+x/1} %{y}"})
    assert ev.record["x"] == "a-b" and ev.record["y"] == "c"  # joined by the delimiter around the parts
    sep, _ = run({"m": "10:05 PM"}, mapping={"m": "%{t} %{+t}"}, append_separator="_")
    assert sep.record["t"] == "10:05_PM"


def test_key_value_reference() -> None:
    ev, _ = run({"m": "user=bob id:42"}, mapping={"m": "%{?k}=%{&k} %{*n}:%{&n}"})
    assert ev.record["user"] == "bob" and ev.record["id"] == "42"
    assert "k" not in ev.record and "n" not in ev.record


def test_padding() -> None:
    ev, _ = run({"m": "a      b c"}, mapping={"m": "%{x->} %{y} %{z}"})
    assert (ev.record["x"], ev.record["y"], ev.record["z"]) == ("a", "b", "c")
    without, _ = run({"m": "a      b c"}, mapping={"m": "%{x} %{y} %{z}"})
    assert without.record["y"] == "" and without.record["z"] == "    b c"


def test_prefix_nested_fields_and_convert() -> None:
    ev, _ = run({"m": "[INFO] 200 0.5 rest"}, mapping={"m": "[%{[log][level]}] %{code} %{dur} %{}"},
                convert_datatype={"code": "int", "dur": "float"})
    assert ev.record["log"] == {"level": "INFO"} and ev.record["code"] == 200 and ev.record["dur"] == 0.5


def test_no_match_tags_and_sets_nothing() -> None:
    ev, f = run({"m": "no delimiters"}, mapping={"m": "%{a}|%{b}"}, add_tag=["ok"])
    assert ev.record == {"m": "no delimiters", "tags": ["_dissectfailure"]} and f.failures == 1
    prefix, _ = run({"m": "x a|b"}, mapping={"m": "[%{a}|%{b}"})
    assert prefix.record["tags"] == ["_dissectfailure"]


def test_missing_source_is_skipped_and_bad_conversion_tags_the_field() -> None:
    ev, f = run({"other": 1}, mapping={"m": "%{a} %{b}"}, tag_on_failure=["nope"])
    assert "tags" not in ev.record and f.failures == 0  # Logstash skips a missing source
    conv, g = run({"m": "x y"}, mapping={"m": "%{a} %{b}"}, convert_datatype={"a": "int"})
    assert conv.record["a"] == "x" and conv.record["b"] == "y" and g.failures == 0
    assert conv.record["tags"] == ["_dataconversionuncoercible_a_int"]


def test_batch() -> None:
    f = DissectFilter(mapping={"message": "%{a} %{b}"})
    events = [Event("t", 0, {"message": f"x{i} y{i}"}) for i in range(5)]
    assert f.filter(events) == events
    assert [e.record["b"] for e in events] == [f"y{i}" for i in range(5)]


@pytest.mark.parametrize(
    "settings",
    [{"mapping": {"m": "no fields"}}, {"mapping": {"m": "%{a}%{b}"}}, {"mapping": {"m": "%{&k} %{v}"}},
     {"mapping": {"m": "%{+} x"}}, {"mapping": {"m": "%{a} %{b}"}, "convert_datatype": {"a": "bool"}},
     {"mapping": {"m": "%{[a][b} %{c}"}}],
)
def test_bad_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DissectFilter(**settings)


def test_a_key_from_the_event_that_is_no_valid_reference_is_a_plain_key() -> None:
    """`%{&key}` names come from event data: a malformed one must not fail the batch."""
    from logpipe.event import Event
    from logpipe_plugins.filters.dissect import DissectFilter

    f = DissectFilter(mapping={"message": "%{?k}=%{&k}"})
    [ev] = f.filter([Event("t", 1, {"message": "a]=1"})])
    assert ev.record["a]"] == "1"
