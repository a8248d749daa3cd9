"""Logstash conditional semantics, operator by operator, through the real parser."""

from __future__ import annotations

import pytest

from logpipe.config import load_config_string
from logpipe.config.conditions import compile_condition
from logpipe.config.model import IfNode, Literal, RegexLiteral, TagMatch
from logpipe.errors import ConfigError, Pos
from logpipe.event import Event


def cond(expr: str):
    config = load_config_string("filter { if " + expr + " { drop {} } }", "c.conf")
    node = config.filters[0]
    assert isinstance(node, IfNode) and node.branches[0].condition is not None
    return compile_condition(node.branches[0].condition)


def event(**record) -> Event:
    return Event("web.access", 0, record, {"k": "v", "n": 3})


EV = event(
    status=200, s="200", ratio=0.5, msg="hello world", tags=["a", "b"], nums=[1, 2.5], null=None, f=False, t=True,
    empty="", host="h1", other="h1", nested={"x": 1, "list": ["p"]}, obj={"key": 1},
)


def check(expr: str, expected: bool, ev: Event = EV) -> None:
    assert cond(expr)(ev) is expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[status] == 200", True),
        ("[status] == 200.0", True),
        ("[ratio] == 0.5", True),
        ("[s] == 200", False),  # no string/number coercion
        ("[status] == \"200\"", False),
        ("[s] == \"200\"", True),
        ("[t] == true", True),
        ("[t] == 1", False),  # booleans only equal booleans
        ("[status] == true", False),
        ("[f] == false", True),
        ("[missing] == \"x\"", False),
        ("[missing] == [null]", True),  # both nil
        ("[missing] == [also_missing]", True),
        ("[host] == [other]", True),
        ("[nested][x] == 1", True),
        ("[nested][list] == [\"p\"]", True),
        ("[@metadata][k] == \"v\"", True),
        ("[@metadata][n] == 3", True),
        ("\"a\" == \"a\"", True),
        ("1 == \"1\"", False),
    ],
)
def test_equality(expr, expected):
    check(expr, expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[status] != 200", False),
        ("[s] != 200", True),
        ("[missing] != \"x\"", True),
        ("[host] != [other]", False),
    ],
)
def test_inequality(expr, expected):
    check(expr, expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[status] > 100", True),
        ("[status] < 100", False),
        ("[status] >= 200", True),
        ("[status] <= 199.5", False),
        ("[ratio] < 1", True),
        ("[s] > 100", False),  # string vs number: false, not an error
        ("[s] < 100", False),
        ("[s] > \"100\"", True),  # string vs string: lexical
        ("[s] < \"3\"", True),
        ("[missing] < 1", False),
        ("[missing] >= 1", False),
        ("[null] > 0", False),
        ("[t] > 0", False),
        ("[tags] > 0", False),
        ("[status] > [ratio]", True),
        ("100 < [status]", True),
    ],
)
def test_ordering(expr, expected):
    check(expr, expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[msg] =~ /^hello/", True),
        ("[msg] =~ /^world/", False),
        ("[msg] =~ /wor/", True),  # unanchored search
        ("[msg] =~ \"o w\"", True),  # a string is a regex too
        ("[msg] =~ \"^h.*d$\"", True),
        ("[msg] !~ /^hello/", False),
        ("[msg] !~ /xyz/", True),
        ("[status] =~ /200/", False),  # non-strings never match
        ("[status] !~ /200/", True),
        ("[missing] =~ /./", False),
        ("[missing] !~ /./", True),
        ("[tags] =~ /a/", False),
        ("[msg] =~ /(?<w>wor)ld/", True),  # Ruby named group: falls back to the regex module
        ("[msg] =~ /\\p{L}+ \\p{L}+/", True),
        ("[path] =~ /^\\/var\\/log/", False),
    ],
)
def test_regex_match(expr, expected):
    check(expr, expected)


def test_regex_line_anchors_like_ruby():
    multi = event(msg="first line\nsecond line")
    check("[msg] =~ /^second/", True, multi)
    check("[msg] =~ /line$/", True, multi)


def test_regex_with_escaped_slash_matches_paths():
    check("[path] =~ /^\\/var\\/log\\//", True, event(path="/var/log/x"))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("\"a\" in [tags]", True),
        ("\"c\" in [tags]", False),
        ("\"c\" not in [tags]", True),
        ("\"a\" not in [tags]", False),
        ("\"wor\" in [msg]", True),  # substring
        ("\"xyz\" in [msg]", False),
        ("[s] in [\"200\", \"404\"]", True),
        ("[s] in [\"404\"]", False),
        ("[s] not in [\"404\"]", True),
        ("[status] in [200, 404]", True),
        ("[status] in [\"200\"]", False),  # strict types in arrays too
        ("2.5 in [nums]", True),
        ("1 in [nums]", True),
        ("[t] in [1, 2]", False),
        ("\"key\" in [obj]", True),  # hash keys
        ("\"nope\" in [obj]", False),
        ("\"a\" in [missing]", False),
        ("\"a\" not in [missing]", True),
        ("[missing] in [\"a\"]", False),
        ("[missing] not in [\"a\"]", True),
        ("[status] in [msg]", False),  # number in string: not a substring test
        ("\"h\" in [host]", True),
        ("[host] in [other]", True),
        ("\"p\" in [nested][list]", True),
        ("[status] in []", False),
    ],
)
def test_membership(expr, expected):
    check(expr, expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[status]", True),
        ("[msg]", True),
        ("[empty]", True),  # Logstash: present and not false/nil
        ("[f]", False),
        ("[null]", False),
        ("[missing]", False),
        ("[tags]", True),
        ("[nested][x]", True),
        ("[nested][y]", False),
        ("[@metadata][k]", True),
        ("[@metadata][zz]", False),
        ("![missing]", True),
        ("![status]", False),
        ("!![status]", True),
        ("\"literal\"", True),
    ],
)
def test_truthiness_and_negation(expr, expected):
    check(expr, expected)


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        (True, "and", True, True), (True, "and", False, False), (False, "and", True, False),
        (True, "or", False, True), (False, "or", False, False), (False, "or", True, True),
        (True, "xor", True, False), (True, "xor", False, True), (False, "xor", False, False),
        (True, "nand", True, False), (True, "nand", False, True), (False, "nand", False, True),
    ],
)
def test_boolean_operators(left, op, right, expected):
    truth = {True: "[status]", False: "[missing]"}
    check(f"{truth[left]} {op} {truth[right]}", expected)


def test_boolean_operators_are_left_to_right():
    # Logstash evaluates left to right: (true or false) and false → false
    check("[status] or [missing] and [missing]", False)
    check("[status] or ([missing] and [missing])", True)
    check("[missing] and [status] or [status]", True)


def test_short_circuit_does_not_evaluate_right_side():
    calls = []

    class Spy(dict):
        def get(self, key, default=None):
            calls.append(key)
            return super().get(key, default)

    ev = Event("t", 0, Spy(a=False, b=True))
    assert cond("[a] and [b]")(ev) is False
    assert calls == ["a"]


def test_sprintf_in_string_literals():
    check("[host] == \"%{other}\"", True)
    check("[greeting] == \"hi %{host}\"", True, event(greeting="hi h1", host="h1"))
    check("\"%{host}\" in [msg]", False)
    check("\"%{host}\" in [list]", True, event(host="h1", list=["h0", "h1"]))


def test_tag_match_condition():
    predicate = compile_condition(TagMatch(["web.*", "app.**"], Pos("x", 1, 1)))
    assert predicate(Event("web.access", 0, {})) is True
    assert predicate(Event("app", 0, {})) is True
    assert predicate(Event("db.query", 0, {})) is False


def test_invalid_regex_is_a_config_error_with_position():
    with pytest.raises(ConfigError) as info:
        cond("[a] =~ /(unclosed/")
    assert info.value.pos == Pos("c.conf", 1, 20)
    assert "invalid regex" in info.value.message
    with pytest.raises(ConfigError) as info:
        compile_condition(TagMatch(["/(bad/"], Pos("m.conf", 4, 2)))
    assert info.value.pos == Pos("m.conf", 4, 2)


def test_regex_literal_and_literal_as_bare_conditions():
    assert compile_condition(RegexLiteral("x", Pos("x", 1, 1)))(EV) is True
    assert compile_condition(Literal(False, Pos("x", 1, 1)))(EV) is False


def test_predicates_return_real_bools():
    for expr in ("[status] == 200", "[msg] =~ /h/", "\"a\" in [tags]", "[status]", "[status] and [msg]",
                 "[status] > 1", "[s] in [\"200\"]"):
        assert type(cond(expr)(EV)) is bool, expr
