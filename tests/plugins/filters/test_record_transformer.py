"""record_transformer filter (Fluentd)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.record_transformer import RecordTransformerFilter


def run(rec: dict[str, Any], tag: str = "web.access.main", **settings: Any) -> Event:
    f = RecordTransformerFilter(**settings)
    ev = Event(tag, 1706004000 * 10**9, rec)
    f.filter([ev])
    return ev


def test_placeholders() -> None:
    ev = run(
        {"method": "GET", "path": "/x", "user": {"name": "bob"}, "n": 5},
        record={
            "summary": '${record["method"]} ${record["path"]}',
            "who": "${record['user']['name']}",
            "old_style": "${method}!",
            "tag": "${tag}",
            "parts": "${tag_parts[0]}/${tag_parts[-1]}",
            "prefix": "${tag_prefix[1]}",
            "suffix": "${tag_suffix[1]}",
            "host": "${hostname}",
            "time": "${time}",
            "count": '${record["n"]}',
            "constant": 7,
        },
    )
    r = ev.record
    assert r["summary"] == "GET /x" and r["who"] == "bob" and r["old_style"] == "GET!"
    assert r["tag"] == "web.access.main" and r["parts"] == "web/main"
    assert r["prefix"] == "web.access" and r["suffix"] == "access.main"
    assert r["host"] == socket.gethostname() and r["time"] == "2024-01-23 10:00:00 +0000"
    assert r["count"] == "5" and r["constant"] == 7


def test_auto_typecast_keeps_single_placeholder_type() -> None:
    ev = run({"n": 5, "l": [1]}, record={"n2": '${record["n"]}', "l2": '${record["l"]}', "s": 'x${record["n"]}'},
             auto_typecast=True)
    assert ev.record["n2"] == 5 and ev.record["l2"] == [1] and ev.record["s"] == "x5"


def test_missing_placeholder_becomes_empty_as_in_fluentd(caplog: pytest.LogCaptureFixture) -> None:
    ev = run({}, tag="one", record={"a": '${record["nope"]}', "b": "x${tag_parts[3]}y", "c": "${tag_prefix[5]}"})
    assert ev.record == {"a": "", "b": "xy", "c": ""}
    assert "unknown placeholder `${tag_parts[3]}` found" in caplog.text
    typed = run({}, record={"a": '${record["nope"]}'}, auto_typecast=True)
    assert typed.record == {"a": None}


def test_values_come_from_the_original_record() -> None:
    ev = run({"a": "1"}, record={"a": "2", "b": '${record["a"]}'})
    assert ev.record == {"a": "2", "b": "1"}


def test_placeholder_in_key() -> None:
    ev = run({}, tag="app.web", record={"${tag_parts[1]}_seen": "yes"})
    assert ev.record == {"web_seen": "yes"}


def test_remove_keys_after_adding() -> None:
    ev = run({"password": "x", "user": {"token": "t", "name": "n"}, "keep": 1},
             record={"tmp": "v"}, remove_keys="password, $.user.token,tmp")
    assert ev.record == {"user": {"name": "n"}, "keep": 1}
    ev2 = run({"a": {"b": 1, "c": 2}}, remove_keys=["$['a']['b']"])
    assert ev2.record == {"a": {"c": 2}}


def test_renew_record_and_keep_keys() -> None:
    ev = run({"a": 1, "b": 2, "c": 3}, renew_record=True, keep_keys="a,c", record={"d": '${record["b"]}'})
    assert ev.record == {"a": 1, "c": 3, "d": "2"}


def test_renew_time_key() -> None:
    ev = run({"t": 1700000000}, renew_time_key="t")
    assert ev.time == 1700000000 * 10**9
    iso = run({"t": "2024-01-01T00:00:00Z"}, renew_time_key="t")
    assert iso.time == 1704067200 * 10**9
    bad = run({"t": "junk"}, renew_time_key="t")
    assert bad.time == 1706004000 * 10**9


@pytest.mark.parametrize(
    "settings, setting",
    [({"record": {"x": '${record["a"].upcase}'}}, "record"), ({"keep_keys": "a"}, "keep_keys"),
     ({"record": {"x": "${1 + 2}"}}, "record"),
     ({"enable_ruby": True, "record": {"x": '${record.map { |k, v| v }}'}}, "record.x"),
     ({"enable_ruby": True, "record": {"x": '${system("id")}'}}, "record.x")],
)
def test_bad_settings(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        RecordTransformerFilter(**settings)
    assert info.value.setting == setting


# ---- vectors from Fluentd's test/plugin/test_filter_record_transformer.rb ------------------------

TAG = "test.tag"
FLUENTD_RECORD = {
    "hostname": "${hostname}", "tag": "${tag}", "time": "${time}",
    "message": "${hostname} ${tag_parts[-1]} ${record[\"message\"]}",
}


def _filtered(settings: dict[str, Any], msgs: list[Any], tag: str = TAG) -> list[Event]:
    f = RecordTransformerFilter(**settings)
    events = [Event(tag, 1706004000 * 10**9, m if isinstance(m, dict) else {"eventType0": "bar", "message": m})
              for m in msgs]
    return f.filter(events)


@pytest.mark.parametrize("ruby", [True, False])
def test_fluentd_placeholders_with_and_without_ruby(ruby: bool) -> None:
    host = socket.gethostname()
    (ev,) = _filtered({"enable_ruby": ruby, "record": {
        "h": "${hostname}", "t": "${tag}", "parts": "${tag_parts[0]} ${tag_parts[-1]}",
        "message": 'bar ${record["message"]}', "eventtype": '${record["eventType0"]}',
        "new_record_tag": '${record["tag"]}',
        "hash_field": {"hostname": "${hostname}", "tag": "${tag}", "${tag}": 100},
        "array_field": ["${hostname}", "${tag}"], "mixed_field": [{"tag": "${tag}"}],
        "${hostname}": "hostname", "foo.${tag}": "tag",
    }, "remove_keys": "eventType0"}, [{"eventType0": "bar", "message": "1", "tag": "tag"}])
    r = ev.record
    assert (r["h"], r["t"], r["parts"]) == (host, TAG, "test tag")
    assert (r["message"], r["eventtype"], r["new_record_tag"]) == ("bar 1", "bar", "tag")
    assert "eventType0" not in r
    assert r["hash_field"] == {"hostname": host, "tag": TAG, TAG: 100}
    assert r["array_field"] == [host, TAG] and r["mixed_field"] == [{"tag": TAG}]
    assert r[host] == "hostname" and r[f"foo.{TAG}"] == "tag"


@pytest.mark.parametrize("ruby", [True, False])
def test_fluentd_tag_prefix_and_suffix(ruby: bool) -> None:
    (ev,) = _filtered({"enable_ruby": ruby, "record": {
        "message": "${tag_prefix[1]} ${tag_prefix[-2]} ${tag_suffix[2]} ${tag_suffix[-3]}"}}, [""],
        tag="prefix.test.tag.suffix")
    assert ev.record["message"] == "prefix.test prefix.test.tag tag.suffix test.tag.suffix"


@pytest.mark.parametrize("ruby", [True, False])
@pytest.mark.parametrize(("typecast", "expected"), [
    (False, [("string", "stringstring", "prefix-string"), ("123", "123123", "prefix-123"),
             ("[1, 2]", "[1, 2][1, 2]", "prefix-[1, 2]"), ('{"a"=>1, "b"=>2}', '{"a"=>1, "b"=>2}{"a"=>1, "b"=>2}',
                                                            'prefix-{"a"=>1, "b"=>2}'), ("", "", "prefix-")]),
    (True, [("string", "stringstring", "prefix-string"), (123, "123123", "prefix-123"),
            ([1, 2], "[1, 2][1, 2]", "prefix-[1, 2]"), ({"a": 1, "b": 2}, '{"a"=>1, "b"=>2}{"a"=>1, "b"=>2}',
                                                       'prefix-{"a"=>1, "b"=>2}'), (None, "", "prefix-")]),
])
def test_fluentd_typecasting_of_values(ruby: bool, typecast: bool, expected: list[tuple[Any, str, str]]) -> None:
    """Values are written as Ruby writes them (`[1, 2].to_s`, `{"a"=>1}.to_s`), with or without Ruby."""
    msgs = [{"source": v} for v in ("string", 123, [1, 2], {"a": 1, "b": 2}, None)]
    events = _filtered({"enable_ruby": ruby, "auto_typecast": typecast, "record": {
        "single": '${record["source"]}', "multiple": '${record["source"]}${record["source"]}',
        "with_prefix": 'prefix-${record["source"]}', "with_quote": 'record["source"][""]'}}, msgs)
    got = [(ev.record["single"], ev.record["multiple"], ev.record["with_prefix"]) for ev in events]
    assert got == expected
    assert all(ev.record["with_quote"] == 'record["source"][""]' for ev in events)


def test_fluentd_enable_ruby_expressions() -> None:
    (ev,) = _filtered({"enable_ruby": True, "record": {
        "message": '${hostname} ${tag_parts.last} ${"\'" + record["message"] + "\'"}'}}, ["1"])
    assert ev.record["message"] == f"{socket.gethostname()} tag '1'"
    (cgi,) = _filtered({"enable_ruby": True, "record": {
        "encoded_url": '${CGI.escape(record["url"])}', "decoded_text": '${CGI.unescape(record["quoted"])}'}},
        [{"url": "http://example.com/?q=ruby & cgi", "quoted": "hello%21"}])
    assert cgi.record["encoded_url"] == "http%3A%2F%2Fexample.com%2F%3Fq%3Druby+%26+cgi"
    assert cgi.record["decoded_text"] == "hello!"
    (t,) = _filtered({"enable_ruby": True, "record": {"message": "${time}"}}, [""])
    assert t.record["message"] == "2024-01-23 10:00:00 +0000"


def test_fluentd_renew_time_key_and_remove_keys() -> None:
    (ev,) = _filtered({"renew_time_key": "event_time_key", "remove_keys": "event_time_key", "auto_typecast": True,
                       "record": {"event_time_key": '${record["message"]}'}}, ["1262919845.5"])
    assert ev.time == 1262919845_500_000_000 and "event_time_key" not in ev.record


def test_fluentd_keep_keys_not_present_are_not_added() -> None:
    events = _filtered({"renew_record": True, "keep_keys": "foo, bar, baz, message"},
                       [{"foo": "bar", "message": "1"}, {"foo": "bar"}])
    assert [ev.record for ev in events] == [{"foo": "bar", "message": "1"}, {"foo": "bar"}]


def test_fluentd_invalid_record_for_placeholders_goes_to_the_error_label() -> None:
    from logpipe.config.loader import load_config_string
    from logpipe.pipeline import Pipeline

    config = """
<filter **>
  @type record_transformer
  enable_ruby yes
  <record>
    foo ${record["unknown"]["key"]}
  </record>
</filter>
<match **>
  @type null
</match>
<label @ERROR>
  <filter **>
    @type record_transformer
    <record>
      in_error_label yes
    </record>
  </filter>
  <match **>
    @type null
  </match>
</label>
"""
    pipeline = Pipeline(load_config_string(config))
    out = pipeline.filter_batch([Event(TAG, 0, {"key": "value"}), Event(TAG, 0, {"unknown": {"key": "k"}})])
    assert [(ev.record.get("foo"), ev.meta.get("_label"), ev.record.get("in_error_label")) for ev in out] == [
        ("k", None, None), (None, "@ERROR", "yes")]
    assert "failed to expand" in out[1].meta["_error"]


def test_an_unsupported_expression_is_a_config_error_at_its_value() -> None:
    from logpipe.config.loader import load_config_string
    from logpipe.pipeline import Pipeline

    config = "<filter **>\n  @type record_transformer\n  enable_ruby true\n  <record>\n    ok ${tag}\n" \
             "    bad ${record.each_pair { |k, v| v }}\n  </record>\n</filter>\n"
    with pytest.raises(ConfigError) as err:
        Pipeline(load_config_string(config, "rt.conf"))
    assert err.value.pos is not None and (err.value.pos.file, err.value.pos.line) == ("rt.conf", 6)
    assert "each_pair" in err.value.message and "block" in err.value.message
