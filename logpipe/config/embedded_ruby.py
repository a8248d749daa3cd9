"""The embedded Ruby of real Fluentd configs (`"#{…}"` in double-quoted values), evaluated
safely: exactly the forms people write, no general Ruby.

    ENV['X']  ENV["X"]  ENV.fetch('X')  ENV.fetch('X', 'default')
    'text'  "text"  42  true  false  nil  use_default  use_nil
    a || b   a + b   (…)   .to_i  .to_s  .to_f  .strip  .downcase  .upcase
    File.join(a, b, …)   Socket.gethostname   Dir.pwd

`use_default` and `use_nil` are Fluentd's: the parameter counts as not written (its default
applies). Anything else is refused with the expression named.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

USE_DEFAULT = "\0use_default\0"


class RubyError(Exception):
    """An expression outside the supported subset."""


_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")|(?P<num>-?\d+(?:\.\d+)?)|"""
                    r"""(?P<op>\|\||\+|\(|\)|\[|\]|,|\.)|(?P<name>[A-Za-z_][A-Za-z0-9_]*[?!]?))""")
_METHODS = {"to_i": lambda v: int(re.match(r"\s*-?\d*", str(v or "")).group() or 0),  # type: ignore[union-attr]
            "to_s": lambda v: "" if v is None else _text(v), "to_f": lambda v: float(v or 0),
            "strip": lambda v: str(v).strip(), "downcase": lambda v: str(v).lower(),
            "upcase": lambda v: str(v).upper(), "to_sym": lambda v: str(v)}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _unquote(token: str) -> str:
    body = token[1:-1]
    if token[0] == "'":
        return re.sub(r"\\([\\'])", r"\1", body)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _plus(left: Any, right: Any) -> Any:
    numbers = (int, float)
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, numbers) and isinstance(right, numbers) and not isinstance(left, bool):
        return left + right
    raise RubyError("'+' joins two strings or two numbers (a nil ENV value cannot be joined)")


class _Parser:
    def __init__(self, code: str) -> None:
        self.code = code
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(code):
            if code[pos:].strip() == "":
                break
            m = _TOKEN.match(code, pos)
            if m is None or m.end() == pos:
                raise RubyError(f"cannot read {code[pos:].strip()!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise RubyError(f"expected {value or 'a value'}")
        self.i += 1
        return token

    def expression(self) -> Any:
        left = self.sum()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.sum()
            left = left if left is not None and left is not False else right
        return left

    def sum(self) -> Any:
        left = self.postfix()
        while self.peek() == ("op", "+"):
            self.take()
            right = self.postfix()
            left = _plus(left, right)
        return left

    def postfix(self) -> Any:
        value = self.atom()
        while self.peek() == ("op", "."):
            self.take()
            _, method = self.take()
            if method not in _METHODS:
                raise RubyError(f"method .{method} is not supported")
            value = _METHODS[method](value)
        return value

    def args(self) -> list[Any]:
        self.take("(")
        values: list[Any] = []
        if self.peek() != ("op", ")"):
            values.append(self.expression())
            while self.peek() == ("op", ","):
                self.take()
                values.append(self.expression())
        self.take(")")
        return values

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return _unquote(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text == "(":
            value = self.expression()
            self.take(")")
            return value
        if kind != "name":
            raise RubyError(f"unexpected {text!r}")
        if text in ("use_default", "use_nil"):
            return USE_DEFAULT
        if text in ("true", "false", "nil"):
            return {"true": True, "false": False, "nil": None}[text]
        if text == "ENV":
            if self.peek() == ("op", "["):
                self.take()
                name = self.expression()
                self.take("]")
                return os.environ.get(str(name))
            self.take(".")
            _, method = self.take()
            if method != "fetch":
                raise RubyError(f"ENV.{method} is not supported (ENV['X'] or ENV.fetch)")
            args = self.args()
            if not 1 <= len(args) <= 2:
                raise RubyError("ENV.fetch takes a name and an optional default")
            if str(args[0]) in os.environ:
                return os.environ[str(args[0])]
            if len(args) == 1:
                raise RubyError(f"ENV.fetch('{args[0]}'): the variable is not set and there is no default")
            return args[1]
        if text in ("File", "Socket", "Dir"):
            self.take(".")
            _, method = self.take()
            if (text, method) == ("File", "join"):
                return os.path.join(*[_text(a) for a in self.args()])
            if (text, method) == ("Socket", "gethostname"):
                if self.peek() == ("op", "("):
                    self.args()
                return socket.gethostname()
            if (text, method) == ("Dir", "pwd"):
                return os.getcwd()
            raise RubyError(f"{text}.{method} is not supported")
        raise RubyError(f"{text!r} is not supported")


def evaluate(code: str) -> str:
    """The text `#{code}` stands for (USE_DEFAULT for use_default/use_nil); RubyError otherwise."""
    parser = _Parser(code)
    if not parser.tokens:
        return ""
    value = parser.expression()
    if parser.peek() is not None:
        raise RubyError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return value if value == USE_DEFAULT else _text(value)
