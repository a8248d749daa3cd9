"""The Ruby of Fluentd record placeholders (`${…}` with record_transformer's `enable_ruby`,
record_modifier's `<record>` and `prepare_value`), compiled once to Python closures: the
expressions real configs write, with Ruby's semantics, and no general Ruby.

Supported, by what configs use them for:

- names: `record`, `tag`, `time` (a Time), `tag_parts`, `tag_prefix`, `tag_suffix`, `hostname`,
  instance variables set by `prepare_value` (`@x = …; require 'socket'`), `ENV`;
- literals: strings (`'…'`, `"…"` with `#{…}`), integers, floats, `nil`/`true`/`false`, symbols,
  regexps `/…/imx`, arrays `[…]`, hashes `{"k" => v, k: v}`;
- operators: `|| && ! and or not`, `? :`, `== != =~ !~ < <= > >=`, `+ - * / %`, unary `-`,
  indexing `x[i]`, `x[a, n]`, `x[a..b]`, safe navigation `&.`, and `expr rescue fallback`;
- methods of strings, numbers, arrays, hashes, nil and Time (the `_METHODS` table: `dig`,
  `fetch`, `key?`, `split`, `gsub`, `sub`, `strip`, `upcase`, `downcase`, `to_i`, `to_s`,
  `to_json`, `strftime`, `iso8601`, `join`, `first`, `last` …), and `Socket.gethostname`,
  `Time.now`, `Time.at`, `CGI.escape`/`unescape`, `JSON.generate`/`parse`, `Integer()`,
  `Float()`, `String()`, `ENV.fetch`.

Anything else — blocks (`map { |k, v| … }`), assignments in records, `eval`, `system`,
backticks, methods not in the table — is refused when the config is read (`RubyError`, which
the plugins turn into a ConfigError at the setting), never run. A method that does not apply
to the value at run time (`nil.upcase`, Ruby's NoMethodError) raises `RubyRuntimeError`: the
plugins send that event to `@ERROR`, as Fluentd's `emit_error_event` does.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import regex

from logpipe.jsonvalues import json_default

NS = 1_000_000_000


class RubyError(Exception):
    """An expression outside the supported subset (a config error)."""


class RubyRuntimeError(Exception):
    """Evaluating an expression failed for this event (Ruby would raise)."""


class Scope:
    """What an expression sees for one event."""

    __slots__ = ("record", "tag", "time_ns", "hostname", "ivars", "_parts")

    def __init__(self, record: dict[str, Any], tag: str, time_ns: int, hostname: str,
                 ivars: dict[str, Any] | None = None) -> None:
        self.record = record
        self.tag = tag
        self.time_ns = time_ns
        self.hostname = hostname
        self.ivars = ivars if ivars is not None else {}
        self._parts: list[str] | None = None

    def tag_parts(self) -> list[str]:
        if self._parts is None:
            self._parts = self.tag.split(".")
        return self._parts


Code = Callable[[Scope], Any]


# ---- Ruby values --------------------------------------------------------------------------


class RubyTime:
    """Ruby's Time for `time`, `Time.now`, `Time.at` (UTC, as logpipe's times are)."""

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def dt(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self.ns // 1000)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RubyTime) and other.ns == self.ns

    def __hash__(self) -> int:
        return hash(self.ns)

    def __str__(self) -> str:
        return self.dt().strftime("%Y-%m-%d %H:%M:%S +0000")

    def strftime(self, fmt: str) -> str:
        frac = f"{self.ns % NS:09d}"

        def one(m: re.Match[str]) -> str:
            spec = m.group(1)
            width, letter = spec[:-1], spec[-1]
            if letter == "N":
                return frac[: int(width)] if width.isdigit() else frac
            if letter == "L":
                return frac[:3]
            if letter == "z":
                return "+00:00" if width == ":" else "+0000"
            if letter == "s":
                return str(self.ns // NS)
            if letter == "Z":
                return "UTC"
            return self.dt().strftime("%" + letter)

        return re.sub(r"%([0-9:]*[A-Za-z%])", lambda m: "%" if m.group(1) == "%" else one(m), fmt)

    def iso8601(self, digits: int = 0) -> str:
        base = self.dt().strftime("%Y-%m-%dT%H:%M:%S")
        frac = f".{self.ns % NS:09d}"[: digits + 1] if digits else ""
        return f"{base}{frac}Z"


def truthy(value: Any) -> bool:
    return value is not None and value is not False


def ruby_inspect(value: Any) -> str:
    """`inspect` as Ruby 3.1 writes it (`["a", 1, nil]`, `{"k"=>"v"}`)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("#{", "\\#{")
    if isinstance(value, list):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
    return to_s(value)


def to_s(value: Any) -> str:
    """Ruby's `to_s` (what `"#{x}"` writes)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        if "e" in text:
            mantissa, exp = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            return f"{mantissa}e{int(exp):+03d}"
        return text
    if isinstance(value, (list, dict)):
        return ruby_inspect(value)
    return str(value)


def to_record_value(value: Any) -> Any:
    """A value as a record holds it: Time objects as their text (what Fluentd serialises)."""
    if isinstance(value, RubyTime):
        return str(value)
    return value


def _to_i(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        if value is None:
            return 0
        raise RubyRuntimeError(f"undefined method `to_i' for {ruby_inspect(value)}")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, RubyTime):
        return value.ns // NS
    m = re.match(r"\s*([+-]?\d[\d_]*)", str(value))
    return int(m.group(1).replace("_", "")) if m else 0


def _to_f(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise RubyRuntimeError(f"undefined method `to_f' for {ruby_inspect(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, RubyTime):
        return value.ns / NS
    m = re.match(r"\s*([+-]?\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)", str(value))
    return float(m.group(1).replace("_", "")) if m else 0.0


def _to_json(value: Any) -> str:
    return orjson.dumps(to_record_value(value), default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, RubyTime):
        return str(value)
    return json_default(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "hash"
    if isinstance(value, RubyTime):
        return "time"
    if isinstance(value, regex.Pattern):
        return "regexp"
    return "object"


def _no_method(name: str, value: Any) -> RubyRuntimeError:
    return RubyRuntimeError(f"undefined method `{name}' for {ruby_inspect(value)[:80]}")


def _index(value: Any, args: list[Any]) -> Any:
    """`x[i]`, `x[start, length]`, `x[range]`, `hash[key]`, `string[i]`."""
    if isinstance(value, dict):
        if len(args) != 1:
            raise RubyRuntimeError("Hash#[] takes one key")
        return value.get(args[0])
    if isinstance(value, (list, str)):
        if len(args) == 2:
            start, length = _to_int_arg(args[0]), _to_int_arg(args[1])
            n = len(value)
            if start < 0:
                start += n
            if start < 0 or start > n or length < 0:
                return None
            return value[start:start + length]
        (arg,) = args
        if isinstance(arg, _Range):
            return arg.slice(value)
        if isinstance(value, str) and isinstance(arg, str):
            return arg if arg in value else None
        i = _to_int_arg(arg)
        n = len(value)
        return value[i] if -n <= i < n else None
    if value is None:
        raise _no_method("[]", value)
    raise _no_method("[]", value)


def _to_int_arg(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RubyRuntimeError(f"no implicit conversion of {_kind(value)} into Integer")
    return int(value)


class _Range:
    __slots__ = ("first", "last", "exclusive")

    def __init__(self, first: Any, last: Any, exclusive: bool) -> None:
        self.first, self.last, self.exclusive = _to_int_arg(first), _to_int_arg(last), exclusive

    def slice(self, value: list[Any] | str) -> Any:
        n = len(value)
        start = self.first + n if self.first < 0 else self.first
        end = self.last + n if self.last < 0 else self.last
        if start < 0 or start > n:
            return None
        end = end if self.exclusive else end + 1
        return value[start:max(start, end)]


def _pattern(value: Any) -> Any:
    if isinstance(value, regex.Pattern):
        return value
    if isinstance(value, str):
        return regex.compile(regex.escape(value))
    raise RubyRuntimeError(f"wrong argument type {_kind(value)} (expected Regexp)")


def _sub(value: str, pattern: Any, replacement: Any, count: int) -> str:
    pat = _pattern(pattern)
    if isinstance(replacement, dict):
        return str(pat.sub(lambda m: to_s(replacement.get(m.group())), value, count=count, timeout=1.0))
    text = to_s(replacement)
    if isinstance(pattern, str):
        return str(pat.sub(lambda m: text, value, count=count))

    def expand(m: Any) -> str:
        return re.sub(r"\\(\d|k<(\w+)>|&|\\)", lambda g: _backref(m, g), text)

    return str(pat.sub(expand, value, count=count, timeout=1.0))


def _backref(m: Any, g: re.Match[str]) -> str:
    token = g.group(1)
    if token == "\\":
        return "\\"
    if token == "&":
        return str(m.group(0))
    if token.startswith("k<"):
        return m.group(g.group(2)) or ""
    return m.group(int(token)) or "" if int(token) <= len(m.groups()) else ""


def _split(value: str, args: list[Any]) -> list[str]:
    sep = args[0] if args else None
    limit = _to_int_arg(args[1]) if len(args) > 1 else 0
    if sep is None or sep == " ":
        parts = value.split(None, limit - 1) if limit > 0 else value.split()
        return parts
    if isinstance(sep, regex.Pattern):
        parts = sep.split(value, maxsplit=max(limit - 1, 0), timeout=1.0)
    else:
        parts = value.split(to_s(sep), limit - 1) if limit > 0 else value.split(to_s(sep))
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _capitalize(value: str) -> str:
    return value[:1].upper() + value[1:].lower()


def _dig(value: Any, *keys: Any) -> Any:
    for key in keys:
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            value = _index(value, [key])
        else:
            raise RubyRuntimeError(f"{_kind(value)} does not have #dig method")
    return value


def _fetch(value: Any, *args: Any) -> Any:
    if not args or len(args) > 2:
        raise RubyRuntimeError("fetch takes a key and an optional default")
    key = args[0]
    if isinstance(value, dict):
        if key in value:
            return value[key]
    elif isinstance(value, list):
        i = _to_int_arg(key)
        if -len(value) <= i < len(value):
            return value[i]
    else:
        raise _no_method("fetch", value)
    if len(args) == 2:
        return args[1]
    raise RubyRuntimeError(f"key not found: {ruby_inspect(key)}")


def _strict_number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or value is None:
        raise RubyRuntimeError(f"can't convert {_kind(value)} into {kind.__name__}")
    try:
        return kind(value) if not isinstance(value, str) else kind(value.strip().replace("_", ""))
    except ValueError:
        raise RubyRuntimeError(f"invalid value for {kind.__name__}(): {ruby_inspect(value)}") from None


def _arith(op: str, left: Any, right: Any) -> Any:
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        raise _no_method(op, left)
    if op == "+":
        if isinstance(left, str):
            if not isinstance(right, str):
                raise RubyRuntimeError(f"no implicit conversion of {_kind(right)} into String")
            return left + right
        if isinstance(left, list) and isinstance(right, list):
            return left + right
        if isinstance(left, RubyTime) and isinstance(right, numbers):
            return RubyTime(left.ns + int(right * NS))
    if op == "-" and isinstance(left, RubyTime):
        if isinstance(right, RubyTime):
            return (left.ns - right.ns) / NS
        if isinstance(right, numbers):
            return RubyTime(left.ns - int(right * NS))
    if op == "*" and isinstance(left, str) and isinstance(right, int):
        return left * right
    if isinstance(left, numbers) and isinstance(right, numbers):
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if right == 0 and isinstance(right, int) and isinstance(left, int):
            raise RubyRuntimeError("divided by 0")
        if op == "/":
            return left // right if isinstance(left, int) and isinstance(right, int) else left / right
        if op == "%":
            return left % right
    if left is None:
        raise _no_method(op, left)
    raise RubyRuntimeError(f"{_kind(left)} {op} {_kind(right)} is not defined")


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    try:
        if isinstance(left, RubyTime) and isinstance(right, RubyTime):
            left, right = left.ns, right.ns
        if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
            raise TypeError
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError:
        raise RubyRuntimeError(f"comparison of {_kind(left)} with {ruby_inspect(right)[:40]} failed") from None


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _match(left: Any, right: Any) -> Any:
    """`a =~ b`: the match position or nil (either side may be the regexp)."""
    if isinstance(left, regex.Pattern):
        left, right = right, left
    if left is None:
        return None
    if not isinstance(right, regex.Pattern) or not isinstance(left, str):
        raise RubyRuntimeError(f"=~ needs a string and a regexp, not {_kind(left)} and {_kind(right)}")
    try:
        m = right.search(left, timeout=1.0)
    except TimeoutError:
        raise RubyRuntimeError(f"regexp /{right.pattern}/ exceeded its time budget") from None
    return None if m is None else m.start()


def _method_table() -> dict[str, Callable[..., Any]]:
    """name → function(receiver, *args). Each checks the receiver's kind where Ruby would."""

    def on(kinds: tuple[str, ...], fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(value: Any, *args: Any) -> Any:
            if _kind(value) not in kinds:
                raise _no_method(name, value)
            return fn(value, *args)

        return call

    s, a, h, n, t = ("string",), ("array",), ("hash",), ("number",), ("time",)
    table: dict[str, Callable[..., Any]] = {
        "to_s": lambda v: str(v) if isinstance(v, RubyTime) else to_s(v),
        "inspect": ruby_inspect,
        "to_i": _to_i,
        "to_f": _to_f,
        "to_sym": on(s, lambda v: v, "to_sym"),
        "to_str": on(s, lambda v: v, "to_str"),
        "to_a": lambda v: [] if v is None else list(v.items()) if isinstance(v, dict) else list(v)
        if isinstance(v, list) else [v],
        "to_h": on(h, dict, "to_h"),
        "to_json": _to_json,
        "nil?": lambda v: v is None,
        "empty?": on(s + a + h, lambda v: len(v) == 0, "empty?"),
        "length": on(s + a + h, len, "length"),
        "size": on(s + a + h, len, "size"),
        "upcase": on(s, str.upper, "upcase"),
        "downcase": on(s, str.lower, "downcase"),
        "capitalize": on(s, _capitalize, "capitalize"),
        "swapcase": on(s, str.swapcase, "swapcase"),
        "strip": on(s, lambda v: v.strip(" \t\n\v\f\r\0"), "strip"),
        "lstrip": on(s, lambda v: v.lstrip(" \t\n\v\f\r\0"), "lstrip"),
        "rstrip": on(s, lambda v: v.rstrip(" \t\n\v\f\r\0"), "rstrip"),
        "chomp": on(s, lambda v, suffix=None: (v[: -len(suffix)] if suffix and v.endswith(suffix) else v)
                    if suffix is not None else v[:-2] if v.endswith("\r\n") else v.rstrip("\n\r")[: len(v)]
                    if v.endswith(("\n", "\r")) and not v.endswith("\r\n") else v, "chomp"),
        "reverse": on(s + a, lambda v: v[::-1], "reverse"),
        "include?": on(s + a + h, lambda v, x: (x in v) if not isinstance(v, str) else to_s(x) in v, "include?"),
        "start_with?": on(s, lambda v, *xs: any(v.startswith(to_s(x)) for x in xs), "start_with?"),
        "end_with?": on(s, lambda v, *xs: any(v.endswith(to_s(x)) for x in xs), "end_with?"),
        "split": on(s, lambda v, *args: _split(v, list(args)), "split"),
        "gsub": on(s, lambda v, p, r: _sub(v, p, r, 0), "gsub"),
        "sub": on(s, lambda v, p, r: _sub(v, p, r, 1), "sub"),
        "tr": on(s, lambda v, a_, b_: v.translate(str.maketrans(a_, (b_ * len(a_))[: len(a_)] if b_ else "",
                                                                  "" if b_ else a_)), "tr"),
        "delete": on(s + h, lambda v, x: v.replace(to_s(x), "") if isinstance(v, str) else dict(v).get(x), "delete"),
        "match?": on(s, lambda v, p: _match(v, _pattern(p)) is not None, "match?"),
        "squeeze": on(s, lambda v: re.sub(r"(.)\1+", r"\1", v), "squeeze"),
        "first": on(a, lambda v, k=None: (v[0] if v else None) if k is None else v[:k], "first"),
        "last": on(a, lambda v, k=None: (v[-1] if v else None) if k is None else v[-k:] if k else [], "last"),
        "join": on(a, lambda v, sep="": to_s(sep).join(to_s(x) for x in v), "join"),
        "compact": on(a + h, lambda v: [x for x in v if x is not None] if isinstance(v, list)
                      else {k: x for k, x in v.items() if x is not None}, "compact"),
        "uniq": on(a, lambda v: list({orjson.dumps(x, default=str): x for x in v}.values()), "uniq"),
        "flatten": on(a, lambda v: _flatten(v), "flatten"),
        "sort": on(a, lambda v: sorted(v), "sort"),
        "min": on(a + t, lambda v: v.dt().minute if isinstance(v, RubyTime) else min(v) if v else None, "min"),
        "max": on(a, lambda v: max(v) if v else None, "max"),
        "sum": on(a, lambda v: sum(v), "sum"),
        "count": on(a + s, lambda v, *x: v.count(x[0]) if x else len(v), "count"),
        "keys": on(h, lambda v: list(v), "keys"),
        "values": on(h, lambda v: list(v.values()), "values"),
        "key?": on(h, lambda v, k: k in v, "key?"),
        "has_key?": on(h, lambda v, k: k in v, "has_key?"),
        "member?": on(h + a, lambda v, k: k in v, "member?"),
        "value?": on(h, lambda v, x: x in v.values(), "value?"),
        "merge": on(h, lambda v, *others: {**v, **{k: x for o in others for k, x in o.items()}}, "merge"),
        "slice": on(h + s + a, lambda v, *ks: {k: v[k] for k in ks if k in v} if isinstance(v, dict)
                    else _index(v, list(ks)), "slice"),
        "except": on(h, lambda v, *ks: {k: x for k, x in v.items() if k not in ks}, "except"),
        "dig": on(h + a, _dig, "dig"),
        "fetch": on(h + a, _fetch, "fetch"),
        "round": on(n, _round, "round"),
        "floor": on(n, lambda v: int(v // 1), "floor"),
        "ceil": on(n, lambda v: int(-(-v // 1)), "ceil"),
        "abs": on(n, abs, "abs"),
        "zero?": on(n, lambda v: v == 0, "zero?"),
        "strftime": on(t, lambda v, fmt: v.strftime(to_s(fmt)), "strftime"),
        "iso8601": on(t, lambda v, d=0: v.iso8601(d), "iso8601"),
        "xmlschema": on(t, lambda v, d=0: v.iso8601(d), "xmlschema"),
        "utc": on(t, lambda v: v, "utc"),
        "getutc": on(t, lambda v: v, "getutc"),
        "localtime": on(t, lambda v: v, "localtime"),
        "usec": on(t, lambda v: v.ns // 1000 % 1_000_000, "usec"),
        "nsec": on(t, lambda v: v.ns % NS, "nsec"),
        "year": on(t, lambda v: v.dt().year, "year"),
        "month": on(t, lambda v: v.dt().month, "month"),
        "day": on(t, lambda v: v.dt().day, "day"),
        "hour": on(t, lambda v: v.dt().hour, "hour"),
        "sec": on(t, lambda v: v.dt().second, "sec"),
    }
    return table


def _round(value: float, digits: int = 0) -> float | int:
    """Ruby rounds half away from zero (2.5.round is 3), Python to even."""
    if isinstance(value, int) and digits >= 0:
        return value
    scale = 10 ** digits
    rounded = math.floor(abs(value) * scale + 0.5) / scale
    rounded = math.copysign(rounded, value)
    return int(rounded) if digits <= 0 else rounded


def _flatten(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in value:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


_METHODS = _method_table()


def _call_method(name: str, receiver: Any, args: list[Any]) -> Any:
    fn = _METHODS[name]
    try:
        return fn(receiver, *args)
    except RubyRuntimeError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError, TimeoutError) as exc:
        raise RubyRuntimeError(f"{name}: {exc}") from None


def _constant_call(const: str, method: str, args: list[Any]) -> Any:
    if const == "Socket" and method == "gethostname":
        return socket.gethostname()
    if const == "Time" and method == "now":
        import time

        return RubyTime(time.time_ns())
    if const == "Time" and method == "at":
        value = args[0] if args else None
        if isinstance(value, RubyTime):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RubyRuntimeError(f"can't convert {_kind(value)} into an exact number")
        return RubyTime(int(value * NS) if isinstance(value, float) else value * NS)
    if const == "CGI" and method == "escape":
        return urllib.parse.quote_plus(to_s(args[0]), safe="*-._")
    if const == "CGI" and method == "unescape":
        return urllib.parse.unquote_plus(to_s(args[0]))
    if const == "JSON" and method in ("generate", "dump"):
        return _to_json(args[0])
    if const == "JSON" and method == "parse":
        try:
            return json.loads(to_s(args[0]))
        except ValueError as exc:
            raise RubyRuntimeError(f"JSON.parse: {exc}") from None
    if const == "ENV" and method == "fetch":
        if to_s(args[0]) in os.environ:
            return os.environ[to_s(args[0])]
        if len(args) > 1:
            return args[1]
        raise RubyRuntimeError(f"key not found: {ruby_inspect(args[0])}")
    raise RubyRuntimeError(f"{const}.{method}")  # not reached: the parser checks the pair


_CONSTANT_METHODS = {("Socket", "gethostname"), ("Time", "now"), ("Time", "at"), ("CGI", "escape"),
                     ("CGI", "unescape"), ("JSON", "generate"), ("JSON", "dump"), ("JSON", "parse"),
                     ("ENV", "fetch")}
_KERNEL = {"Integer": lambda v: _strict_number(v, int), "Float": lambda v: _strict_number(v, float),
           "String": to_s}
_REFUSED = {"eval", "system", "exec", "spawn", "send", "__send__", "public_send", "instance_eval", "class_eval",
            "require_relative", "load", "open", "exit", "abort", "fork", "sleep", "loop", "define_method",
            "instance_variable_get", "instance_variable_set", "const_get", "binding", "method", "puts", "print",
            "p", "raise", "lambda", "proc"}


# ---- tokens ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
  (?P<space>\s+)
| (?P<num>\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)
| (?P<ivar>@[A-Za-z_]\w*)
| (?P<symbol>:[A-Za-z_]\w*[?!]?)
| (?P<label>[A-Za-z_]\w*:(?!:))
| (?P<name>[A-Za-z_]\w*[?!]?)
| (?P<op>\.\.\.|\.\.|&&|\|\||==|!=|=~|!~|<=|>=|=>|&\.|::|[-+*/%<>!?:.,()\[\]{}=|`;])
| (?P<sq>')
| (?P<dq>")
""", re.VERBOSE)


class _Source:
    """The expression text and a cursor; strings and regexps are read by the parser itself,
    because what a token is depends on where it stands (`/` divides or opens a regexp)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.i = 0

    def error(self, message: str) -> RubyError:
        return RubyError(f"{message} at {self.code[self.i:self.i + 20]!r}" if self.i < len(self.code) else message)


class _Parser:
    def __init__(self, code: str) -> None:
        self.src = _Source(code)
        self.tokens: list[tuple[str, Any, int]] = []
        self.pos = 0
        self._tokenize()

    # The tokenizer reads strings, regexps and interpolation; the rest is _TOKEN.
    def _tokenize(self) -> None:
        code = self.src.code
        i = 0
        while i < len(code):
            if code[i] == "/" and self._regexp_allowed():
                i = self._regexp(i)
                continue
            if code.startswith("%Q", i) or code.startswith("%q", i):
                i = self._percent_string(i)
                continue
            m = _TOKEN.match(code, i)
            if m is None:
                raise RubyError(f"cannot read {code[i:i + 20]!r}")
            kind = m.lastgroup or ""
            if kind == "sq":
                i = self._single_quoted(i)
                continue
            if kind == "dq":
                i = self._double_quoted(i)
                continue
            if kind != "space":
                self.tokens.append((kind, m.group(kind), i))
            i = m.end()

    def _regexp_allowed(self) -> bool:
        if not self.tokens:
            return True
        kind, text, _ = self.tokens[-1]
        if kind in ("num", "str", "ivar", "regexp", "interp"):
            return False
        if kind == "name":
            return text in ("and", "or", "not", "if", "unless", "when", "rescue")
        return text not in (")", "]", "}")

    def _regexp(self, start: int) -> int:
        code = self.src.code
        i = start + 1
        body: list[str] = []
        while i < len(code) and code[i] != "/":
            if code[i] == "\\" and i + 1 < len(code):
                body.append(code[i:i + 2])
                i += 2
                continue
            body.append(code[i])
            i += 1
        if i >= len(code):
            raise RubyError("unterminated regexp")
        i += 1
        flags = regex.VERSION0 | regex.MULTILINE
        while i < len(code) and code[i] in "imxo":
            flags |= {"i": regex.IGNORECASE, "m": regex.DOTALL, "x": regex.VERBOSE, "o": 0}[code[i]]
            i += 1
        text = "".join(body).replace(r"\h", "[0-9a-fA-F]").replace(r"\A", "^").replace(r"\z", "$")
        try:
            pattern = regex.compile(text, flags)
        except (regex.error, ValueError) as exc:
            raise RubyError(f"invalid regexp /{''.join(body)}/: {exc}") from None
        self.tokens.append(("regexp", pattern, start))
        return i

    def _single_quoted(self, start: int) -> int:
        code = self.src.code
        i = start + 1
        out: list[str] = []
        while i < len(code) and code[i] != "'":
            if code[i] == "\\" and i + 1 < len(code) and code[i + 1] in "'\\":
                out.append(code[i + 1])
                i += 2
                continue
            out.append(code[i])
            i += 1
        if i >= len(code):
            raise RubyError("unterminated string")
        self.tokens.append(("str", "".join(out), start))
        return i + 1

    def _double_quoted(self, start: int, close: str = '"', opener: str = "") -> int:
        """A double-quoted string; with `#{…}` it becomes an ('interp', parts) token."""
        code = self.src.code
        i = start + 1
        parts: list[Any] = []
        text: list[str] = []
        depth = 0
        escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "e": "\x1b", "s": " ", "a": "\a", "b": "\b",
                   "f": "\f", "v": "\v"}
        while i < len(code):
            c = code[i]
            if c == "\\" and i + 1 < len(code):
                following = code[i + 1]
                text.append(escapes.get(following, following))
                i += 2
                continue
            if c == "#" and code.startswith("#{", i):
                end = _closing_brace(code, i + 2)
                if end < 0:
                    raise RubyError("unterminated #{ in a string")
                if text:
                    parts.append("".join(text))
                    text = []
                parts.append(_Parser(code[i + 2:end]).parse_all())
                i = end + 1
                continue
            if opener and c == opener:
                depth += 1
            elif c == close:
                if depth == 0:
                    break
                depth -= 1
            text.append(c)
            i += 1
        else:
            raise RubyError("unterminated string")
        if text or not parts:
            parts.append("".join(text))
        if len(parts) == 1 and isinstance(parts[0], str):
            self.tokens.append(("str", parts[0], start))
        else:
            self.tokens.append(("interp", parts, start))
        return i + 1

    def _percent_string(self, start: int) -> int:
        code = self.src.code
        opener = code[start + 2] if start + 2 < len(code) else ""
        pairs = {"[": "]", "(": ")", "{": "}", "<": ">"}
        close = pairs.get(opener, opener)
        if not opener or opener.isalnum() or opener.isspace():
            raise RubyError("unsupported % literal")
        if code[start + 1] == "q":
            end = code.find(close, start + 3)
            if end < 0:
                raise RubyError("unterminated %q string")
            self.tokens.append(("str", code[start + 3:end], start))
            return end + 1
        return self._double_quoted(start + 2, close, opener if close != opener else "")

    # ---- grammar ----------------------------------------------------------------------

    def peek(self, offset: int = 0) -> tuple[str, Any, int] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "name") and token[1] in texts

    def take(self, text: str | None = None) -> tuple[str, Any, int]:
        token = self.peek()
        if token is None:
            raise RubyError(f"expected {text!r} at the end" if text else "unexpected end of the expression")
        if text is not None and not (token[0] in ("op", "name") and token[1] == text):
            raise RubyError(f"expected {text!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def parse_all(self) -> Code:
        if not self.tokens:
            return lambda scope: None
        code = self.statements()
        if self.peek() is not None:
            token = self.peek()
            assert token is not None
            raise RubyError(f"unexpected {token[1]!r}" if token[0] != "op" or token[1] not in "{|"
                            else "blocks ({ |x| … } and do … end) are not supported")
        return code

    def statements(self) -> Code:
        codes = [self.statement()]
        while self.at(";"):
            self.take()
            if self.peek() is not None:
                codes.append(self.statement())
        if len(codes) == 1:
            return codes[0]

        def run(scope: Scope) -> Any:
            value = None
            for code in codes:
                value = code(scope)
            return value

        return run

    def statement(self) -> Code:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1] == "require":
            self.take()
            lib = self.take()
            if lib[0] != "str":
                raise RubyError("require takes a library name")
            return lambda scope: True
        following = self.peek(1)
        if token is not None and token[0] == "ivar" and following is not None and following[1] == "=":
            name = token[1]
            self.pos += 2
            value = self.rescue_modifier()

            def assign(scope: Scope) -> Any:
                result = value(scope)
                scope.ivars[name] = result
                return result

            return assign
        return self.rescue_modifier()

    def rescue_modifier(self) -> Code:
        body = self.not_expression()
        if not self.at("rescue"):
            return body
        self.take()
        fallback = self.not_expression()

        def run(scope: Scope) -> Any:
            try:
                return body(scope)
            except RubyRuntimeError:
                return fallback(scope)

        return run

    def not_expression(self) -> Code:
        left = self.keyword_not()
        while self.at("and", "or"):
            op = self.take()[1]
            right = self.keyword_not()
            left = _and(left, right) if op == "and" else _or(left, right)
        return left

    def keyword_not(self) -> Code:
        if self.at("not"):
            self.take()
            inner = self.keyword_not()
            return lambda scope: not truthy(inner(scope))
        return self.ternary()

    def ternary(self) -> Code:
        cond = self.range_expr()
        if not self.at("?"):
            return cond
        self.take("?")
        then = self.ternary()
        self.take(":")
        other = self.ternary()
        return lambda scope: then(scope) if truthy(cond(scope)) else other(scope)

    def range_expr(self) -> Code:
        left = self.or_expr()
        if not self.at("..", "..."):
            return left
        exclusive = self.take()[1] == "..."
        right = self.or_expr()
        return lambda scope: _Range(left(scope), right(scope), exclusive)

    def or_expr(self) -> Code:
        left = self.and_expr()
        while self.at("||"):
            self.take()
            left = _or(left, self.and_expr())
        return left

    def and_expr(self) -> Code:
        left = self.not_op()
        while self.at("&&"):
            self.take()
            left = _and(left, self.not_op())
        return left

    def not_op(self) -> Code:
        if self.at("!"):
            self.take()
            inner = self.not_op()
            return lambda scope: not truthy(inner(scope))
        return self.equality()

    def equality(self) -> Code:
        left = self.comparison()
        while self.at("==", "!=", "=~", "!~"):
            op = self.take()[1]
            right = self.comparison()
            if op in ("==", "!="):
                left = _binary(functools.partial(_compare, op), left, right)
            elif op == "=~":
                left = _binary(_match, left, right)
            else:
                left = _binary(lambda a, b: _match(a, b) is None, left, right)
        return left

    def comparison(self) -> Code:
        left = self.additive()
        while self.at("<", "<=", ">", ">="):
            op = self.take()[1]
            left = _binary(functools.partial(_compare, op), left, self.additive())
        return left

    def additive(self) -> Code:
        left = self.multiplicative()
        while self.at("+", "-"):
            op = self.take()[1]
            left = _binary(functools.partial(_arith, op), left, self.multiplicative())
        return left

    def multiplicative(self) -> Code:
        left = self.unary()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            left = _binary(functools.partial(_arith, op), left, self.unary())
        return left

    def unary(self) -> Code:
        if self.at("-"):
            self.take()
            inner = self.unary()
            return lambda scope: _arith("-", 0, inner(scope))
        if self.at("!"):
            return self.not_op()
        return self.postfix(self.primary())

    def args(self, close: str = ")") -> list[Code]:
        values: list[Code] = []
        if not self.at(close):
            values.append(self.ternary())
            while self.at(","):
                self.take()
                values.append(self.ternary())
        self.take(close)
        return values

    def postfix(self, value: Code) -> Code:
        while True:
            if self.at("[") and not self._space_before():
                self.take()
                index_args = self.args("]")
                value = _indexer(value, index_args)
                continue
            if self.at(".", "&."):
                safe = self.take()[1] == "&."
                token = self.take()
                if token[0] not in ("name", "label"):
                    raise RubyError(f"expected a method name after '.', found {token[1]!r}")
                name = str(token[1]).rstrip(":") if token[0] == "name" else str(token[1])[:-1]
                call_args: list[Code] = []
                if self.at("(") and not self._space_before():
                    self.take()
                    call_args = self.args()
                if self.at("{") or self.at("do"):
                    raise RubyError(f"blocks ({{ |x| … }} and do … end) are not supported: .{name} with a block")
                value = self._method(value, name, call_args, safe)
                continue
            return value

    def _space_before(self) -> bool:
        token = self.peek()
        prev = self.tokens[self.pos - 1] if self.pos > 0 else None
        if token is None or prev is None:
            return False
        return self.src.code[token[2] - 1:token[2]].isspace() and prev[0] == "name"

    def _method(self, receiver: Code, name: str, args: list[Code], safe: bool) -> Code:
        if name in _REFUSED:
            raise RubyError(f"method .{name} is not supported (logpipe runs no general Ruby)")
        if name not in _METHODS:
            raise RubyError(f"method .{name} is not supported")

        def call(scope: Scope) -> Any:
            target = receiver(scope)
            if safe and target is None:
                return None
            return _call_method(name, target, [a(scope) for a in args])

        return call

    def primary(self) -> Code:
        token = self.take()
        kind, text = token[0], token[1]
        if kind == "num":
            number: Any = float(text.replace("_", "")) if any(c in text for c in ".eE") else int(text.replace("_", ""))
            return lambda scope: number
        if kind == "str":
            return lambda scope: text
        if kind == "symbol":
            symbol = text[1:]
            return lambda scope: symbol
        if kind == "regexp":
            return lambda scope: text
        if kind == "interp":
            pieces = [(p if callable(p) else None, p if not callable(p) else "") for p in text]

            def interpolate(scope: Scope) -> str:
                return "".join(to_s(code(scope)) if code is not None else literal for code, literal in pieces)

            return interpolate
        if kind == "ivar":
            return lambda scope: scope.ivars.get(text)
        if kind == "op":
            if text == "(":
                inner = self.statements()
                self.take(")")
                return inner
            if text == "[":
                items = self.args("]")
                return lambda scope: [item(scope) for item in items]
            if text == "{":
                return self._hash_literal()
            if text == "`":
                raise RubyError("backticks (commands) are not supported")
            raise RubyError(f"unexpected {text!r}")
        if kind == "label":
            raise RubyError(f"unexpected {text!r}")
        return self._name(text)

    def _hash_literal(self) -> Code:
        pairs: list[tuple[Code, Code]] = []
        while not self.at("}"):
            token = self.peek()
            if token is not None and token[0] == "label":
                self.take()
                key_text = str(token[1])[:-1]
                key: Code = functools.partial(_constant_value, key_text)
            else:
                key = self.ternary()
                self.take("=>")
            pairs.append((key, self.ternary()))
            if not self.at(","):
                break
            self.take()
        self.take("}")
        return lambda scope: {k(scope): v(scope) for k, v in pairs}

    def _name(self, name: str) -> Code:
        if name in ("nil", "true", "false"):
            constant = {"nil": None, "true": True, "false": False}[name]
            return lambda scope: constant
        if name == "record":
            return lambda scope: scope.record
        if name == "tag":
            return lambda scope: scope.tag
        if name == "time":
            return lambda scope: RubyTime(scope.time_ns)
        if name == "hostname":
            return lambda scope: scope.hostname
        if name == "tag_parts":
            return lambda scope: scope.tag_parts()
        if name == "tag_prefix":
            return lambda scope: [".".join(scope.tag_parts()[: i + 1]) for i in range(len(scope.tag_parts()))]
        if name == "tag_suffix":
            return lambda scope: [".".join(scope.tag_parts()[i:]) for i in range(len(scope.tag_parts()))]
        if name == "ENV":
            if self.at("[") and not self._space_before():
                self.take()
                (key,) = self.args("]") or [lambda scope: None]
                return lambda scope: os.environ.get(to_s(key(scope)))
            return self._constant("ENV")
        if name in ("Socket", "Time", "CGI", "JSON"):
            return self._constant(name)
        if name in _KERNEL:
            self.take("(")
            (arg,) = self.args() or [lambda scope: None]
            fn = _KERNEL[name]
            return lambda scope: fn(arg(scope))
        if name in _REFUSED or name == "require":
            raise RubyError(f"{name} is not supported (logpipe runs no general Ruby)")
        if name in ("if", "unless", "while", "until", "case", "def", "class", "module", "begin", "do", "yield"):
            raise RubyError(f"'{name}' is not supported; use the ternary `cond ? a : b`")
        raise RubyError(f"unknown name {name!r} (known: record, tag, time, tag_parts, tag_prefix, tag_suffix, "
                        "hostname, ENV, Socket, Time, CGI, JSON)")

    def _constant(self, const: str) -> Code:
        self.take(".") if self.at(".") else self.take("::")
        method = self.take()[1]
        if (const, method) not in _CONSTANT_METHODS:
            raise RubyError(f"{const}.{method} is not supported")
        args: list[Code] = []
        if self.at("(") and not self._space_before():
            self.take()
            args = self.args()
        return lambda scope: _constant_call(const, method, [a(scope) for a in args])


def _closing_brace(code: str, start: int) -> int:
    """Where the `}` that closes a `#{` or `${` opened before `start` is (-1 if none),
    skipping braces inside strings and nested braces."""
    depth = 0
    i = start
    quote: str | None = None
    while i < len(code):
        c = code[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _constant_value(value: Any, scope: Scope) -> Any:
    return value


def _binary(fn: Callable[[Any, Any], Any], left: Code, right: Code) -> Code:
    return lambda scope: fn(left(scope), right(scope))


def _or(left: Code, right: Code) -> Code:
    def run(scope: Scope) -> Any:
        value = left(scope)
        return value if truthy(value) else right(scope)

    return run


def _and(left: Code, right: Code) -> Code:
    def run(scope: Scope) -> Any:
        value = left(scope)
        return right(scope) if truthy(value) else value

    return run


def _indexer(value: Code, args: list[Code]) -> Code:
    def run(scope: Scope) -> Any:
        target = value(scope)
        return _index(target, [a(scope) for a in args])

    return run


def compile_ruby(code: str) -> Code:
    """One Ruby expression (or `;`-separated statements) as a function of a Scope."""
    try:
        return _Parser(code).parse_all()
    except RecursionError:
        raise RubyError("expression nested too deeply") from None


_PLACEHOLDER_START = "${"


def compile_ruby_template(template: str, typed: bool) -> Code:
    """A `<record>` value with `${ruby}` placeholders: the text with each expanded (Ruby's
    string interpolation), or — `typed` and the value is one placeholder — the value itself."""
    pieces: list[Code | str] = []
    i = 0
    while True:
        start = template.find(_PLACEHOLDER_START, i)
        if start < 0:
            break
        end = _closing_brace(template, start + 2)
        if end < 0:
            raise RubyError(f"unterminated ${{ in {template!r}")
        if start > i:
            pieces.append(template[i:start])
        body = template[start + 2:end]
        try:
            pieces.append(compile_ruby(body))
        except RubyError as exc:
            raise RubyError(f"${{{body}}}: {exc}") from None
        i = end + 1
    if i < len(template):
        pieces.append(template[i:])
    if typed and len(pieces) == 1 and callable(pieces[0]):
        only = pieces[0]
        return lambda scope: to_record_value(only(scope))
    if not any(callable(p) for p in pieces):
        return lambda scope: template

    def expand(scope: Scope) -> str:
        return "".join(to_s(p(scope)) if callable(p) else p for p in pieces)

    return expand
