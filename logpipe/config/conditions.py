"""Compile conditional expressions of the config model into `event -> bool` predicates.

Semantics are Logstash's:

- `==` `!=`: no coercion between strings and numbers (`[status] == 200` is false for
  the string "200"); ints and floats compare by value; booleans only equal booleans;
  a missing field behaves as nil (equal to a JSON null and to another missing field).
- `<` `>` `<=` `>=`: numbers with numbers, strings with strings; any other pairing,
  missing fields included, is false rather than an error.
- `=~` `!~`: the right side is a regex literal or a string used as a regex, compiled
  once; values that are not strings never match (so `!~` is true for them). Patterns
  are compiled with MULTILINE because Logstash's (Ruby) `^`/`$` are line anchors; the
  stdlib `re` is tried first (fastest), then the `regex` module, which understands
  Ruby/Oniguruma syntax such as `(?<name>...)`, `\\h`, `\\z`, `\\p{L}`.
  Every search runs under a time budget (logpipe.regex_budget): one over it does not
  match and tags the event `_regextimeout`.
- `in` / `not in`: membership in an array (strictly typed, as `==`), substring of a
  string, key of a hash; anything else is not "in".
- `and` `or` `xor` `nand` left to right (short-circuit for and/or/nand), `!`, and a
  bare value: true when present and not false/null (an empty string is true).
- String literals may hold sprintf references (`"%{host}"`), rendered per event.
- `TagMatch`: the event tag matches one of the Fluentd globs.

Each node becomes one closure; comparisons against a constant get a specialised
closure, since conditionals run once per event on the hot path.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import regex as regex_module

from logpipe.config.model import (
    BoolOp,
    Compare,
    Expr,
    FieldRef,
    Literal,
    Not,
    RegexLiteral,
    TagMatch,
    Truthy,
)
from logpipe.config.tagmatch import compile_tag_patterns
from logpipe.errors import ConfigError, Pos
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, compile_sprintf
from logpipe.regex_budget import TIMEOUT_TAG, BoundedPattern, RegexTimeout

Predicate = Callable[[Event], bool]
Getter = Callable[[Event], Any]

_NUMBERS = (int, float)
_ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


class _Constant:
    """A value known at compile time, so comparisons can be specialised."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def compile_condition(expr: Expr) -> Predicate:
    """`event -> bool` for a condition of the model. Raises ConfigError (with the
    position of the offending part) for an invalid regex or field reference."""
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, BoolOp):
        return _bool_op(expr)
    if isinstance(expr, Not):
        inner = compile_condition(expr.operand)
        return lambda ev: not inner(ev)
    if isinstance(expr, Truthy):
        return _truthy(expr.operand)
    if isinstance(expr, TagMatch):
        try:
            matches = compile_tag_patterns(expr.patterns)
        except ConfigError as exc:
            raise ConfigError(exc.message, expr.pos) from None
        return lambda ev: matches(ev.tag)
    if isinstance(expr, (FieldRef, Literal, RegexLiteral)):
        return _truthy(expr)
    raise ConfigError(f"unsupported condition {type(expr).__name__}")


# ---- operands ------------------------------------------------------------------------


def _operand(expr: Expr) -> Getter | _Constant:
    """A getter for a field or sprintf string, or a _Constant."""
    if isinstance(expr, FieldRef):
        try:
            return compile_getter(tuple(expr.path))
        except ConfigError as exc:
            raise ConfigError(exc.message, expr.pos) from None
    if isinstance(expr, Literal):
        value = expr.value
        if isinstance(value, str) and "%{" in value:
            try:
                return compile_sprintf(value)
            except ConfigError as exc:
                raise ConfigError(exc.message, expr.pos) from None
        return _Constant(value)
    if isinstance(expr, RegexLiteral):
        return _Constant(_compile_regex(expr.source, expr.pos))
    raise ConfigError(f"a {type(expr).__name__} cannot be used as a value", getattr(expr, "pos", None))


def _getter(operand: Getter | _Constant) -> Getter:
    if isinstance(operand, _Constant):
        value = operand.value
        return lambda ev: value
    return operand


def _compile_regex(source: str, pos: Pos | None) -> Any:
    try:
        return re.compile(source, re.MULTILINE)
    except re.error:
        pass
    try:
        return regex_module.compile(source, regex_module.MULTILINE | regex_module.VERSION0)
    except (regex_module.error, ValueError, OverflowError) as exc:
        raise ConfigError(f"invalid regex /{source}/: {exc}", pos) from None


# ---- truthiness and boolean operators ---------------------------------------------------


def _truthy(expr: Expr) -> Predicate:
    operand = _operand(expr)
    if isinstance(operand, _Constant):
        result = _is_true(operand.value)
        return lambda ev: result
    get = operand

    def truthy(ev: Event) -> bool:
        value = get(ev)
        return value is not MISSING and value is not None and value is not False

    return truthy


def _is_true(value: Any) -> bool:
    return value is not MISSING and value is not None and value is not False


def _bool_op(expr: BoolOp) -> Predicate:
    left = compile_condition(expr.left)
    right = compile_condition(expr.right)
    op = expr.op
    if op == "and":
        return lambda ev: left(ev) and right(ev)
    if op == "or":
        return lambda ev: left(ev) or right(ev)
    if op == "xor":
        return lambda ev: left(ev) != right(ev)
    if op == "nand":
        return lambda ev: not (left(ev) and right(ev))
    raise ConfigError(f"unknown boolean operator '{op}'", expr.pos)


# ---- comparisons ------------------------------------------------------------------------


def _compare(expr: Compare) -> Predicate:
    op = expr.op
    if op in ("=~", "!~"):
        return _regex_match(expr)
    left = _operand(expr.left)
    right = _operand(expr.right)
    if op in ("==", "!="):
        equal = _equality(left, right)
        if op == "==":
            return equal
        return lambda ev: not equal(ev)
    if op in _ORDER:
        return _ordering(_ORDER[op], left, right)
    if op in ("in", "not in"):
        contained = _membership(left, right)
        if op == "in":
            return contained
        return lambda ev: not contained(ev)
    raise ConfigError(f"unknown comparison operator '{op}'", expr.pos)


def _same(a: Any, b: Any) -> bool:
    """Logstash equality: no string/number coercion, booleans only equal booleans,
    missing equals nil."""
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    ta, tb = a.__class__, b.__class__
    if ta is tb or (ta in _NUMBERS and tb in _NUMBERS):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _equality(left: Getter | _Constant, right: Getter | _Constant) -> Predicate:
    if isinstance(left, _Constant) and isinstance(right, _Constant):
        result = _same(left.value, right.value)
        return lambda ev: result
    if isinstance(left, _Constant):
        left, right = right, left
    assert not isinstance(left, _Constant)
    get = left
    if isinstance(right, _Constant):
        const = right.value
        if isinstance(const, str):
            return lambda ev: get(ev) == const
        if const.__class__ in _NUMBERS:

            def eq_number(ev: Event) -> bool:
                value = get(ev)
                return value.__class__ in _NUMBERS and value == const

            return eq_number
        if isinstance(const, bool):
            return lambda ev: get(ev) is const
        return lambda ev: _same(get(ev), const)
    other = right
    return lambda ev: _same(get(ev), other(ev))


def _ordering(
    cmp: Callable[[Any, Any], bool], left: Getter | _Constant, right: Getter | _Constant
) -> Predicate:
    get_left, get_right = _getter(left), _getter(right)

    def ordered(ev: Event) -> bool:
        a = get_left(ev)
        b = get_right(ev)
        ta, tb = a.__class__, b.__class__
        if (ta in _NUMBERS and tb in _NUMBERS) or (ta is str and tb is str):
            return cmp(a, b)
        return False

    if isinstance(right, _Constant) and right.value.__class__ in _NUMBERS:
        const = right.value

        def ordered_number(ev: Event) -> bool:
            a = get_left(ev)
            return a.__class__ in _NUMBERS and cmp(a, const)

        return ordered_number
    return ordered


def _contains(item: Any, container: Any) -> bool:
    """Logstash `in`: element of an array, substring of a string, key of a hash."""
    if item is MISSING or container is MISSING:
        return False
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        if isinstance(item, str):
            return item in container
        return any(_same(item, element) for element in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    return False


def _membership(left: Getter | _Constant, right: Getter | _Constant) -> Predicate:
    if isinstance(right, _Constant):
        const = right.value
        if isinstance(const, list) and const and all(isinstance(v, str) for v in const):
            choices = frozenset(const)
            get = _getter(left)
            return lambda ev: isinstance(value := get(ev), str) and value in choices
        get_left = _getter(left)
        return lambda ev: _contains(get_left(ev), const)
    get_item, get_container = _getter(left), right
    return lambda ev: _contains(get_item(ev), get_container(ev))


def _regex_match(expr: Compare) -> Predicate:
    right = expr.right
    if isinstance(right, RegexLiteral):
        pattern = _compile_regex(right.source, right.pos)
    elif isinstance(right, Literal) and isinstance(right.value, str):
        pattern = _compile_regex(right.value, right.pos)
    else:
        raise ConfigError(f"'{expr.op}' needs a regex /.../ or a string on its right", expr.pos)
    get = _getter(_operand(expr.left))
    search = BoundedPattern(pattern, "condition").search

    def matches(ev: Event) -> bool:
        value = get(ev)
        if not isinstance(value, str):
            return False
        try:
            return search(value) is not None
        except RegexTimeout:
            _tag_timeout(ev)
            return False

    if expr.op == "=~":
        return matches
    return lambda ev: not matches(ev)


def _tag_timeout(ev: Event) -> None:
    """A regex over its budget does not match; the event says so in its tags."""
    tags = ev.record.get("tags")
    if tags is None:
        ev.record["tags"] = [TIMEOUT_TAG]
    elif isinstance(tags, list) and TIMEOUT_TAG not in tags:
        tags.append(TIMEOUT_TAG)
