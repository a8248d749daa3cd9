"""The Logstash DSL front-end, the loader (files, directories, globs, env) and the
guarantee that no input, however broken, produces anything but a ConfigError."""

from __future__ import annotations

import random

import pytest

from logpipe.config import load_config_paths, load_config_string
from logpipe.config.loader import detect_language
from logpipe.config.model import (
    BareWord,
    BoolOp,
    Compare,
    FieldRef,
    IfNode,
    Literal,
    Not,
    PluginNode,
    RegexLiteral,
    Truthy,
)
from logpipe.errors import ConfigError, Pos

FULL = """\
# a comment line
input {
  stdin { codec => json { charset => "UTF-8" } tags => ["a", 'b'] }   # trailing comment
  generator { count => 10 message => 'it\\'s "x"' lines => [ "a", "b", ] }
}
filter {
  if [type] == "apache" and [@metadata][x] =~ /a\\/b/ {
    grok { match => { "message" => "%{COMBINEDAPACHELOG}" } }
  } else if !([a] in ["x","y"]) or "foo" not in [tags] {
    drop {}
  } else {
    mutate { add_field => { a => 1, "b" => -2.5 'c' => true } }
  }
}
output { stdout { codec => rubydebug } }
"""


def parse(text: str):
    return load_config_string(text, "t.conf")


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def first_condition(expr: str):
    config = parse("filter { if " + expr + " { drop {} } }")
    node = config.filters[0]
    assert isinstance(node, IfNode)
    return node.branches[0].condition


# ---- structure ---------------------------------------------------------------------------


def test_sections_plugins_and_values():
    config = parse(FULL)
    stdin, generator = config.inputs
    assert (stdin.kind, stdin.name) == ("input", "stdin")
    codec = stdin.settings["codec"].value
    assert isinstance(codec, PluginNode)
    assert (codec.kind, codec.name) == ("codec", "json")
    assert codec.settings["charset"].value == "UTF-8"
    assert stdin.settings["tags"].value == ["a", "b"]
    assert generator.settings["count"].value == 10
    assert generator.settings["message"].value == "it's \"x\""
    assert generator.settings["lines"].value == ["a", "b"]
    assert config.outputs[0].settings["codec"].value == BareWord("rubydebug")
    assert config.sources == ["t.conf"]


def test_if_else_if_else_structure():
    config = parse(FULL)
    (node,) = config.filters
    assert isinstance(node, IfNode)
    first, second, last = node.branches
    assert isinstance(first.condition, BoolOp) and first.condition.op == "and"
    left, right = first.condition.left, first.condition.right
    assert isinstance(left, Compare) and left.op == "=="
    assert left.left == FieldRef(["type"], Pos("t.conf", 7, 6))
    assert isinstance(right, Compare) and right.op == "=~"
    assert right.left.path == ["@metadata", "x"]
    assert isinstance(right.right, RegexLiteral) and right.right.source == "a/b"
    assert [p.name for p in first.body] == ["grok"]
    assert first.body[0].settings["match"].value == {"message": "%{COMBINEDAPACHELOG}"}
    assert isinstance(second.condition, BoolOp) and second.condition.op == "or"
    negated = second.condition.left
    assert isinstance(negated, Not) and isinstance(negated.operand, Compare)
    assert negated.operand.op == "in" and negated.operand.right.value == ["x", "y"]
    not_in = second.condition.right
    assert not_in.op == "not in" and not_in.left.value == "foo" and not_in.right.path == ["tags"]
    assert last.condition is None
    assert last.body[0].settings["add_field"].value == {"a": 1, "b": -2.5, "c": True}


def test_sections_repeat_and_concatenate():
    config = parse("filter { a {} } output { x {} } filter { b {} } input { i {} } filter { c {} }")
    assert [n.name for n in config.filters] == ["a", "b", "c"]
    assert [n.name for n in config.inputs] == ["i"]
    assert [n.name for n in config.outputs] == ["x"]


def test_names_with_dashes_at_and_digits():
    config = parse("output { my-plugin_2 { @id => x some-key => 1 } }")
    node = config.outputs[0]
    assert node.name == "my-plugin_2"
    assert set(node.settings) == {"@id", "some-key"}


def test_numbers_bools_barewords():
    node = parse("filter { x { a => 1 b => -3 c => 2.5 d => true e => false f => plain g => 5xx } }").filters[0]
    values = {k: v.value for k, v in node.settings.items()}
    assert values == {"a": 1, "b": -3, "c": 2.5, "d": True, "e": False, "f": BareWord("plain"), "g": BareWord("5xx")}
    assert isinstance(values["a"], int) and isinstance(values["c"], float)


def test_nested_arrays_and_hashes_hold_plain_data():
    node = parse('filter { x { a => [1, [2, "3"], {k => v}] h => { "k" => [a, b] "n" => { m => 1 } } } }').filters[0]
    assert node.settings["a"].value == [1, [2, "3"], {"k": "v"}]
    assert node.settings["h"].value == {"k": ["a", "b"], "n": {"m": 1}}


def test_string_escapes_keep_backslashes():
    text = r"""filter { x { a => "\d+\.\w" b => "say \"hi\"" c => 'it\'s' d => "C:\\" e => 'a\"b' } }"""
    node = parse(text).filters[0]
    values = {k: v.value for k, v in node.settings.items()}
    assert values["a"] == r"\d+\.\w"
    assert values["b"] == 'say "hi"'
    assert values["c"] == "it's"
    assert values["d"] == "C:\\\\"
    assert values["e"] == 'a\\"b'


def test_multiline_string_and_comment_chars_inside_strings():
    node = parse('filter { x { a => "line1\nline2 # not a comment" } }').filters[0]
    assert node.settings["a"].value == "line1\nline2 # not a comment"


def test_repeated_settings_merge_like_logstash():
    node = parse(
        'filter { x { add_tag => "a" add_tag => ["b", "c"] add_field => { "x" => 1 } add_field => { "y" => 2 }'
        ' one => "s" one => "t" same => 1 same => 1 } }'
    ).filters[0]
    assert node.settings["add_tag"].value == ["a", "b", "c"]
    assert node.settings["add_field"].value == {"x": 1, "y": 2}
    assert node.settings["one"].value == ["s", "t"]
    assert node.settings["same"].value == 1


def test_positions_of_settings_and_values():
    text = 'input {\n  file {\n    path => "/var/log/x.log"\n  }\n}\n'
    node = parse(text).inputs[0]
    assert node.pos == Pos("t.conf", 2, 3)
    assert node.setting_pos["path"] == Pos("t.conf", 3, 5)
    assert node.settings["path"].pos == Pos("t.conf", 3, 13)


def test_string_plugin_names_and_setting_names():
    node = parse('filter { "grok" { "match" => { "m" => "x" } } }').filters[0]
    assert node.name == "grok" and "match" in node.settings


def test_empty_config_and_comments_only():
    config = parse("# nothing here\n\n")
    assert config.inputs == config.filters == config.outputs == []


def test_conditionals_in_output_and_nested():
    config = parse('output { if [a] { if [b] { x {} } else { y {} } } else { z {} } }')
    outer = config.outputs[0]
    inner = outer.branches[0].body[0]
    assert isinstance(inner, IfNode)
    assert [b.body[0].name for b in inner.branches] == ["x", "y"]
    assert outer.branches[1].body[0].name == "z"


# ---- conditions --------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "!=", "<", ">", "<=", ">=", "=~", "!~"])
def test_every_comparison_operator(op):
    right = '"x"' if op in ("=~", "!~") else "1"
    cond = first_condition(f"[a] {op} {right}")
    assert isinstance(cond, Compare) and cond.op == op


@pytest.mark.parametrize("op", ["and", "or", "xor", "nand"])
def test_boolean_operators_fold_left_to_right(op):
    cond = first_condition(f"[a] {op} [b] {op} [c]")
    assert isinstance(cond, BoolOp) and cond.op == op
    assert isinstance(cond.left, BoolOp) and cond.left.right.operand.path == ["b"]
    assert cond.right.operand.path == ["c"]


def test_mixed_boolean_operators_are_left_to_right():
    cond = first_condition("[a] or [b] and [c]")
    assert cond.op == "and" and cond.left.op == "or"


def test_parentheses_group():
    cond = first_condition("[a] or ([b] and [c])")
    assert cond.op == "or" and cond.right.op == "and"


def test_bare_field_is_truthy_and_negations():
    assert first_condition("[a][b]") == Truthy(FieldRef(["a", "b"], Pos("t.conf", 1, 13)), Pos("t.conf", 1, 13))
    neg = first_condition("![a]")
    assert isinstance(neg, Not) and isinstance(neg.operand, Truthy)
    double = first_condition("!!([a] == 1)")
    assert isinstance(double.operand, Not) and isinstance(double.operand.operand, Compare)


def test_selector_versus_array_literal():
    assert first_condition("[status] in [200, 201]").right == Literal([200, 201], Pos("t.conf", 1, 25))
    assert first_condition('[x] in ["a"]').right.value == ["a"]
    assert first_condition("[x] in [y]").right.path == ["y"]
    assert first_condition("[tags][0] == 1").left.path == ["tags", "0"]
    assert first_condition("[@metadata][a b] == 1").left.path == ["@metadata", "a b"]
    assert first_condition("[a] in []").right.value == []


def test_regex_literal_with_escaped_slash_and_hash():
    cond = first_condition(r"[path] =~ /^\/var\/log\/[a-z]+#x$/")
    assert cond.right.source == r"^/var/log/[a-z]+#x$"


def test_literals_in_conditions():
    assert first_condition('"a" == \'b\'').left.value == "a"
    assert first_condition("[a] == -1.5").right.value == -1.5
    assert first_condition("[a] == true").right.value is True


def test_no_env_substitution_in_conditions(monkeypatch):
    monkeypatch.setenv("LP_TEST_X", "subst")
    assert first_condition('[a] == "${LP_TEST_X}"').right.value == "${LP_TEST_X}"


# ---- errors ----------------------------------------------------------------------------


def test_error_expected_arrow_after_setting_name():
    err = error_of('input {\n  file {\n    path {\n  }\n}\n')
    assert err.pos == Pos("t.conf", 3, 10)
    assert "expected '=>' after setting name 'path', found '{'" in err.message
    rendered = err.render()
    assert rendered.startswith("t.conf:3:10: error:")
    assert "    path {" in rendered and "\n             ^" in rendered


def test_error_unterminated_string_points_at_opener():
    err = error_of('filter {\n  x { a => "abc\n}\n}\n')
    assert err.pos == Pos("t.conf", 2, 12)
    assert "unterminated string" in err.message


def test_error_unterminated_block_points_at_opener():
    err = error_of("filter {\n  grok {\n    a => 1\n")
    assert err.pos == Pos("t.conf", 2, 8) and "unterminated filter 'grok'" in err.message
    err = error_of("filter {\n  x {}\n")
    assert err.pos == Pos("t.conf", 1, 8) and "filter section" in err.message
    err = error_of("filter { if [a] { x {} ")
    assert err.pos == Pos("t.conf", 1, 17) and "'if' block" in err.message


def test_error_unterminated_array_hash_regex_parenthesis():
    err = error_of("filter { x { a => [1, 2")
    assert "unterminated array" in err.message and err.pos.col == 19
    err = error_of("filter { x { a => { b => 1 ")
    assert "unterminated hash" in err.message and err.pos.col == 19
    err = error_of("filter { if [a] =~ /abc { x {} } }")
    assert "unterminated regex" in err.message and err.pos.col == 20
    err = error_of("filter { if ([a] { x {} } }")
    assert "expected ')' to close the '(' at 1:13" in err.message


def test_error_unknown_section_with_suggestion():
    err = error_of("inputs { }")
    assert err.message == "unknown section 'inputs'; expected 'input', 'filter' or 'output'; did you mean 'input'?"
    assert err.pos == Pos("t.conf", 1, 1)


def test_error_conditional_in_input():
    err = error_of("input {\n  if [a] { stdin {} }\n}")
    assert err.pos == Pos("t.conf", 2, 3) and "not allowed in the input section" in err.message


@pytest.mark.parametrize(
    ("text", "fragment", "col"),
    [
        ("filter { x { a => } }", "expected a value", 19),
        ("filter { x { a => ${X} } }", "must be quoted", 19),
        ("filter { x { path => /var/log } }", "quote paths", 22),
        ("filter { x { a => [1 2] } }", "expected ',' or ']' in array, found number 2", 22),
        ("filter { x { a = 1 } }", "expected '=>' after setting name 'a', found '='", 16),
        ("filter { if { x {} } }", "expected a condition after 'if'", 13),
        ("filter { if [a] == { x {} } }", "expected a field reference", 20),
        ("filter { if a == 1 { x {} } }", "field references are written [a]", 13),
        ("filter { if [a] not 1 { x {} } }", "expected 'in' after 'not'", 21),
        ("filter { if [a] =~ 1 { x {} } }", "expected a regex", 20),
        ("filter { else { x {} } }", "'else' without a preceding 'if'", 10),
        ("filter { x { 1 => 2 } }", "expected a setting name or '}'", 14),
        ("filter { x y }", "expected '{' after plugin name 'x', found 'y'", 12),
        ("filter { ; }", "expected a plugin name, 'if' or '}'", 10),
        ("input", "expected '{' after section name 'input', found end of file", 6),
        ("} ", "expected a section", 1),
        ("filter { x { h => { 1 } } }", "expected '=>' after hash key", 23),
    ],
)
def test_error_messages_and_positions(text, fragment, col):
    err = error_of(text)
    assert fragment in err.message
    assert err.pos.line == 1 and err.pos.col == col
    assert err.source_line == text


def test_error_too_deep_nesting_is_a_config_error():
    err = error_of("filter { x { a => " + "[" * 5000 + " } }")
    assert "nesting deeper" in err.message
    err = error_of("filter { if " + "(" * 5000 + "[a] { } }")
    assert "nesting deeper" in err.message


# ---- env substitution --------------------------------------------------------------------


def test_env_substitution_in_setting_values(monkeypatch):
    monkeypatch.setenv("LP_HOST", "es1")
    monkeypatch.delenv("LP_UNSET", raising=False)
    node = parse(
        'output { es { hosts => ["${LP_HOST}:9200"] port => "${LP_UNSET:9201}" h => { k => "${LP_HOST}" }'
        ' empty => "${LP_UNSET:}" both => "${LP_HOST}-${LP_UNSET:x}" } }'
    ).outputs[0]
    values = {k: v.value for k, v in node.settings.items()}
    assert values == {"hosts": ["es1:9200"], "port": "9201", "h": {"k": "es1"}, "empty": "", "both": "es1-x"}


def test_env_unset_without_default_errors_at_its_position(monkeypatch):
    monkeypatch.delenv("LP_UNSET", raising=False)
    err = error_of('output {\n  es { hosts => "http://${LP_UNSET}:9200" }\n}')
    assert err.pos == Pos("t.conf", 2, 25)
    assert "LP_UNSET" in err.message and "not set" in err.message


# ---- loader ------------------------------------------------------------------------------


def test_detect_language():
    assert detect_language("# c\n\n  <source>\n") == "fluentd"
    assert detect_language("@include a.conf\n") == "fluentd"
    assert detect_language("# <source>\ninput {}") == "logstash"
    assert detect_language("") == "logstash"


def test_directory_files_in_lexical_order_keep_positions(tmp_path):
    (tmp_path / "20-filter.conf").write_text("filter {\n  b {}\n}\n")
    (tmp_path / "10-input.conf").write_text("input { a {} }\n")
    (tmp_path / "30-output.conf").write_text("output {\n\n  c {}\n}\nfilter { d {} }\n")
    (tmp_path / ".hidden.conf").write_text("this is not a config")
    (tmp_path / "sub").mkdir()
    config = load_config_paths([str(tmp_path)])
    assert [n.name for n in config.inputs] == ["a"]
    assert [n.name for n in config.filters] == ["b", "d"]
    assert config.filters[0].pos == Pos(str(tmp_path / "20-filter.conf"), 2, 3)
    assert config.outputs[0].pos == Pos(str(tmp_path / "30-output.conf"), 3, 3)
    assert config.sources == [str(tmp_path / n) for n in ("10-input.conf", "20-filter.conf", "30-output.conf")]


def test_glob_and_explicit_files_in_given_order(tmp_path):
    for name in ("b.conf", "a.conf", "c.txt"):
        (tmp_path / name).write_text(f"filter {{ {name[0]} {{}} }}")
    config = load_config_paths([str(tmp_path / "c.txt"), str(tmp_path / "*.conf"), str(tmp_path / "a.conf")])
    assert [n.name for n in config.filters] == ["c", "a", "b"]


def test_error_in_second_file_names_that_file(tmp_path):
    (tmp_path / "1.conf").write_text("input { a {} }\n")
    (tmp_path / "2.conf").write_text("filter {\n  x { y }\n}\n")
    with pytest.raises(ConfigError) as info:
        load_config_paths([str(tmp_path)])
    assert info.value.pos == Pos(str(tmp_path / "2.conf"), 2, 9)
    assert "    x { y }" in info.value.render()


def test_missing_paths_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no config file matches"):
        load_config_paths([str(tmp_path / "*.conf")])
    with pytest.raises(ConfigError, match="not found"):
        load_config_paths([str(tmp_path / "nope.conf")])
    with pytest.raises(ConfigError, match="holds no files"):
        load_config_paths([str(tmp_path)])
    with pytest.raises(ConfigError, match="no config path"):
        load_config_paths([])
    (tmp_path / "bin.conf").write_bytes(b"input { \xff\xfe }")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_paths([str(tmp_path / "bin.conf")])


def test_mixed_languages_in_one_directory(tmp_path):
    (tmp_path / "1.conf").write_text("input { stdin {} }\n")
    (tmp_path / "2.conf").write_text("<match **>\n  @type stdout\n</match>\n")
    config = load_config_paths([str(tmp_path)])
    assert [n.name for n in config.inputs] == ["stdin"]
    assert config.outputs[0].branches[0].body[0].name == "stdout"


def test_inline_errors_quote_the_line():
    with pytest.raises(ConfigError) as info:
        load_config_string("input {\n  stdin { codec => }\n}", "<inline>")
    rendered = info.value.render()
    assert rendered.splitlines()[0].startswith("<inline>:2:20: error: expected a value")
    assert rendered.splitlines()[1] == "      stdin { codec => }"


# ---- robustness --------------------------------------------------------------------------

_SEEDS = [
    FULL,
    ('<source>\n  @type forward\n  @label @X\n</source>\n<filter a.**>\n  @type grep\n  <regexp>\n'
    '    key k\n    pattern /x/\n  </regexp>\n</filter>\n<match {a,b}.*>\n  @type copy\n  <store>\n'
    '    @type stdout\n  </store>\n</match>\n<label @X>\n  <match **>\n    @type null\n    v "a\\tb"\n'
    '    j ["a", {"b": 1}]\n  </match>\n</label>\n'),
]
_ALPHABET = list("{}[]()<>/\"'\\#=~!,:$@ \n\tabif-019.*%") + [
    "=>", "if ", "else ", " and ", " in ", "not ", "</", "<match ", "@include ", "${", "#{", "input ",
    "filter ", "é", "\x00", "\r", "\x0b", "\x0c", "\u2028", "\ufeff",
]


def _mutations(rnd: random.Random, count: int):
    for _ in range(count):
        seed = rnd.choice(_SEEDS)
        roll = rnd.random()
        if roll < 0.3:
            yield seed[: rnd.randrange(len(seed))]
        elif roll < 0.75:
            chars = list(seed)
            for _ in range(rnd.randint(1, 6)):
                i = rnd.randrange(len(chars) + 1)
                if rnd.random() < 0.4 and chars:
                    del chars[min(i, len(chars) - 1)]
                else:
                    chars.insert(i, rnd.choice(_ALPHABET))
            yield "".join(chars)
        else:
            prefix = rnd.choice(["", "input {", "filter { if ", "<source>\n", "<match a>\n", "output { x { a => "])
            yield prefix + "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(0, 50)))


def test_garbage_and_truncated_configs_only_raise_config_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative @include globs in the garbage see an empty directory
    rnd = random.Random(20240601)
    outcomes = {"ok": 0, "error": 0}
    for text in _mutations(rnd, 4000):
        try:
            load_config_string(text)
            outcomes["ok"] += 1
        except ConfigError as exc:
            assert exc.pos is None or exc.pos.line >= 1
            exc.render()
            outcomes["error"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 1000


def test_every_truncation_of_a_valid_config_is_handled():
    """Any exception other than ConfigError fails the test."""
    loaded = 0
    for seed in _SEEDS:
        for cut in range(len(seed) + 1):
            try:
                load_config_string(seed[:cut])
                loaded += 1
            except ConfigError:
                pass
    assert loaded > 2


def test_crlf_line_endings_and_bom():
    config = parse("\ufeffinput {\r\n  stdin { a => 1 } # c\r\n}\r\n")
    assert config.inputs[0].settings["a"].value == 1
    err = error_of("input {\r\n  stdin { a => }\r\n}\r\n")
    assert err.source_line == "  stdin { a => }"
