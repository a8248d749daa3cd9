"""record_modifier: vectors from fluent-plugin-record-modifier's test/test_filter_record_modifier.rb,
run through Fluentd configs."""

from __future__ import annotations

import socket

import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline

TAG = "test.tag"


def _filtered(body: str, records: list[dict], tag: str = TAG, error_label: bool = False) -> list[Event]:
    config = f"<filter **>\n  @type record_modifier\n{body}\n</filter>\n<match **>\n  @type null\n</match>\n"
    if error_label:
        config += "<label @ERROR>\n  <match **>\n    @type null\n  </match>\n</label>\n"
    pipeline = Pipeline(load_config_string(config, "rm.conf"))
    return pipeline.filter_batch([Event(tag, 0, dict(r)) for r in records])


def test_format() -> None:
    body = """  remove_keys hoge
  <record>
    gen_host "#{Socket.gethostname}"
    foo bar
    included_tag ${tag}
    tag_wrap -${tag_parts[0]}-${tag_parts[1]}-
  </record>"""
    mapped = {"gen_host": socket.gethostname(), "foo": "bar", "included_tag": TAG, "tag_wrap": "-test-tag-"}
    assert [e.record for e in _filtered(body, [{"a": 1, "hoge": 0}, {"a": 2}])] == [
        {"a": 1, **mapped}, {"a": 2, **mapped}]


@pytest.mark.parametrize(("body", "record", "expected"), [
    ("  remove_keys k1", {"k1": "v", "k2": "v"}, {"k2": "v"}),
    ("  remove_keys k1, k2, k3", {"k1": "v", "k2": "v", "k4": "v"}, {"k4": "v"}),
    ("  remove_keys k1, $.kubernetes.test", {"k1": "v", "kubernetes": {"test": "v", "prod": "v"}, "k2": "v"},
     {"kubernetes": {"prod": "v"}, "k2": "v"}),
    ("  <record>\n    foo bar\n  </record>\n  whitelist_keys k1, k2, k3",
     {"k1": "v", "k2": "v", "k4": "v", "k5": "v"}, {"k1": "v", "k2": "v", "foo": "bar"}),
    ("  prepare_value @foo = 'foo'\n  <record>\n    test_key ${@foo}\n  </record>", {"k1": "v"},
     {"k1": "v", "test_key": "foo"}),
    ("  <replace>\n    key k1\n    expression /^(?<start>.+).{2}(?<end>.+)$/\n    replace \\k<start>ors\\k<end>\n"
     "  </replace>\n  <replace>\n    key k2\n    expression /^(.{1}).{2}(.{1})$/\n    replace \\1ors\\2\n"
     "  </replace>", {"k1": "hoge", "k2": "hoge", "k3": "bar"}, {"k1": "horse", "k2": "horse", "k3": "bar"}),
    ("  <replace>\n    key k1\n    expression /^(?<start>.+).{2}(?<end>.+)$/\n    replace \\k<start>ors\\k<end>\n"
     "  </replace>", {"k1": "hog"}, {"k1": "hog"}),
    ("  char_encoding utf-8", {"k": ["v", "ビ"], "n": 1}, {"k": ["v", "ビ"], "n": 1}),
    ("  char_encoding utf-8:ascii", {"k": {"l": "vビ"}, "n": 1}, {"k": {"l": "v?"}, "n": 1}),
])
def test_plugin_vectors(body: str, record: dict, expected: dict) -> None:
    (ev,) = _filtered(body, [record])
    assert ev.record == expected


def test_single_placeholder_keeps_its_type_and_kubernetes_idioms() -> None:
    body = """  <record>
    n ${record["n"]}
    app ${record.dig("kubernetes", "labels", "app") || "none"}
    ns ${record["kubernetes"]["namespace_name"].upcase}
    short ${record["log"][0, 5]}
  </record>"""
    (ev,) = _filtered(body, [{"n": 3, "log": "hello world", "kubernetes": {"namespace_name": "prod"}}])
    assert (ev.record["n"], ev.record["app"], ev.record["ns"], ev.record["short"]) == (3, "none", "PROD", "hello")


def test_a_failing_expression_sends_the_event_to_the_error_label() -> None:
    out = _filtered("  <record>\n    x ${record['missing'].upcase}\n  </record>", [{"missing": "a"}, {}],
                    error_label=True)
    assert [(ev.record.get("x"), ev.meta.get("_label")) for ev in out] == [("A", None), (None, "@ERROR")]


@pytest.mark.parametrize(("body", "line", "expected"), [
    ("  remove_keys a\n  whitelist_keys b", 4, "exclusive"),
    ("  <record>\n    x ${record.map { |k, v| v }}\n  </record>", 4, "block"),
    ("  prepare_value system('id')", 3, "system"),
    ("  char_encoding utf-8:nope", 3, "unknown encoding"),
    ("  <replace>\n    key a\n    expression /(/\n    replace b\n  </replace>", 5, "invalid regular expression"),
])
def test_configuration_errors_are_placed(body: str, line: int, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        _filtered(body, [])
    assert expected in err.value.message
    assert err.value.pos is not None and (err.value.pos.file, err.value.pos.line) == ("rm.conf", line)
