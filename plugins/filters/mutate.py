"""Logstash's `mutate` filter: rename, replace, convert, gsub, split … fields.

Within one mutate block the operations always run in Logstash's fixed order, whatever order
they are written in:

    coerce → rename → update → replace → convert → gsub → uppercase → capitalize → lowercase
    → strip → split → join → merge → copy

and then, only for an event on which nothing failed, the common options (add_field,
remove_field, add_tag, remove_tag). So `rename => {"a" => "b"}` with `convert => {"b" =>
"integer"}` converts the renamed field, and `split` then `join` in one block round-trips. To run
operations in another order, use several mutate blocks.

Operation semantics follow Logstash:
- `coerce`: sets a default for a field that exists but is null.
- `rename`, `copy`, `replace`, `update`: field names and values take sprintf (`%{...}`);
  `update` only touches existing fields, `replace` creates them; values are text.
- `convert`: integer, integer_eu, float, float_eu, string, boolean. Thousands separators are
  accepted ("1,000" → 1000; "_eu" forms: "1.000,5"), integers truncate decimals ("3.9" → 3),
  booleans accept true/t/yes/y/1/1.0 and false/f/no/n/0/0.0/"" in any case. Arrays are
  converted element by element; hashes and nulls are left alone.
- `gsub`: [field, regex, replacement] triples, on strings and arrays of strings. Ruby-style
  back-references `\\1`, `\\k<name>` and `\\&`/`\\0` work in the replacement.
- `split` follows Ruby's String#split: trailing empty strings are dropped and a single space
  separator splits on runs of whitespace.
- `merge`: arrays concatenate (a string becomes a one-element array), hashes merge; merging a
  hash with a non-hash is a failure.

A failure (a value that does not convert, a merge of a hash with an array, a regex error at
run time) never stops the pipeline: the value is left as it was, the event is tagged with
`tag_on_failure` (`_mutate_error`), `self.failures` counts it, and the other operations still
run; the common add/remove options are skipped for that event, as Logstash skips them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, ClassVar

import regex as regex_module

from logpipe.fields import (
    METADATA,
    MISSING,
    TIMESTAMP,
    add_tag,
    compile_deleter,
    compile_getter,
    compile_setter,
    compile_sprintf,
    compile_text,
    delete_field,
    get_field,
    has_sprintf,
    parse_ref,
    render_value,
    runtime_ref,
    set_field,
)
from logpipe.plugin import ConfigError, Event, Filter, Setting

# A step returns True when it failed on the event.
Step = Callable[[Event], bool]
Transform = Callable[[Any, Event], Any]

_FAIL: Any = object()  # a transform could not handle the value: leave it, tag the event
_SKIP: Any = object()  # a transform does not apply to this value: leave it, no failure

ORDER = ("coerce", "rename", "update", "replace", "convert", "gsub", "uppercase", "capitalize",
         "lowercase", "strip", "split", "join", "merge", "copy")


# ---- conversions ------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0", ""})


_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?")


def _hex_float(text: str) -> float | None:
    """Logstash 8.14+ reads hexadecimal integers and floats (`0x7b`, `-0x1.edcdp6`)."""
    if not _HEX.fullmatch(text):
        return None
    try:
        return float.fromhex(text)
    except (ValueError, OverflowError):
        return None


def _int_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    text = text.strip()
    if _NUMBER.fullmatch(text):
        # Decimal, not float: "9007199254740993.0" and "9.007199254740993e+15" stay exact, as in Logstash.
        try:
            return int(Decimal(text))
        except (InvalidOperation, ValueError, OverflowError):
            return _FAIL
    hexed = _hex_float(text)
    return _FAIL if hexed is None or not math.isfinite(hexed) else int(hexed)


def _float_text(text: str) -> Any:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        hexed = _hex_float(text)
        return _FAIL if hexed is None else hexed
    return float(text)


def _scalar(convert_text: Callable[[str], Any], eu: bool, to_float: bool) -> Callable[[Any], Any]:
    def convert(v: Any) -> Any:
        cls = v.__class__
        if cls is str:
            text = v.replace(".", "").replace(",", ".") if eu else v.replace(",", "")
            return convert_text(text)
        if cls is bool:
            return float(v) if to_float else int(v)
        if cls is int:
            return float(v) if to_float else v
        if cls is float:
            if not math.isfinite(v):
                return _FAIL
            return v if to_float else int(v)
        return _FAIL

    return convert


def _to_string(v: Any) -> Any:
    return v if v.__class__ is str else render_value(v)


def _to_boolean(v: Any) -> Any:
    cls = v.__class__
    if cls is bool:
        return v
    if cls is str:
        text = v.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return _FAIL
    if cls is int or cls is float:
        if v == 1:
            return True
        if v == 0:
            return False
    return _FAIL


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": _scalar(_int_text, eu=False, to_float=False),
    "integer_eu": _scalar(_int_text, eu=True, to_float=False),
    "float": _scalar(_float_text, eu=False, to_float=True),
    "float_eu": _scalar(_float_text, eu=True, to_float=True),
    "string": _to_string,
    "boolean": _to_boolean,
}


def _convert_transform(kind: str) -> Transform:
    scalar = CONVERTERS[kind]
    lenient = kind == "boolean"  # Logstash leaves a value that is no boolean as it is, element by element

    def transform(v: Any, ev: Event) -> Any:
        if v.__class__ is list:
            out = []
            for item in v:
                if item is None or isinstance(item, (dict, list)):
                    out.append(item)
                    continue
                new = scalar(item)
                if new is _FAIL:
                    if not lenient:
                        return _FAIL
                    new = item
                out.append(new)
            return out
        if lenient:
            new = scalar(v)
            return _SKIP if new is _FAIL else new
        if isinstance(v, dict):
            return _SKIP
        return scalar(v)

    return transform


# ---- string operations ------------------------------------------------------------------------

_RUBY_SPACE = " \t\n\v\f\r\x00"


def _on_strings(fn: Callable[[str], Any]) -> Transform:
    """Apply to a string, or to each string of an array; other values are left alone."""

    def transform(v: Any, ev: Event) -> Any:
        if v.__class__ is str:
            return fn(v)
        if v.__class__ is list:
            return [fn(x) if x.__class__ is str else x for x in v]
        return _SKIP

    return transform


def ruby_split(text: str, sep: str) -> list[str]:
    """Ruby's String#split: " " splits on whitespace runs, "" into characters, and trailing
    empty strings are dropped."""
    if sep == " ":
        return text.split()
    parts = list(text) if sep == "" else text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _split_transform(sep: str) -> Transform:
    def transform(v: Any, ev: Event) -> Any:
        return ruby_split(v, sep) if v.__class__ is str else _SKIP

    return transform


def _join_element(v: Any) -> str:
    if v is None:
        return ""
    if v.__class__ is list:
        return ",".join(_join_element(x) for x in v)
    return render_value(v)


def _join_transform(sep: str) -> Transform:
    def transform(v: Any, ev: Event) -> Any:
        if v.__class__ is not list:
            return _SKIP
        return sep.join([x if x.__class__ is str else _join_element(x) for x in v])

    return transform


# ---- gsub -------------------------------------------------------------------------------------

Pattern = Any  # re.Pattern or regex.Pattern


def compile_regex(source: Any, setting: str) -> Pattern:
    """Compile with `re`; fall back to the `regex` module for Ruby/Oniguruma syntax `re` lacks
    (`(?<name>…)` before 3.12, possessive quantifiers, `\\h`). ConfigError when neither accepts it."""
    text = getattr(source, "source", source)
    if not isinstance(text, str):
        raise ConfigError(f"{setting}: regex must be a string, got {text!r}", setting=setting)
    try:
        return re.compile(text)
    except re.error as exc:
        try:
            return regex_module.compile(text, regex_module.V0)
        except regex_module.error:
            raise ConfigError(f"{setting}: invalid regex {text!r}: {exc}", setting=setting) from exc


def ruby_replacement(replacement: str, pattern: Pattern, setting: str) -> str:
    """Turn a Ruby gsub replacement into a Python template: `\\1` → `\\g<1>`, `\\k<n>` → `\\g<n>`,
    `\\0`/`\\&` → `\\g<0>`, other backslashes literal. Unknown groups are a ConfigError."""
    out: list[str] = []
    i, n = 0, len(replacement)
    while i < n:
        c = replacement[i]
        nxt = replacement[i + 1] if i + 1 < n else ""
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if nxt.isdigit():
            group: str | int = int(nxt)
            i += 2
        elif nxt == "&":
            group = 0
            i += 2
        elif nxt == "k" and replacement[i + 2:i + 3] == "<" and ">" in replacement[i + 3:]:
            end = replacement.index(">", i + 3)
            group = replacement[i + 3:end]
            i = end + 1
        elif nxt == "\\":
            out.append("\\\\")
            i += 2
            continue
        else:
            out.append("\\\\")
            i += 1
            continue
        if isinstance(group, int) and group > pattern.groups:
            raise ConfigError(f"{setting}: replacement refers to group {group}, the regex has {pattern.groups}",
                              setting=setting)
        if isinstance(group, str) and group not in pattern.groupindex:
            raise ConfigError(f"{setting}: replacement refers to unknown group {group!r}", setting=setting)
        out.append(f"\\g<{group}>")
    return "".join(out)


def _gsub_transform(pattern_src: Any, replacement: Any, setting: str) -> Transform:
    replacement = replacement if isinstance(replacement, str) else render_value(replacement)
    source = getattr(pattern_src, "source", pattern_src)
    if isinstance(source, str) and has_sprintf(source):
        pattern_of = compile_sprintf(source)
        text_of = compile_text(replacement)

        @lru_cache(maxsize=256)
        def dynamic(pattern_text: str, repl_text: str) -> tuple[Pattern, str]:
            pattern = compile_regex(pattern_text, setting)
            return pattern, ruby_replacement(repl_text, pattern, setting)

        def sub_dynamic(v: str, ev: Event) -> Any:
            try:
                pattern, template = dynamic(pattern_of(ev), text_of(ev))
            except ConfigError:
                return _FAIL
            return pattern.sub(template, v)

        return _on_strings_ev(sub_dynamic)
    pattern = compile_regex(pattern_src, setting)
    if has_sprintf(replacement):
        text_of = compile_text(replacement)
        sub = pattern.sub

        def sub_sprintf(v: str, ev: Event) -> Any:
            try:
                return sub(ruby_replacement(text_of(ev), pattern, setting), v)
            except (ConfigError, re.error, IndexError):
                return _FAIL

        return _on_strings_ev(sub_sprintf)
    template = ruby_replacement(replacement, pattern, setting)
    sub = pattern.sub
    return _on_strings(lambda v: sub(template, v))


def _on_strings_ev(fn: Callable[[str, Event], Any]) -> Transform:
    def transform(v: Any, ev: Event) -> Any:
        if v.__class__ is str:
            return fn(v, ev)
        if v.__class__ is list:
            out = [fn(x, ev) if x.__class__ is str else x for x in v]
            return _FAIL if any(x is _FAIL for x in out) else out
        return _SKIP

    return transform


# ---- step builders ----------------------------------------------------------------------------


def _value_step(ref: str, transform: Transform) -> Step:
    """Read a field, transform it, write it back. Specialised for top-level fields, the usual case."""
    path = parse_ref(ref)
    if len(path) == 1 and path[0] not in (TIMESTAMP, METADATA):
        key = path[0]

        def top_level(ev: Event) -> bool:
            rec = ev.record
            v = rec.get(key)
            if v is None:
                return False
            new = transform(v, ev)
            if new is _SKIP:
                return False
            if new is _FAIL:
                return True
            rec[key] = new
            return False

        return top_level
    get = compile_getter(path)
    put = compile_setter(path)

    def nested(ev: Event) -> bool:
        v = get(ev)
        if v is MISSING or v is None:
            return False
        new = transform(v, ev)
        if new is _SKIP:
            return False
        if new is _FAIL:
            return True
        put(ev, new)
        return False

    return nested


def _top_level_key(ref: str) -> str | None:
    path = parse_ref(ref)
    return path[0] if len(path) == 1 and path[0] not in (TIMESTAMP, METADATA) else None


def _convert_step(ref: str, kind: str) -> Step:
    """convert, with the hot case inline: a top-level digit string to an integer is one `int()`
    (the general path also handles separators, decimals, booleans and arrays)."""
    transform = _convert_transform(kind)
    key = _top_level_key(ref)
    if key is None or kind not in ("integer", "integer_eu"):
        return _value_step(ref, transform)

    def convert_int(ev: Event) -> bool:
        rec = ev.record
        v = rec.get(key)
        if v.__class__ is str:
            try:
                rec[key] = int(v)
                return False
            except ValueError:
                pass
        elif v is None:
            return False
        new = transform(v, ev)
        if new is _FAIL:
            return True
        if new is not _SKIP:
            rec[key] = new
        return False

    return convert_int


def _split_step(ref: str, sep: str) -> Step:
    """split, inline for a top-level field and an ordinary separator."""
    key = _top_level_key(ref)
    if key is None or sep in (" ", ""):
        return _value_step(ref, _split_transform(sep))

    def split(ev: Event) -> bool:
        rec = ev.record
        v = rec.get(key)
        if v.__class__ is str:
            parts = v.split(sep)
            if not parts[-1]:
                while parts and not parts[-1]:
                    parts.pop()
            rec[key] = parts
        return False

    return split


def _name(ref: str) -> Callable[[Event], str] | str:
    """A field name setting: a constant reference (validated now) or a sprintf template."""
    if has_sprintf(ref):
        return compile_sprintf(ref)
    parse_ref(ref)
    return ref


def _coerce_step(field: str, default: Any) -> Step:
    """Logstash writes the default as the text given (`=> 5` sets "5")."""
    get, put = compile_getter(field), compile_setter(field)
    default = default if isinstance(default, (str, list, dict)) else render_value(default)

    def coerce(ev: Event) -> bool:
        if get(ev) is None:
            put(ev, default)
        return False

    return coerce


def _rename_step(src: str, dst: str) -> Step:
    src_name, dst_name = _name(src), _name(dst)
    if isinstance(src_name, str) and isinstance(dst_name, str):
        if parse_ref(src_name) == parse_ref(dst_name):
            return lambda ev: False
        remove, put = compile_deleter(src_name), compile_setter(dst_name)

        def rename(ev: Event) -> bool:
            v = remove(ev)
            if v is not MISSING:
                put(ev, v)
            return False

        return rename

    def rename_dynamic(ev: Event) -> bool:
        s = src_name if isinstance(src_name, str) else runtime_ref(src_name(ev))
        d = dst_name if isinstance(dst_name, str) else runtime_ref(dst_name(ev))
        if s != d:
            v = delete_field(ev, s)
            if v is not MISSING:
                set_field(ev, d, v)
        return False

    return rename_dynamic


def _update_step(field: str, value: Any, only_existing: bool) -> Step:
    text = compile_text(value)
    name = _name(field)
    if isinstance(name, str):
        get, put = compile_getter(name), compile_setter(name)

        def update(ev: Event) -> bool:
            if not only_existing or get(ev) is not MISSING:
                put(ev, text(ev))
            return False

        return update

    def update_dynamic(ev: Event) -> bool:
        ref = name(ev)
        if not only_existing or get_field(ev, ref) is not MISSING:
            set_field(ev, ref, text(ev))
        return False

    return update_dynamic


def _as_array(v: Any) -> list[Any]:
    if v is MISSING or v is None:
        return []
    return list(v) if v.__class__ is list else [v]


def _merge_step(dest: str, added: Any) -> Step:
    get_dest, put_dest = compile_getter(dest), compile_setter(dest)
    getters = [compile_getter(a) for a in (added if isinstance(added, list) else [added])]

    def merge(ev: Event) -> bool:
        failed = False
        for get_added in getters:
            new = get_added(ev)
            if new is MISSING:
                continue
            current = get_dest(ev)
            if isinstance(current, dict) != isinstance(new, dict):
                failed = True
                continue
            if isinstance(current, dict):
                current.update(new)
            else:
                put_dest(ev, _as_array(current) + _as_array(new))
        return failed

    return merge


def _clone(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clone(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clone(x) for x in v]
    return v


def _copy_step(src: str, dst: str) -> Step:
    src_name, dst_name = _name(src), _name(dst)
    if isinstance(src_name, str) and isinstance(dst_name, str):
        get, put = compile_getter(src_name), compile_setter(dst_name)

        def copy(ev: Event) -> bool:
            v = get(ev)
            if v is not MISSING:
                put(ev, _clone(v))
            return False

        return copy

    def copy_dynamic(ev: Event) -> bool:
        s = src_name if isinstance(src_name, str) else src_name(ev)
        d = dst_name if isinstance(dst_name, str) else dst_name(ev)
        v = get_field(ev, s)
        if v is not MISSING:
            set_field(ev, d, _clone(v))
        return False

    return copy_dynamic


def _gsub_triples(value: list[Any]) -> list[tuple[Any, Any, Any]]:
    if value and all(isinstance(v, list) for v in value):
        flat = [x for triple in value for x in triple]
    else:
        flat = list(value)
    if len(flat) % 3:
        raise ConfigError(
            "gsub expects [field, regex, replacement] triples, e.g. "
            "gsub => [\"path\", \"/\", \"_\"]; got a list of " + str(len(flat)) + " items",
            setting="gsub",
        )
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


def _convert_kind(field: str, kind: Any) -> str:
    text = str(kind).strip().lower()
    if text not in CONVERTERS:
        allowed = ", ".join(CONVERTERS)
        raise ConfigError(f"convert: unknown conversion type {str(kind)!r} for field {field!r}; "
                          f"allowed: {allowed}", setting="convert")
    return text


def build_steps(params: dict[str, Any]) -> list[Step]:
    """Compile the configured operations, in Logstash's order, into per-event steps."""
    steps: list[Step] = []
    for op in ORDER:
        value = params.get(op)
        if not value:
            continue
        try:
            steps.extend(_op_steps(op, value))
        except ConfigError as exc:
            if exc.setting:
                raise
            raise ConfigError(f"{op}: {exc.message}", setting=op) from exc
    return steps


def _op_steps(op: str, value: Any) -> list[Step]:
    if op == "coerce":
        return [_coerce_step(str(f), d) for f, d in value.items()]
    if op == "rename":
        return [_rename_step(str(s), str(d)) for s, d in value.items()]
    if op in ("update", "replace"):
        return [_update_step(str(f), v, only_existing=op == "update") for f, v in value.items()]
    if op == "convert":
        return [_convert_step(str(f), _convert_kind(str(f), k)) for f, k in value.items()]
    if op == "gsub":
        return [_value_step(str(f), _gsub_transform(p, r, "gsub")) for f, p, r in _gsub_triples(value)]
    if op == "uppercase":
        return [_value_step(str(f), _on_strings(str.upper)) for f in value]
    if op == "capitalize":
        return [_value_step(str(f), _on_strings(str.capitalize)) for f in value]
    if op == "lowercase":
        return [_value_step(str(f), _on_strings(str.lower)) for f in value]
    if op == "strip":
        return [_value_step(str(f), _on_strings(lambda s: s.strip(_RUBY_SPACE))) for f in value]
    if op == "split":
        return [_split_step(str(f), str(sep)) for f, sep in value.items()]
    if op == "join":
        return [_value_step(str(f), _join_transform(str(sep))) for f, sep in value.items()]
    if op == "merge":
        return [_merge_step(str(d), a) for d, a in value.items()]
    if op == "copy":
        return [_copy_step(str(s), str(d)) for s, d in value.items()]
    raise AssertionError(op)


class MutateFilter(Filter):
    name = "mutate"
    creates_events = False
    doc = "Rename, replace, convert, gsub, split, join, merge and copy fields (Logstash's fixed order)."
    settings: ClassVar[list[Setting]] = [
        Setting("coerce", "hash", default={}, doc="field => default, for fields that exist but are null"),
        Setting("rename", "hash", default={}, doc="old field => new field"),
        Setting("update", "hash", default={}, doc="field => new value, only if the field exists (sprintf)"),
        Setting("replace", "hash", default={}, doc="field => new value, created if missing (sprintf)"),
        Setting("convert", "hash", default={},
                doc="field => integer|integer_eu|float|float_eu|string|boolean"),
        Setting("gsub", "array", default=[], doc="[field, regex, replacement] triples"),
        Setting("uppercase", "array", default=[], doc="fields to upper-case"),
        Setting("capitalize", "array", default=[], doc="fields to capitalize"),
        Setting("lowercase", "array", default=[], doc="fields to lower-case"),
        Setting("strip", "array", default=[], doc="fields to strip of surrounding whitespace"),
        Setting("split", "hash", default={}, doc="field => separator: string to array"),
        Setting("join", "hash", default={}, doc="field => separator: array to string"),
        Setting("merge", "hash", default={}, doc="destination field => field(s) merged into it"),
        Setting("copy", "hash", default={}, doc="source field => destination field (deep copy)"),
        Setting("tag_on_failure", "array", default=["_mutate_error"], doc="tags added when an operation fails"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.failures = 0
        self._steps = build_steps(self.params)
        self._failure_tags = [str(t) for t in self.params["tag_on_failure"]]

    def _failed(self, ev: Event) -> None:
        self.failures += 1
        for tag in self._failure_tags:
            add_tag(ev, tag)

    def filter(self, events: list[Event]) -> list[Event]:
        steps = self._steps
        decorate = self._decorate
        if len(steps) == 1:
            step = steps[0]
            for ev in events:
                if step(ev):
                    self._failed(ev)
                elif decorate is not None:
                    decorate(ev)
            return events
        for ev in events:
            failed = False
            for step in steps:
                if step(ev):
                    failed = True
            if failed:
                self._failed(ev)
            elif decorate is not None:
                decorate(ev)
        return events
