"""The Fluentd front-end: directives, values, @include, and the mapping onto the model
(first match wins, copy fan-out, filter ordering, labels), checked both structurally and
by running the compiled conditions on events."""

from __future__ import annotations

import pytest

from logpipe.config import load_config_paths, load_config_string
from logpipe.config.conditions import compile_condition
from logpipe.config.model import (
    BareWord,
    BoolOp,
    Compare,
    FieldRef,
    IfNode,
    Literal,
    Not,
    PluginNode,
    TagMatch,
)
from logpipe.errors import ConfigError, Pos
from logpipe.event import Event

SEED_TAIL = """\
<source>
  type tail
  path /var/log/httpd.log
  format apache2
  tag web.access
</source>
"""

SEED_FORWARD = """\
<source>
  type forward
  port 24224
</source>
"""


def parse(text: str):
    return load_config_string(text, "f.conf")


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def plain_settings(node: PluginNode) -> dict:
    return {k: (v.value.text if isinstance(v.value, BareWord) else v.value) for k, v in node.settings.items()}


def run_filters(nodes, event: Event) -> list[str]:
    """Names of the filter plugins an event goes through, Logstash-style."""
    names: list[str] = []
    for node in nodes:
        if isinstance(node, IfNode):
            for branch in node.branches:
                if branch.condition is None or compile_condition(branch.condition)(event):
                    names += run_filters(branch.body, event)
                    break
        else:
            names.append(node.name)
    return names


run_outputs = run_filters


# ---- seeds and inputs -------------------------------------------------------------------


def test_seed_tail_source():
    config = parse(SEED_TAIL)
    (node,) = config.inputs
    assert (node.kind, node.name) == ("input", "tail")
    # v0.12's flat `format` is the <parse> section Fluentd 1.x converts it to.
    assert plain_settings(node) == {"path": "/var/log/httpd.log", "parse": {"@type": "apache2"}, "tag": "web.access"}
    assert node.pos == Pos("f.conf", 2, 8)  # where the plugin is named
    assert node.setting_pos["path"] == Pos("f.conf", 3, 3)
    assert node.settings["path"].pos == Pos("f.conf", 3, 8)
    assert config.filters == [] and config.outputs == []


def test_seed_forward_source():
    (node,) = parse(SEED_FORWARD).inputs
    assert node.name == "forward" and plain_settings(node) == {"port": "24224"}


def test_seeds_in_their_one_line_form():
    config = parse(
        "<source> type tail path /var/log/httpd.log format apache2 tag web.access </source>\n"
        "<source> type forward port 24224 </source>\n"
    )
    tail, forward = config.inputs
    assert tail.name == "tail" and plain_settings(tail)["tag"] == "web.access"
    assert forward.name == "forward" and plain_settings(forward) == {"port": "24224"}
    assert tail.setting_pos["parse.@type"] == Pos("f.conf", 1, 44)  # flat `format` became <parse>, same place


def test_at_type_id_label_and_log_level():
    node = parse("<source>\n  @type forward\n  @id in1\n  @label @X\n  @log_level debug\n  type syslog\n</source>\n"
                 "<label @X>\n</label>\n").inputs[0]
    assert node.name == "forward"
    assert plain_settings(node) == {"id": "in1", "@label": "@X", "@log_level": "debug", "type": "syslog"}


def test_values_quoted_json_multiline_comments():
    text = (
        "<source>\n"
        "  @type dummy\n"
        '  dq "a\\tb \\"q\\" \\\\ c # not a comment"\n'
        "  sq 'it\\'s \\n raw'\n"
        '  arr ["a", "b"]\n'
        '  obj {"a": 1, "b": [true, null]}\n'
        '  multi "line1\n'
        'line2"\n'
        "  jsonml [\n"
        '    "x",\n'
        '    "y"\n'
        "  ]\n"
        "  plain some value   # a comment\n"
        "  hash#tag a#b\n"
        "  regexish [^\\]]*\n"
        "  empty\n"
        "</source>\n"
    )
    settings = plain_settings(parse(text).inputs[0])
    assert settings == {
        "dq": 'a\tb "q" \\ c # not a comment',
        "sq": "it's \\n raw",
        "arr": ["a", "b"],
        "obj": {"a": 1, "b": [True, None]},
        "multi": "line1\nline2",
        "jsonml": ["x", "y"],
        "plain": "some value",
        "hash#tag": "a#b",
        "regexish": "[^\\]]*",
        "empty": "",
    }


def test_subsections_become_dicts_and_lists():
    text = (
        "<match web.**>\n"
        "  @type forward\n"
        "  <buffer tag,time>\n"
        "    flush_interval 5s\n"
        "  </buffer>\n"
        "  <server>\n    host a\n  </server>\n"
        "  <server>\n    host b\n    <nested x>\n      k v\n    </nested>\n  </server>\n"
        "</match>\n"
    )
    node = parse(text).outputs[0].branches[0].body[0]
    assert node.settings["buffer"].value == {"@args": "tag,time", "flush_interval": "5s"}
    assert node.settings["buffer"].pos == Pos("f.conf", 3, 3)
    assert node.setting_pos["buffer"] == Pos("f.conf", 3, 3)
    assert node.settings["server"].value == [{"host": "a"}, {"host": "b", "nested": {"@args": "x", "k": "v"}}]


def test_env_substitution_upper_case_only_and_ruby_env(monkeypatch):
    monkeypatch.setenv("LP_PORT", "5000")
    monkeypatch.setenv("LP_HOME", "/home/x")
    monkeypatch.delenv("LP_NONE", raising=False)
    text = (
        "<match **>\n"
        "  @type file\n"
        "  port ${LP_PORT}\n"
        "  other ${LP_NONE:7}\n"
        "  path /data/${tag}/${LP_PORT}\n"
        '  home "#{ENV[\'LP_HOME\']}/logs"\n'
        "  dflt \"#{ENV.fetch('LP_NONE', 'd')}\"\n"
        '  list ["${LP_PORT}"]\n'
        "</match>\n"
    )
    settings = plain_settings(parse(text).outputs[0].branches[0].body[0])
    assert settings == {
        "port": "5000", "other": "7", "path": "/data/${tag}/5000", "home": "/home/x/logs", "dflt": "d",
        "list": ["5000"],
    }


def test_env_unset_upper_case_is_an_error(monkeypatch):
    monkeypatch.delenv("LP_NONE", raising=False)
    err = error_of("<source>\n  @type x\n  port ${LP_NONE}\n</source>\n")
    assert err.pos == Pos("f.conf", 3, 8) and "LP_NONE" in err.message


def test_system_workers_sets_the_pipeline_workers():
    config = parse("<system>\n  workers 2\n  log_level warn\n</system>\n" + SEED_FORWARD)
    assert [n.name for n in config.inputs] == ["forward"]
    assert config.workers == 2
    assert parse(SEED_FORWARD).workers is None


def test_system_workers_must_be_a_count():
    err = error_of("<system>\n  workers two\n</system>\n" + SEED_FORWARD)
    assert err.pos == Pos("f.conf", 2, 11) and "at least 1" in err.message


# ---- routing ----------------------------------------------------------------------------


ROUTES = """\
<filter web.**>
  @type f_web
</filter>
<filter **>
  @type f_all
</filter>
<match web.access>
  @type copy
  <store>
    @type elasticsearch
    host es
  </store>
  <store>
    @type stdout
  </store>
</match>
<match web.* app.{a,b}>
  @type file
</match>
<match **>
  @type null
</match>
"""


def test_filters_become_guarded_if_nodes():
    config = parse(ROUTES)
    first = config.filters[0]
    assert isinstance(first, IfNode) and len(first.branches) == 1
    assert first.branches[0].condition == TagMatch(["web.**"], Pos("f.conf", 1, 1))
    assert first.branches[0].body[0].kind == "filter" and first.branches[0].body[0].name == "f_web"


def test_matches_are_one_first_match_wins_chain():
    config = parse(ROUTES)
    (chain,) = config.outputs
    assert isinstance(chain, IfNode)
    assert [b.condition.patterns for b in chain.branches] == [["web.access"], ["web.*", "app.{a,b}"], ["**"]]
    copy_body = chain.branches[0].body
    assert [(n.kind, n.name) for n in copy_body] == [("output", "elasticsearch"), ("output", "stdout")]
    assert plain_settings(copy_body[0]) == {"host": "es"}
    assert copy_body[0].pos == Pos("f.conf", 10, 11)


@pytest.mark.parametrize(
    ("tag", "filters", "outputs"),
    [
        ("web.access", ["f_web", "f_all"], ["elasticsearch", "stdout"]),
        ("web.error", ["f_web", "f_all"], ["fluent_file"]),
        ("app.b", ["f_all"], ["fluent_file"]),
        ("app.c", ["f_all"], ["null"]),
        ("web", ["f_web", "f_all"], ["null"]),
    ],
)
def test_routing_semantics(tag, filters, outputs):
    config = parse(ROUTES)
    event = Event(tag, 0, {})
    assert run_filters(config.filters, event) == filters
    assert run_outputs(config.outputs, event) == outputs


def test_filter_after_a_match_only_sees_unmatched_events():
    config = parse(
        "<match a.**>\n  @type out_a\n</match>\n"
        "<filter **>\n  @type late\n</filter>\n"
        "<match **>\n  @type out_rest\n</match>\n"
    )
    cond = config.filters[0].branches[0].condition
    assert isinstance(cond, BoolOp) and cond.op == "and"
    assert isinstance(cond.right, Not) and cond.right.operand.patterns == ["a.**"]
    assert run_filters(config.filters, Event("a.x", 0, {})) == []
    assert run_outputs(config.outputs, Event("a.x", 0, {})) == ["out_a"]
    assert run_filters(config.filters, Event("b", 0, {})) == ["late"]
    assert run_outputs(config.outputs, Event("b", 0, {})) == ["out_rest"]


def test_empty_pattern_means_everything():
    config = parse("<match>\n  @type stdout\n</match>\n")
    assert config.outputs[0].branches[0].condition.patterns == ["**"]


LABELS = """\
<source>
  @type forward
  @label @STAGING
</source>
<source>
  @type tail
</source>
<filter **>
  @type top_filter
</filter>
<match **>
  @type top_out
</match>
<label @STAGING>
  <filter **>
    @type staging_filter
  </filter>
  <match **>
    @type staging_out
  </match>
</label>
<label @ERROR>
  <match **>
    @type error_out
  </match>
</label>
"""


def test_labels_wrap_scopes_on_metadata_label():
    config = parse(LABELS)
    # one conditional per scope, in order, so an event moved to a label meets its filters
    (top,), (staging,) = (node.branches for node in config.filters)
    assert isinstance(top.condition, Not)
    assert top.condition.operand.operand == FieldRef(["@metadata", "_label"], top.condition.pos)
    assert isinstance(staging.condition, Compare) and staging.condition.op == "=="
    assert staging.condition.left.path == ["@metadata", "_label"]
    assert staging.condition.right == Literal("@STAGING", Pos("f.conf", 14, 1))
    (outputs,) = config.outputs
    assert len(outputs.branches) == 3


@pytest.mark.parametrize(
    ("meta", "filters", "outputs"),
    [
        ({}, ["top_filter"], ["top_out"]),
        ({"_label": "@STAGING"}, ["staging_filter"], ["staging_out"]),
        ({"_label": "@ERROR"}, [], ["error_out"]),
    ],
)
def test_label_routing_semantics(meta, filters, outputs):
    config = parse(LABELS)
    event = Event("any.tag", 0, {}, dict(meta))
    assert run_filters(config.filters, event) == filters
    assert run_outputs(config.outputs, event) == outputs


# ---- @include ---------------------------------------------------------------------------


def test_include_file_and_glob_relative_to_including_file(tmp_path):
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "b.conf").write_text("<match b.**>\n  @type out_b\n</match>\n")
    (conf_d / "a.conf").write_text("<match a.**>\n  @type out_a\n</match>\n")
    (tmp_path / "sources.conf").write_text(SEED_FORWARD)
    (tmp_path / "params.conf").write_text("  path /x\n")
    main = tmp_path / "main.conf"
    main.write_text(
        "@include sources.conf\n"
        "<match first.**>\n  @type out_first\n  @include params.conf\n</match>\n"
        "@include conf.d/*.conf\n"
        "@include nothing/*.conf\n"
    )
    config = load_config_paths([str(main)])
    assert [n.name for n in config.inputs] == ["forward"]
    assert config.inputs[0].pos == Pos(str(tmp_path / "sources.conf"), 2, 8)
    chain = config.outputs[0]
    assert [b.body[0].name for b in chain.branches] == ["out_first", "out_a", "out_b"]
    assert plain_settings(chain.branches[0].body[0]) == {"path": "/x"}
    assert config.sources[0] == str(main) and len(config.sources) == 5


def test_include_errors(tmp_path):
    main = tmp_path / "main.conf"
    main.write_text("@include missing.conf\n")
    with pytest.raises(ConfigError, match="included file not found") as info:
        load_config_paths([str(main)])
    assert info.value.pos == Pos(str(main), 1, 10)
    loop = tmp_path / "loop.conf"
    loop.write_text("@include loop.conf\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config_paths([str(loop)])
    with pytest.raises(ConfigError, match="URLs"):
        parse("@include http://example.com/x.conf\n")


def test_several_fluentd_files_share_one_match_chain(tmp_path):
    (tmp_path / "1.conf").write_text("<match a.**>\n  @type out_a\n</match>\n")
    (tmp_path / "2.conf").write_text("<match **>\n  @type out_all\n</match>\n")
    config = load_config_paths([str(tmp_path)])
    (chain,) = config.outputs
    assert [b.body[0].name for b in chain.branches] == ["out_a", "out_all"]
    assert run_outputs(config.outputs, Event("a.b", 0, {})) == ["out_a"]


# ---- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment", "line", "col"),
    [
        ("<source>\n  type x\n", "'<source>' opened here is never closed (expected '</source>')", 1, 1),
        ("<source>\n  type x\n</match>\n", "expected '</source>' to close '<source>' opened at 1:1, found '</match>'",
         3, 1),
        ("</source>\n", "'</source>' without a matching '<source>'", 1, 1),
        ("<source\n", "expected '>'", 1, 1),
        ("<sorce>\n  @type x\n</sorce>\n", ("unknown directive <sorce>; expected <source>, <filter>, <match>, "
         "<label>, <system>; did you mean <source>?"), 1, 1),
        ("<source>\n  port 1\n</source>\n", "<source> needs '@type'", 1, 1),
        ("<label @X>\n  <source>\n    @type x\n  </source>\n</label>\n", "unknown directive <source> inside <label @X>",
         2, 3),
        ("<label>\n</label>\n", "'<label>' needs one name", 1, 1),
        ("<label @A>\n</label>\n<label @A>\n</label>\n", "label '@A' is defined twice", 3, 1),
        ("<source>\n  @type x\n  @label @NOPE\n</source>\n<label @A>\n</label>\n", "unknown label '@NOPE'", 3, 10),
        ("<source>\n  @type x\n  @label @NOPE\n</source>\n", "defined labels: none", 3, 10),
        ("<source>\n  @type x\n  v \"abc\n", 'unterminated string: the " opened here', 3, 5),
        ("<source>\n  @type x\n  v \"abc\" trailing\n</source>\n", "unexpected text after the quoted value", 3, 11),
        ("<source>\n  @type x\n  v \"#{`rm -rf`}\"\n</source>\n", "embedded Ruby #{`rm -rf`} is not supported", 3, 6),
        ("<source> @type\n</source>\n", "expected a value after '@type'", 1, 10),
        ("<source>\n  @type x\n  j [1,\n2,,\n]\n</source>\n", "invalid JSON value", 3, 5),
        ("<source>\n  @type x\n</source>\nport 24224\n", "found setting 'port' outside any directive", 4, 1),
        ("<match **>\n  @type copy\n</match>\n", "needs at least one <store>", 1, 1),
        ("<source>\n  @type x\n</source> junk\n", "unexpected text after </source>", 3, 11),
        ("<source> extra\n  @type x\n</source>\n", "expected a value after 'extra'", 1, 10),
    ],
)
def test_error_messages_and_positions(text, fragment, line, col):
    err = error_of(text)
    assert fragment in err.message
    assert (err.pos.line, err.pos.col) == (line, col)
    assert err.render().startswith(f"f.conf:{line}:{col}: error:")


def test_deep_nesting_is_a_config_error():
    err = error_of("<a>\n" * 500)
    assert "nesting deeper" in err.message


def test_crlf_line_endings_and_bom():
    config = parse("\ufeff<source>\r\n  @type forward\r\n  port 24224\r\n  q \"x\"\r\n</source>\r\n")
    assert plain_settings(config.inputs[0]) == {"port": "24224", "q": "x"}
