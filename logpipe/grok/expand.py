"""Grok expansion: `%{NAME:field:type}` references become one Oniguruma regex.

The result is still in Oniguruma syntax (the dialect the pattern library is
written in); `translate` turns the whole expansion into Python `re` syntax in one
pass, because some constructs (`(?m)` applies to the rest of its group) only make
sense on the expanded text. Every piece of output remembers which definition and
offset it came from, so a regex error found later can name the pattern at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from logpipe.errors import GrokError

#: Marker that starts the name of a group generated for a grok capture: the
#: translator recognises `(?<\x00N>` as "capture spec N" and any other name as a
#: raw named group written by a pattern author.
CAPTURE_MARK = "\x00"

CONVERTERS = ("int", "float")
_SUBNAME_CHARS = frozenset("@[]^_`:.-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789\\")
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class CaptureSpec:
    """One capture: the field name as written, its coercion, the pattern it uses."""

    field: str
    type: str | None
    pattern: str | None


@dataclass
class Expansion:
    text: str
    captures: list[CaptureSpec]
    #: (output offset, pattern name or None for the expression, offset in that text)
    origins: list[tuple[int, str | None, int]] = field(default_factory=list)
    sources: dict[str | None, str] = field(default_factory=dict)

    def locate(self, offset: int) -> tuple[str | None, int]:
        """Map an offset of `text` back to (pattern name, offset in its definition)."""
        best: tuple[str | None, int] = (None, offset)
        for start, name, src in self.origins:
            if start > offset:
                break
            best = (name, src + (offset - start))
        name, pos = best
        limit = len(self.sources.get(name, ""))
        return name, min(max(pos, 0), limit)


@dataclass(frozen=True)
class Reference:
    """A parsed `%{...}` occurrence."""

    start: int
    end: int
    name: str
    field: str | None
    type: str | None
    definition: str | None


def find_references(text: str) -> list[Reference]:
    """Every `%{NAME[:field[:type]][=definition]}` in `text`. Text that looks like
    a reference but is not one (`%{` followed by a non-name) stays literal, as in
    Logstash."""
    refs: list[Reference] = []
    i = 0
    n = len(text)
    while True:
        start = text.find("%{", i)
        if start < 0:
            return refs
        j = start + 2
        while j < n and text[j] in _NAME_CHARS:
            j += 1
        name = text[start + 2:j]
        if not name or j >= n or text[j] not in ":=}":
            i = start + 2
            continue
        sub: str | None = None
        if text[j] == ":":
            k = j + 1
            while k < n and text[k] in _SUBNAME_CHARS:
                k += 1
            sub = text[j + 1:k]
            j = k
        definition: str | None = None
        if j < n and text[j] == "=":
            depth = 0
            k = j + 1
            while k < n:
                c = text[k]
                if c == "\\":
                    k += 2
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    if depth == 0:
                        break
                    depth -= 1
                k += 1
            definition = text[j + 1:k]
            j = k
        # Like Logstash (jls-grok), anything else up to '}' is ignored: the ECS
        # library relies on it (`%{POSINT:[apache][error][proxy][error][code]?}`).
        while j < n and text[j] != "}":
            j += 1
        if j >= n:
            raise GrokError(f"unterminated reference %{{{name}", position=start, text=text)
        fld, typ = _split_sub(sub, text, start)
        refs.append(Reference(start, j + 1, name, fld, typ, definition))
        i = j + 1


def _split_sub(sub: str | None, text: str, pos: int) -> tuple[str | None, str | None]:
    if not sub:
        return None, None
    fld, _, typ = sub.partition(":")
    if typ and typ not in CONVERTERS:
        raise GrokError(
            f"unknown type ':{typ}' for field {fld!r} (grok converts to :int or :float)", position=pos, text=text
        )
    return (fld or None), (typ or None)


class Expander:
    """Expands one expression against a pattern dictionary."""

    def __init__(self, definitions: Mapping[str, str], named_captures_only: bool = True) -> None:
        self.defs = dict(definitions)
        self.named_only = named_captures_only
        self.parts: list[str] = []
        self.out_len = 0
        self.captures: list[CaptureSpec] = []
        self.origins: list[tuple[int, str | None, int]] = []
        self.sources: dict[str | None, str] = {}

    def expand(self, expression: str) -> Expansion:
        self.sources[None] = expression
        self._expand_text(expression, None, [])
        return Expansion("".join(self.parts), self.captures, self.origins, self.sources)

    def _emit(self, text: str, origin: str | None, offset: int) -> None:
        if text:
            self.origins.append((self.out_len, origin, offset))
            self.parts.append(text)
            self.out_len += len(text)

    def _expand_text(self, text: str, origin: str | None, stack: list[str]) -> None:
        refs = find_references(text) if origin is None else _refs_in_definition(origin, text)
        pos = 0
        for ref in refs:
            self._emit(text[pos:ref.start], origin, pos)
            if ref.definition is not None:
                self.defs[ref.name] = ref.definition
            body = self.defs.get(ref.name)
            if body is None:
                where = origin if origin is not None else None
                raise GrokError(f"unknown pattern %{{{ref.name}}}{suggest_pattern(ref.name, self.defs)}",
                                pattern=where, position=ref.start, text=text)
            if ref.name in stack:
                chain = " -> ".join(stack[stack.index(ref.name):] + [ref.name])
                raise GrokError(f"recursive pattern definition ({chain})", pattern=origin, position=ref.start,
                                text=text)
            fld = ref.field
            if fld is None and not self.named_only:
                fld = ref.name
            if fld is not None:
                self.captures.append(CaptureSpec(fld, ref.type, ref.name))
                self._emit(f"(?<{CAPTURE_MARK}{len(self.captures) - 1}>", origin, ref.start)
            else:
                self._emit("(?:", origin, ref.start)
            self.sources.setdefault(ref.name, body)
            self._expand_text(body, ref.name, stack + [ref.name])
            self._emit(")", origin, ref.end - 1)
            pos = ref.end
        self._emit(text[pos:], origin, pos)


_DEF_REFS: dict[tuple[str, str], list[Reference]] = {}


def _refs_in_definition(name: str, text: str) -> list[Reference]:
    """References of a library definition, parsed once per process."""
    key = (name, text)
    refs = _DEF_REFS.get(key)
    if refs is None:
        try:
            refs = find_references(text)
        except GrokError as exc:
            raise GrokError(exc.reason, pattern=name, position=exc.position, text=text) from None
        _DEF_REFS[key] = refs
    return refs


def suggest_pattern(name: str, defs: Mapping[str, str]) -> str:
    """"; did you mean %{X}?" for a close library name (`TIMESTAMP` → `TIMESTAMP_ISO8601`), else ""."""
    import difflib

    upper = name.upper()
    # A known name that extends what was written comes first (TIMESTAMP → TIMESTAMP_ISO8601), then spelling.
    close = sorted((d for d in defs if d.startswith(upper + "_")), key=len)[:1] if upper not in defs else [upper]
    close = close or difflib.get_close_matches(upper, list(defs), n=1, cutoff=0.75)
    return f"; did you mean %{{{close[0]}}}?" if close and close[0] != name else ""
