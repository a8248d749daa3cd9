r"""The Logstash config DSL: a small lexer and a recursive-descent parser to the model.

Grammar (Logstash's own, with the leniencies noted):

    config    := section*
    section   := ("input" | "filter" | "output") "{" (plugin | if)* "}"   -- no `if` in input
    plugin    := NAME "{" (NAME "=>" value)* "}"
    value     := NAME "{" ... "}"  (nested plugin: a codec)
               | BAREWORD | STRING | NUMBER | array | hash
    array     := "[" (value ("," value)* ","?)? "]"
    hash      := "{" (key "=>" value ","?)* "}"
    if        := "if" cond "{" body "}" ("else" "if" cond "{" body "}")* ("else" "{" body "}")?
    cond      := expr (("and" | "or" | "xor" | "nand") expr)*          -- left to right
    expr      := "(" cond ")" | "!" expr | rvalue (op rvalue)?
    op        := == != < > <= >= =~ !~ in "not in"
    rvalue    := STRING | NUMBER | true | false | selector | array | REGEX
    selector  := ("[" name "]")+

Names (plugins, settings, barewords) are runs of letters, digits, `_`, `-`, `@`.

Strings: like Logstash with `config.support_escapes: false`, backslashes are kept
literally (`"\d+"` is the regex `\d+`), except that `\"` inside "..." and `\'` inside
'...' stand for the quote itself. A backslash always pairs with the next character while
scanning, so `"C:\\"` ends at its last quote (value `C:\\`; Logstash would read on).
`${VAR}` / `${VAR:default}` are replaced in string setting values (also inside arrays and
hashes), not in conditions. Repeated settings merge the way Logstash merges them: hashes
are merged, arrays extended, two different scalars become an array.

In conditions, `[...]` is a field reference unless its first element is quoted or a
number (`[status] in [200, 201]`, `[x] in ["a"]` are array literals); `[tags][0]` is a path.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from logpipe.config.model import (
    BareWord,
    BoolOp,
    Branch,
    Compare,
    Expr,
    FieldRef,
    IfNode,
    Literal,
    Node,
    Not,
    PipelineConfig,
    PluginNode,
    RegexLiteral,
    Truthy,
    Value,
)
from logpipe.config.source import MAX_DEPTH, SourceText, substitute_env
from logpipe.errors import ConfigError, Pos

SECTIONS = ("input", "filter", "output")
_BOOL_OPS = frozenset({"and", "or", "xor", "nand"})
_COMPARE_OPS = frozenset({"==", "!=", "<", ">", "<=", ">="})
_REGEX_OPS = frozenset({"=~", "!~"})
_TWO_CHAR = frozenset({"=>", "==", "!=", "<=", ">=", "=~", "!~"})
_WORD = re.compile(r"[A-Za-z0-9_@-]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d*)?")
_NUMBER_FULL = re.compile(r"-?\d+(?:\.\d*)?\Z")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@-")
_SPACE = frozenset(" \t\r\n\f\v\ufeff")


class Token:
    """kind: word | string | number | punct | eof. `value` is the decoded string for
    strings (with `offsets`, the source offset of each decoded character, for errors
    inside it), the text otherwise."""

    __slots__ = ("end", "kind", "offsets", "start", "text", "value")

    def __init__(self, kind: str, text: str, value: str, start: int, end: int, offsets: list[int] | None = None):
        self.kind = kind
        self.text = text
        self.value = value
        self.start = start
        self.end = end
        self.offsets = offsets

    def is_punct(self, text: str) -> bool:
        return self.kind == "punct" and self.text == text

    def is_word(self, text: str) -> bool:
        return self.kind == "word" and self.text == text

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of file"
        if self.kind == "string":
            text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
            return f"string {text}"
        if self.kind == "number":
            return f"number {self.text}"
        return f"'{self.text}'"


class Lexer:
    """Tokens on demand. Field selectors and regex literals are scanned raw by the parser
    (`scan_selector`, `scan_regex`) because their contents do not follow token rules."""

    def __init__(self, src: SourceText) -> None:
        self.src = src
        self.text = src.text
        self.offset = 0
        self._peeked: Token | None = None

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._lex(self._skip(self.offset))
        return self._peeked

    def next(self) -> Token:
        token = self.peek()
        self.offset = token.end
        self._peeked = None
        return token

    def reset(self, offset: int) -> None:
        self.offset = offset
        self._peeked = None

    def _skip(self, i: int) -> int:
        text, n = self.text, len(self.text)
        while i < n:
            c = text[i]
            if c in _SPACE:
                i += 1
            elif c == "#":
                j = text.find("\n", i)
                i = n if j < 0 else j + 1
            else:
                break
        return i

    def _lex(self, i: int) -> Token:
        text = self.text
        if i >= len(text):
            return Token("eof", "", "", i, i)
        c = text[i]
        if c == '"' or c == "'":
            return self._string(i)
        m = _NUMBER.match(text, i)
        if m and (m.end() >= len(text) or text[m.end()] not in _WORD_CHARS):
            return Token("number", m.group(), m.group(), i, m.end())
        m = _WORD.match(text, i)
        if m:
            return Token("word", m.group(), m.group(), i, m.end())
        two = text[i : i + 2]
        if two in _TWO_CHAR:
            return Token("punct", two, two, i, i + 2)
        return Token("punct", c, c, i, i + 1)

    def _string(self, start: int) -> Token:
        text, n = self.text, len(self.text)
        quote = text[start]
        chars: list[str] = []
        offsets: list[int] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n:
                following = text[i + 1]
                if following == quote:
                    chars.append(quote)
                    offsets.append(i)
                else:
                    chars += (c, following)
                    offsets += (i, i + 1)
                i += 2
                continue
            if c == quote:
                return Token("string", text[start : i + 1], "".join(chars), start, i + 1, offsets)
            chars.append(c)
            offsets.append(i)
            i += 1
        raise self.src.error(f"unterminated string: the {quote} opened here is never closed", start)

    def scan_selector(self, start: int) -> tuple[list[str], int] | None:
        """`[a][b]` from `start` (a `[`): the path and the offset after it, or None when
        the bracket opens an array literal instead."""
        text, n = self.text, len(self.text)
        path: list[str] = []
        i = start
        while i < n and text[i] == "[":
            k = i + 1
            while k < n and text[k] not in "[],\n":
                k += 1
            if k >= n or text[k] != "]":
                break
            name = text[i + 1 : k].strip()
            if not name or (not path and (name[0] in "\"'" or _NUMBER_FULL.match(name))):
                break
            path.append(name)
            i = k + 1
        return (path, i) if path else None

    def scan_regex(self, start: int) -> tuple[str, int]:
        r"""`/.../` from `start`: the pattern (`\/` unescaped to `/`) and the offset after it."""
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n:
                following = text[i + 1]
                out.append("/" if following == "/" else c + following)
                i += 2
                continue
            if c == "/":
                return "".join(out), i + 1
            out.append(c)
            i += 1
        raise self.src.error("unterminated regex: the '/' opened here is never closed", start)


class Parser:
    """Recursive descent over `Lexer` tokens, producing a `PipelineConfig`."""

    def __init__(self, src: SourceText) -> None:
        self.src = src
        self.lexer = Lexer(src)
        self.depth = 0
        #: Path of the value being parsed inside a setting (`ssl`, `server[1]`, `host`), and
        #: where each nested name and value was written, for errors inside hashes.
        self._path: list[str] = []
        self._nested_names: dict[str, Pos] = {}
        self._nested_values: dict[str, Pos] = {}

    # ---- helpers ---------------------------------------------------------------

    def pos(self, offset: int) -> Pos:
        return self.src.pos(offset)

    def error(self, message: str, offset: int) -> ConfigError:
        return self.src.error(message, offset)

    def expect(self, text: str, context: str) -> Token:
        token = self.lexer.peek()
        if not token.is_punct(text):
            raise self.error(f"expected '{text}' {context}, found {token.describe()}", token.start)
        return self.lexer.next()

    def enter(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels", offset)

    def unterminated(self, what: str, opener: Token) -> ConfigError:
        return self.error(f"unterminated {what}: the '{opener.text}' opened here is never closed", opener.start)

    # ---- sections and plugins --------------------------------------------------

    def parse(self) -> PipelineConfig:
        config = PipelineConfig(sources=[self.src.name])
        targets: dict[str, list[Any]] = {
            "input": config.inputs, "filter": config.filters, "output": config.outputs,
        }
        while True:
            token = self.lexer.next()
            if token.kind == "eof":
                return config
            if token.kind != "word" or token.text not in SECTIONS:
                raise self.error(_unknown_section(token), token.start)
            opener = self.expect("{", f"after section name '{token.text}'")
            targets[token.text].extend(self.body(token.text, opener, f"{token.text} section"))

    def body(self, kind: str, opener: Token, what: str) -> list[Node]:
        self.enter(opener.start)
        nodes: list[Node] = []
        while True:
            token = self.lexer.peek()
            if token.kind == "eof":
                raise self.unterminated(what, opener)
            if token.is_punct("}"):
                self.lexer.next()
                self.depth -= 1
                return nodes
            if token.is_word("if"):
                if kind == "input":
                    raise self.error("conditionals are not allowed in the input section, only plugins", token.start)
                nodes.append(self.if_node(kind))
            elif token.is_word("else"):
                raise self.error("'else' without a preceding 'if' block", token.start)
            elif token.kind in ("word", "string"):
                self.lexer.next()
                brace = self.expect("{", f"after plugin name '{token.value}'")
                nodes.append(self.plugin(kind, token, brace))
            else:
                raise self.error(
                    f"expected a plugin name, 'if' or '}}' in the {kind} section, found {token.describe()}",
                    token.start,
                )

    def plugin(self, kind: str, name: Token, opener: Token) -> PluginNode:
        self.enter(opener.start)
        node = PluginNode(kind, name.value, {}, self.pos(name.start), language="logstash")
        while True:
            token = self.lexer.peek()
            if token.kind == "eof":
                raise self.unterminated(f"{kind} '{name.value}'", opener)
            if token.is_punct("}"):
                self.lexer.next()
                self.depth -= 1
                return node
            if token.kind not in ("word", "string"):
                raise self.error(
                    f"expected a setting name or '}}' in {kind} '{name.value}', found {token.describe()}",
                    token.start,
                )
            self.lexer.next()
            arrow = self.lexer.peek()
            if not arrow.is_punct("=>"):
                hint = ""
                if arrow.is_punct("{"):
                    hint = f" (if '{token.value}' is a plugin, a '}}' is missing before it)"
                raise self.error(
                    f"expected '=>' after setting name '{token.value}', found {arrow.describe()}{hint}",
                    arrow.start,
                )
            self.lexer.next()
            start = self.lexer.peek().start
            names: dict[str, Pos] = {}
            values: dict[str, Pos] = {}
            self._path, self._nested_names, self._nested_values = [token.value], names, values
            value = Value(self.value(plain=False), self.pos(start))
            _merge_setting(node, token.value, value, self.pos(token.start))
            for path, pos in names.items():
                node.setting_pos.setdefault(path, pos)
            for path, pos in values.items():
                node.nested_pos.setdefault(path, pos)

    # ---- values ----------------------------------------------------------------

    def value(self, plain: bool, env: bool = True) -> Any:
        """A setting value. `plain` (inside arrays and hashes) turns barewords into str
        and forbids nested plugins."""
        token = self.lexer.peek()
        if token.kind == "word":
            self.lexer.next()
            if not plain and self.lexer.peek().is_punct("{"):
                return self.plugin("codec", token, self.lexer.next())
            if token.text == "true":
                return True
            if token.text == "false":
                return False
            return token.text if plain else BareWord(token.text)
        if token.kind == "string":
            self.lexer.next()
            return self.string_value(token) if env else token.value
        if token.kind == "number":
            self.lexer.next()
            return _number(token.text)
        if token.is_punct("["):
            return self.array(self.lexer.next(), env)
        if token.is_punct("{"):
            return self.hash(self.lexer.next(), env)
        hint = ""
        if token.is_punct("$"):
            hint = '; environment references must be quoted: "${VAR}"'
        elif token.is_punct("/"):
            hint = '; quote paths and patterns: "/var/log/*.log"'
        raise self.error(
            f"expected a value (string, number, bareword, array or hash), found {token.describe()}{hint}",
            token.start,
        )

    def string_value(self, token: Token) -> str:
        offsets = token.offsets or []
        end = token.end - 1
        return substitute_env(token.value, lambda i: offsets[i] if i < len(offsets) else end, self.src)

    def array(self, opener: Token, env: bool) -> list[Any]:
        self.enter(opener.start)
        items: list[Any] = []
        while True:
            token = self.lexer.peek()
            if token.kind == "eof":
                raise self.unterminated("array", opener)
            if token.is_punct("]"):
                self.lexer.next()
                self.depth -= 1
                return items
            self._path.append(f"[{len(items)}]")
            self._nested_values["".join(self._path)] = self.pos(token.start)
            items.append(self.value(plain=True, env=env))
            self._path.pop()
            token = self.lexer.peek()
            if token.is_punct(","):
                self.lexer.next()
            elif not token.is_punct("]"):
                if token.kind == "eof":
                    raise self.unterminated("array", opener)
                raise self.error(f"expected ',' or ']' in array, found {token.describe()}", token.start)

    def hash(self, opener: Token, env: bool) -> dict[str, Any]:
        self.enter(opener.start)
        items: dict[str, Any] = {}
        while True:
            token = self.lexer.peek()
            if token.kind == "eof":
                raise self.unterminated("hash", opener)
            if token.is_punct("}"):
                self.lexer.next()
                self.depth -= 1
                return items
            if token.is_punct(","):
                self.lexer.next()
                continue
            if token.kind not in ("word", "string", "number"):
                raise self.error(f"expected a hash key or '}}', found {token.describe()}", token.start)
            self.lexer.next()
            self.expect("=>", f"after hash key {token.describe()}")
            self._path.append(f".{token.value}")
            path = "".join(self._path)
            self._nested_names[path] = self.pos(token.start)
            self._nested_values[path] = self.pos(self.lexer.peek().start)
            items[token.value] = self.value(plain=True, env=env)
            self._path.pop()

    # ---- conditionals ----------------------------------------------------------

    def if_node(self, kind: str) -> IfNode:
        first = self.lexer.next()
        branches = [self.branch(kind, first, conditional=True)]
        while self.lexer.peek().is_word("else"):
            word = self.lexer.next()
            if self.lexer.peek().is_word("if"):
                branches.append(self.branch(kind, self.lexer.next(), conditional=True))
            else:
                branches.append(self.branch(kind, word, conditional=False))
                break
        return IfNode(branches, self.pos(first.start))

    def branch(self, kind: str, keyword: Token, conditional: bool) -> Branch:
        condition: Expr | None = None
        if conditional:
            if self.lexer.peek().is_punct("{"):
                raise self.error("expected a condition after 'if', found '{'", self.lexer.peek().start)
            condition = self.condition()
            opener = self.expect("{", "after the condition")
        else:
            opener = self.expect("{", "after 'else'")
        body = self.body(kind, opener, f"'{keyword.text}' block")
        return Branch(condition, body, self.pos(keyword.start))

    def condition(self) -> Expr:
        left = self.expression()
        while self.lexer.peek().kind == "word" and self.lexer.peek().text in _BOOL_OPS:
            op = self.lexer.next()
            right = self.expression()
            left = BoolOp(op.text, left, right, self.pos(op.start))
        return left

    def expression(self) -> Expr:
        token = self.lexer.peek()
        if token.is_punct("(") or token.is_punct("!"):
            return self.negatable()
        left = self.rvalue()
        op = self.lexer.peek()
        if op.kind == "punct" and op.text in _COMPARE_OPS:
            self.lexer.next()
            return Compare(op.text, left, self.rvalue(), self.pos(op.start))
        if op.kind == "punct" and op.text in _REGEX_OPS:
            self.lexer.next()
            start = self.lexer.peek()
            right = self.rvalue()
            if not isinstance(right, RegexLiteral) and not (
                isinstance(right, Literal) and isinstance(right.value, str)
            ):
                raise self.error(f"expected a regex /.../ or a string after '{op.text}'", start.start)
            return Compare(op.text, left, right, self.pos(op.start))
        if op.is_word("in"):
            self.lexer.next()
            return Compare("in", left, self.rvalue(), self.pos(op.start))
        if op.is_word("not"):
            self.lexer.next()
            follow = self.lexer.peek()
            if not follow.is_word("in"):
                raise self.error(f"expected 'in' after 'not', found {follow.describe()}", follow.start)
            self.lexer.next()
            return Compare("not in", left, self.rvalue(), self.pos(op.start))
        return Truthy(left, left.pos)

    def negatable(self) -> Expr:
        """`( cond )`, `! expr` or a bare rvalue: what `!` may apply to."""
        token = self.lexer.next()
        self.enter(token.start)
        if token.is_punct("("):
            inner = self.condition()
            close = self.lexer.peek()
            if close.kind == "eof":
                raise self.unterminated("parenthesis", token)
            if not close.is_punct(")"):
                raise self.error(
                    f"expected ')' to close the '(' at {self.src.where(token.start)}, found {close.describe()}",
                    close.start,
                )
            self.lexer.next()
            result: Expr = inner
        else:
            following = self.lexer.peek()
            if following.is_punct("(") or following.is_punct("!"):
                operand = self.negatable()
            else:
                value = self.rvalue()
                operand = Truthy(value, value.pos)
            result = Not(operand, self.pos(token.start))
        self.depth -= 1
        return result

    def rvalue(self) -> FieldRef | Literal | RegexLiteral:
        token = self.lexer.peek()
        pos = self.pos(token.start)
        if token.kind == "string":
            self.lexer.next()
            return Literal(token.value, pos)
        if token.kind == "number":
            self.lexer.next()
            return Literal(_number(token.text), pos)
        if token.is_word("true") or token.is_word("false"):
            self.lexer.next()
            return Literal(token.text == "true", pos)
        if token.is_punct("["):
            selector = self.lexer.scan_selector(token.start)
            if selector is not None:
                self.lexer.reset(selector[1])
                return FieldRef(selector[0], pos)
            return Literal(self.array(self.lexer.next(), env=False), pos)
        if token.is_punct("/"):
            source, end = self.lexer.scan_regex(token.start)
            self.lexer.reset(end)
            return RegexLiteral(source, pos)
        hint = f" (field references are written [{token.text}])" if token.kind == "word" else ""
        raise self.error(
            "expected a field reference such as [field], a string, a number, an array or a regex, "
            f"found {token.describe()}{hint}",
            token.start,
        )


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _unknown_section(token: Token) -> str:
    if token.kind == "word":
        close = difflib.get_close_matches(token.text, SECTIONS, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown section '{token.text}'; expected 'input', 'filter' or 'output'{hint}"
    return f"expected a section ('input', 'filter' or 'output'), found {token.describe()}"


def _merge_setting(node: PluginNode, name: str, value: Value, name_pos: Pos) -> None:
    """Logstash merges a setting written twice: hashes merge, arrays extend, two
    different scalars become an array (the plugin then says if that is not allowed)."""
    old = node.settings.get(name)
    if old is None:
        node.settings[name] = value
        node.setting_pos[name] = name_pos
        return
    a, b = old.value, value.value
    if isinstance(a, dict) and isinstance(b, dict):
        old.value = {**a, **b}
    elif isinstance(a, list):
        old.value = a + (b if isinstance(b, list) else [b])
    elif a != b:
        old.value = [a] + (b if isinstance(b, list) else [b])


def parse_logstash(text: str, name: str) -> PipelineConfig:
    """Parse one Logstash DSL text; errors are ConfigErrors at file:line:col."""
    return Parser(SourceText(name, text)).parse()


def parse_condition(text: str, name: str = "<condition>") -> Expr:
    """One Logstash conditional expression (`[status] >= 500 and "x" in [tags]`), as written after
    `if`: for pipelines built in code (logpipe.compose.If). Mistakes are ConfigErrors with a caret."""
    parser = Parser(SourceText(name, text))
    expr = parser.condition()
    rest = parser.lexer.peek()
    if rest.kind != "eof":
        raise parser.error(f"unexpected {rest.text!r} after the condition", rest.start)
    return expr
