"""Fluentd directives (`<source>`, `<filter>`, `<match>`, `<label>`, `@include`) to the model.

Two steps: a reader turns the text into a tree of `Element`s (directive name, argument,
parameters, child elements), following `@include`s; a builder maps that tree onto the
Logstash-shaped model, so routing has one implementation for both languages.

Reading (Fluentd v1 syntax):
- one `key value` per line; the value is the rest of the line, up to a `#` that follows
  whitespace (a comment). `"..."` values may span lines and take escapes (`\\n \\t \\"
  \\\\`; an unknown letter escape is kept as written); `'...'` takes only `\\'` and `\\\\`.
  A value starting with `[` or `{` is JSON when it parses (it may span lines); a one-line
  value that is not JSON stays a string.
- `#{ENV['X']}` / `#{ENV.fetch('X', 'default')}` inside "..." read the environment
  (other embedded Ruby is refused). `${X}` / `${X:default}` are substituted in every value
  for UPPER-CASE names only: lower-case `${tag}`, `${record["k"]}`, `${hostname}` are
  Fluentd placeholders that belong to the plugins.
- Lenient one-line form: `<source> type forward port 24224 </source>` is read as
  key/value pairs of whitespace-separated (or quoted) words.
- `@include PATH` (file or glob, relative to the including file; a glob matching nothing
  includes nothing) splices the file in place, at any level.

Mapping (see the module functions for the details):
- `<source>` → an input; `@type` (or the old `type`) names the plugin, `@id` becomes `id`,
  `@label` stays `@label`, `@log_level` sets the plugin's log level.
- `<filter P>` → `if tag matches P { filter }`. `<match P>`s → one `if / else if` chain
  in the output section, so the first match wins; `@type copy` with `<store>`s → one
  output per store in that branch.
- A `<filter>` written after some `<match>` only sees events no earlier match took:
  its condition is `tag matches P and not (tag matches <earlier match patterns>)`.
  That is Fluentd's flow exactly, as long as filters do not rewrite tags.
- `<label @X>` → its filters and matches run only for events whose `[@metadata][_label]`
  is "@X"; when labels exist, the top-level ones run only for events without a label.
- Subsections (`<buffer tag,time>`, `<parse>`, `<record>`, `<store>` …) become settings
  holding a dict (argument under "@args"), or a list of dicts when repeated.
"""

from __future__ import annotations

import difflib
import glob
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from logpipe.config.embedded_ruby import USE_DEFAULT, RubyError, evaluate
from logpipe.config.fluentd_compat import upgrade_v012
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
    TagMatch,
    Truthy,
    Value,
)
from logpipe.config.source import MAX_DEPTH, SourceText, substitute_env
from logpipe.errors import ConfigError, Pos

log = logging.getLogger("logpipe.config")

TOP_DIRECTIVES = ("source", "filter", "match", "label", "system")
LABEL_META = ["@metadata", "_label"]

_OPEN_TAG = re.compile(r"<([A-Za-z0-9_@.-]+)[ \t]*([^>\n]*)>")
_CLOSE_TAG = re.compile(r"</[ \t]*([A-Za-z0-9_@.-]*)[ \t]*>")
_KEY = re.compile(r"[^\s]+")
_COMMENT = re.compile(r"[ \t]#")
_WORDS = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|\S+")
_DOUBLE_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "r": "\r", "n": "\n", "t": "\t", "f": "\f", "b": "\b", "0": "\0"}


@dataclass
class Param:
    """`key value`: `value` is a BareWord (unquoted), str (quoted) or JSON data."""

    key: str
    value: Any
    key_pos: Pos
    value_pos: Pos


@dataclass
class Element:
    """`<name arg> params… children… </name>`."""

    name: str
    arg: str
    pos: Pos
    params: dict[str, Param] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)


# ---- reading ------------------------------------------------------------------------------


class Reader:
    """Reads one text into an Element, splicing `@include`d files in."""

    def __init__(self, src: SourceText, base_dir: str, stack: tuple[str, ...] = (), depth: int = 0,
                 sources: list[str] | None = None) -> None:
        self.src = src
        self.text = src.text
        self.i = 0
        self.base_dir = base_dir
        self.stack = stack
        self.depth = depth
        self.sources = sources if sources is not None else [src.name]

    def error(self, message: str, offset: int) -> ConfigError:
        return self.src.error(message, offset)

    def read(self, into: Element) -> None:
        self.block(into, None, 0)

    def block(self, into: Element, close: str | None, opener: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels", opener)
        text, n = self.text, len(self.text)
        while True:
            self.skip_blank()
            i = self.i
            if i >= n:
                if close is not None:
                    raise self.error(f"'<{close}>' opened here is never closed (expected '</{close}>')", opener)
                self.depth -= 1
                return
            if text.startswith("</", i):
                m = _CLOSE_TAG.match(text, i)
                if m is None:
                    raise self.error("malformed closing tag; expected '</name>'", i)
                name = m.group(1)
                if close is None:
                    raise self.error(f"'</{name}>' without a matching '<{name}>'", i)
                if name != close:
                    raise self.error(
                        f"expected '</{close}>' to close '<{close}>' opened at {self.src.where(opener)}, "
                        f"found '</{name}>'",
                        i,
                    )
                self.i = m.end()
                self.end_of_line("</" + name + ">")
                self.depth -= 1
                return
            if text[i] == "<":
                into.children.append(self.element(i))
                continue
            self.param(into)

    def element(self, start: int) -> Element:
        m = _OPEN_TAG.match(self.text, start)
        if m is None:
            line_end = self.line_end(start)
            if ">" not in self.text[start:line_end]:
                raise self.error("expected '>' to close this directive", start)
            raise self.error("malformed directive; expected '<name>' or '<name argument>'", start)
        element = Element(m.group(1), m.group(2).strip(), self.src.pos(start))
        self.i = m.end()
        if self.one_line_form(element, start):
            return element
        self.end_of_line(f"<{element.name}>")
        self.block(element, element.name, start)
        return element

    def one_line_form(self, element: Element, opener: int) -> bool:
        """`<source> type forward port 24224 </source>`: pairs of words up to the closing
        tag on the same line. False when the rest of the line is blank."""
        start = self.i
        end = self.line_end(start)
        line = self.text[start:end]
        cut = _COMMENT.search(line)
        if cut:
            line = line[: cut.start()]
        if not line.strip() or line.lstrip().startswith("#"):
            return False
        words = [(m.group(), start + m.start()) for m in _WORDS.finditer(line)]
        closing = f"</{element.name}>"
        closed = bool(words) and words[-1][0] == closing
        if closed:
            words.pop()
        if any(w.startswith("<") for w, _ in words):
            raise self.error(f"expected a line break after '<{element.name}>'", words[0][1])
        if len(words) % 2:
            word, offset = words[-1]
            raise self.error(f"expected a value after '{word}' (one-line form: key value key value …)", offset)
        for k in range(0, len(words), 2):
            (key, key_offset), (raw, value_offset) = words[k], words[k + 1]
            value = self.quoted_word(raw, value_offset) if raw[0] in "\"'" else BareWord(
                self.env(raw, value_offset)
            )
            element.params[key] = Param(key, value, self.src.pos(key_offset), self.src.pos(value_offset))
        self.i = end
        if not closed:
            self.block(element, element.name, opener)
        return True

    def quoted_word(self, raw: str, offset: int) -> str:
        saved = self.i
        self.i = offset
        value = self.double_quoted() if raw[0] == '"' else self.single_quoted()
        self.i = saved
        return value

    def param(self, into: Element) -> None:
        key_offset = self.i
        m = _KEY.match(self.text, key_offset)
        if m is None:
            raise self.error("expected a setting name or a directive", key_offset)
        key = m.group()
        self.i = m.end()
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1
        value_offset = self.i
        value = self.value()
        if key == "@include":
            self.include(into, str(value), value_offset if value != "" else key_offset)
            return
        if isinstance(value, str) and USE_DEFAULT in value:
            return  # Fluentd's use_default / use_nil: as if the parameter were not written
        into.params[key] = Param(key, value, self.src.pos(key_offset), self.src.pos(value_offset))

    # ---- values ----------------------------------------------------------------------

    def value(self) -> Any:
        text, i = self.text, self.i
        c = text[i] if i < len(text) else "\n"
        if c in "\r\n" or c == "#":
            self.i = self.line_end(i)
            return ""
        if c == '"':
            value: Any = self.double_quoted()
            self.end_of_line("the quoted value")
            return value
        if c == "'":
            value = self.single_quoted()
            self.end_of_line("the quoted value")
            return value
        if c in "[{":
            parsed = self.json_value(i)
            if parsed is not None:
                return parsed[0]
        end = self.line_end(i)
        line = text[i:end]
        cut = _COMMENT.search(line)
        if cut:
            line = line[: cut.start()]
        self.i = end
        return BareWord(self.env(line.rstrip(), i))

    def env(self, value: str, offset: int) -> str:
        return substitute_env(value, lambda k: offset + k, self.src, upper_only=True)

    def double_quoted(self) -> str:
        text, n = self.text, len(self.text)
        start = self.i
        chars: list[str] = []
        offsets: list[int] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n:
                following = text[i + 1]
                if following in _DOUBLE_ESCAPES:
                    chars.append(_DOUBLE_ESCAPES[following])
                    offsets.append(i)
                elif following.isalnum():
                    chars += (c, following)
                    offsets += (i, i + 1)
                else:
                    chars.append(following)
                    offsets.append(i)
                i += 2
                continue
            if c == "#" and text.startswith("#{", i):
                close = text.find("}", i)
                if close < 0:
                    raise self.error("unterminated '#{' in a quoted value", i)
                chars.append(self.ruby_env(text[i + 2 : close], i))
                offsets.append(i)
                i = close + 1
                continue
            if c == '"':
                self.i = i + 1
                return self.env_offsets("".join(chars), offsets, i)
            chars.append(c)
            offsets.append(i)
            i += 1
        raise self.error('unterminated string: the " opened here is never closed', start)

    def env_offsets(self, decoded: str, offsets: list[int], end: int) -> str:
        return substitute_env(decoded, lambda k: offsets[k] if k < len(offsets) else end, self.src, upper_only=True)

    def single_quoted(self) -> str:
        text, n = self.text, len(self.text)
        start = self.i
        chars: list[str] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n and text[i + 1] in "'\\":
                chars.append(text[i + 1])
                i += 2
                continue
            if c == "'":
                self.i = i + 1
                return self.env("".join(chars), start + 1)
            chars.append(c)
            i += 1
        raise self.error("unterminated string: the ' opened here is never closed", start)

    def ruby_env(self, code: str, offset: int) -> str:
        try:
            return evaluate(code)
        except RubyError as exc:
            raise self.error(
                f"embedded Ruby #{{{code.strip()}}} is not supported: {exc}; logpipe evaluates ENV['X'], "
                "ENV.fetch('X', 'default'), ||, +, File.join, Socket.gethostname, .to_i/.to_s, use_default", offset
            ) from None

    def json_value(self, start: int) -> tuple[Any] | None:
        """(value,) when the text at `start` is a JSON array/object (may span lines),
        None when it is not JSON and should be read as a plain string."""
        text, n = self.text, len(self.text)
        depth = 0
        i = start
        in_string = False
        while i < n:
            c = text[i]
            if in_string:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        else:
            return None
        candidate = text[start : i + 1]
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError) as exc:
            if "\n" in candidate:
                raise self.error(f"invalid JSON value: {exc}", start) from None
            return None
        after = self.line_end(i + 1)
        rest = text[i + 1 : after].strip()
        if rest and not rest.startswith("#"):
            if "\n" in candidate:
                raise self.error("unexpected text after the JSON value", i + 1)
            return None
        self.i = after
        return (self.env_in(value, start),)

    def env_in(self, value: Any, offset: int) -> Any:
        if isinstance(value, str):
            return self.env(value, offset)
        if isinstance(value, list):
            return [self.env_in(v, offset) for v in value]
        if isinstance(value, dict):
            return {k: self.env_in(v, offset) for k, v in value.items()}
        return value

    # ---- layout helpers --------------------------------------------------------------

    def line_end(self, i: int) -> int:
        end = self.text.find("\n", i)
        return len(self.text) if end < 0 else end

    def skip_blank(self) -> None:
        text, n, i = self.text, len(self.text), self.i
        while i < n:
            c = text[i]
            if c.isspace() or c == "\ufeff":
                i += 1
            elif c == "#":
                i = self.line_end(i)
            else:
                break
        self.i = i

    def end_of_line(self, after: str) -> None:
        """Only blanks or a comment may follow a directive tag or a quoted value."""
        end = self.line_end(self.i)
        rest = self.text[self.i : end].strip()
        if rest and not rest.startswith("#"):
            offset = self.i + (len(self.text[self.i : end]) - len(self.text[self.i : end].lstrip()))
            raise self.error(f"unexpected text after {after}; expected a line break", offset)
        self.i = end

    # ---- @include --------------------------------------------------------------------

    def include(self, into: Element, spec: str, offset: int) -> None:
        spec = spec.strip()
        if not spec:
            raise self.error("@include needs a file name or glob", offset)
        if "://" in spec:
            raise self.error("@include of URLs is not supported; include a file", offset)
        if "\0" in spec:
            raise self.error("@include path holds a NUL character", offset)
        path = spec if os.path.isabs(spec) else os.path.join(self.base_dir, spec)
        if glob.has_magic(path):
            try:
                files = [f for f in sorted(glob.glob(path)) if os.path.isfile(f)]
            except (OSError, ValueError) as exc:
                raise self.error(f"cannot expand @include {spec}: {exc}", offset) from None
            if not files:
                log.debug("@include %s matches no file", spec)
        else:
            if not os.path.isfile(path):
                raise self.error(f"included file not found: {path}", offset)
            files = [path]
        for name in files:
            real = os.path.realpath(name)
            if real in self.stack:
                raise self.error(f"@include cycle: {name} includes itself", offset)
            try:
                with open(name, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise self.error(f"cannot read included file {name}: {exc}", offset) from None
            self.sources.append(name)
            reader = Reader(SourceText(name, text), os.path.dirname(os.path.abspath(name)),
                            self.stack + (real,), self.depth, self.sources)
            reader.read(into)


def read_fluentd(text: str, name: str, base_dir: str | None = None, sources: list[str] | None = None) -> Element:
    """The element tree of one Fluentd text (includes spliced in). `base_dir` resolves
    relative `@include`s: the file's directory, or the working directory for a string.
    The names of the text and of every included file are appended to `sources`."""
    if base_dir is None:
        base_dir = os.path.dirname(os.path.abspath(name)) if os.path.isfile(name) else os.getcwd()
    root = Element("", "", Pos(name, 1, 1))
    stack = (os.path.realpath(name),) if os.path.isfile(name) else ()
    if sources is None:
        sources = []
    sources.append(name)
    Reader(SourceText(name, text), base_dir, stack, 0, sources).read(root)
    return root


# ---- mapping to the model -------------------------------------------------------------------


def build_fluentd(root: Element, sources: list[str]) -> PipelineConfig:
    """Map a (possibly concatenated) element tree onto the model."""
    if root.params:
        param = next(iter(root.params.values()))
        raise ConfigError(
            f"expected a directive such as <source> or <match>, found setting '{param.key}' outside any directive",
            param.key_pos,
        )
    config = PipelineConfig(sources=list(sources))
    top: list[Element] = []
    labels: dict[str, tuple[Element, list[Node], list[Node]]] = {}
    for element in _without_workers(root.children):
        name = element.name
        if name == "source":
            config.inputs.append(plugin_node(element, "input"))
        elif name in ("filter", "match"):
            top.append(element)
        elif name == "label":
            labels[_label_name(element, labels)] = (element, *_scope(element.children, element))
        elif name == "system":
            config.workers = _system_workers(element)
        else:
            raise _unknown_directive(element, TOP_DIRECTIVES)
    filters, outputs = _scope(top, None)
    _check_label_references(config.inputs + _relabels(filters) + [
        node for _, label_filters, _ in labels.values() for node in _relabels(label_filters)], labels)
    if labels or _sends_error_events(top):
        # Error events (Fluentd's emit_error_event) carry the @ERROR label: without a
        # <label @ERROR> they must reach no top-level <match>, as in Fluentd.
        filters, outputs = _labelled(filters, outputs, labels, root.pos)
    config.filters.extend(filters)
    config.outputs.extend(outputs)
    return config


#: Plugins that send events they fail on to @ERROR (rewrite_tag_filter: a rewrite loop; concat:
#: a group flushed by its timeout without timeout_label).
_ERROR_EMITTERS = frozenset({"parser", "rewrite_tag_filter", "concat", "record_transformer", "record_modifier"})
#: `<match>` plugins that are steps of the filter chain: they send events on, not out.
_MATCH_STEPS = frozenset({"relabel", "rewrite_tag_filter"})


def _sends_error_events(elements: list[Element]) -> bool:
    for element in elements:
        param = element.params.get("@type") or element.params.get("type")
        if param is not None and _plain(param.value) in _ERROR_EMITTERS:
            return True
    return False


def _relabels(nodes: list[Node]) -> list[PluginNode]:
    """The steps among a scope's filters that name a label (it must exist): relabel's
    `@label`, a rewrite rule's `label`, concat's `timeout_label`."""
    found: list[PluginNode] = []
    for node in nodes:
        if isinstance(node, PluginNode):
            if node.kind == "filter" and node.name in ("relabel", "rewrite_tag_filter", "concat"):
                found.append(node)
        else:
            for branch in node.branches:
                found.extend(_relabels(branch.body))
    return found


def _system_workers(element: Element) -> int | None:
    """`<system> workers N`: the pipeline's worker processes (logpipe/workers/settings.py). The
    other <system> settings (log level, root_dir …) come from the command line in logpipe."""
    param = element.params.get("workers")
    if param is None:
        return None
    text = str(_plain(param.value)).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"<system> workers must be a whole number of at least 1, not {text!r}", param.value_pos)
    return int(text)


def _without_workers(children: list[Element]) -> list[Element]:
    """`<worker N>` / `<worker N-M>` pin their directives to some of Fluentd's worker processes;
    one logpipe process runs them all, so their contents count as top-level directives."""
    out: list[Element] = []
    for element in children:
        if element.name != "worker":
            out.append(element)
            continue
        if not re.fullmatch(r"\s*\d+\s*(?:-\s*\d+\s*)?", element.arg or ""):
            raise ConfigError("<worker> needs a worker number or range, e.g. <worker 0> or <worker 0-3>",
                              element.pos)
        if element.params:
            param = next(iter(element.params.values()))
            raise ConfigError(f"<worker> holds directives, not settings ('{param.key}')", param.key_pos)
        log.info("<worker %s> at %s: its directives run in this process", element.arg, element.pos)
        out.extend(element.children)
    return out


def _label_name(element: Element, seen: dict[str, Any]) -> str:
    name = element.arg
    if not name or " " in name:
        raise ConfigError("'<label>' needs one name, e.g. <label @STAGING>", element.pos)
    if name in seen:
        raise ConfigError(f"label '{name}' is defined twice (first at {seen[name][0].pos})", element.pos)
    return name


def _scope(elements: list[Element], label: Element | None) -> tuple[list[Node], list[Node]]:
    """Filters and the first-match-wins output chain of one scope (top level or a label)."""
    filters: list[Node] = []
    branches: list[Branch] = []
    earlier: list[str] = []
    for element in elements:
        if element.name not in ("filter", "match"):
            where = f"inside <label {label.arg}>" if label is not None else ""
            raise _unknown_directive(element, ("filter", "match"), where)
        patterns = element.arg.split() or ["**"]
        match = TagMatch(patterns, element.pos)
        if element.name == "filter":
            condition: Expr = match
            if earlier:
                if "**" in earlier:
                    log.warning("<filter %s> at %s follows a <match **> and will never see an event",
                                element.arg, element.pos)
                condition = BoolOp("and", match, Not(TagMatch(list(earlier), element.pos), element.pos), element.pos)
            node = plugin_node(element, "filter")
            filters.append(IfNode([Branch(condition, [node], element.pos)], element.pos))
        elif _plugin_name(element) in _MATCH_STEPS:
            # Fluentd re-emits into a label (relabel) or from the top with a new tag
            # (rewrite_tag_filter): here a step at this place of the filter chain does it; the later
            # filters and matches of this scope no longer see the events it took.
            condition = match if not earlier else BoolOp(
                "and", match, Not(TagMatch(list(earlier), element.pos), element.pos), element.pos)
            if _plugin_name(element) == "relabel" and "@label" not in element.params:
                raise ConfigError("a 'relabel' match needs '@label' (the label to move events to)", element.pos)
            filters.append(IfNode([Branch(condition, [plugin_node(element, "filter")], element.pos)], element.pos))
            earlier.extend(patterns)
        else:
            branches.append(Branch(match, _match_outputs(element), element.pos))
            earlier.extend(patterns)
    outputs: list[Node] = [IfNode(branches, branches[0].pos, counts_unmatched=True)] if branches else []
    return filters, outputs


def _match_outputs(element: Element) -> list[Node]:
    """One output, or one per `<store>` of a `copy` match (fan-out)."""
    name = _plugin_name(element)
    if name != "copy":
        return [plugin_node(element, "output")]
    stores = [child for child in element.children if child.name == "store"]
    if not stores:
        raise ConfigError("a 'copy' match needs at least one <store> section", element.pos)
    ignored = [key for key in element.params if key not in ("@type", "type")]
    if ignored:
        log.debug("<match %s> at %s: copy settings %s are ignored; each <store> is its own output",
                  element.arg, element.pos, ", ".join(ignored))
    return [plugin_node(store, "output") for store in stores]


def _labelled(
    filters: list[Node], outputs: list[Node], labels: dict[str, tuple[Element, list[Node], list[Node]]], pos: Pos
) -> tuple[list[Node], list[Node]]:
    """Wrap each scope in a branch on `[@metadata][_label]`."""
    unlabelled: Expr = Not(Truthy(FieldRef(list(LABEL_META), pos), pos), pos)
    # One conditional per scope, run one after another: an event a scope moves to another
    # label (relabel, @ERROR) meets that label's filters further down.
    wrapped_filters: list[Node] = [IfNode([Branch(unlabelled, filters, pos)], pos)] if filters else []
    output_branches = [Branch(unlabelled, outputs, pos)] if outputs else []
    for name, (element, label_filters, label_outputs) in labels.items():
        test = Compare("==", FieldRef(list(LABEL_META), element.pos), Literal(name, element.pos), element.pos)
        if label_filters:
            wrapped_filters.append(IfNode([Branch(test, label_filters, element.pos)], element.pos))
        if label_outputs:
            output_branches.append(Branch(test, label_outputs, element.pos))
    wrapped_outputs: list[Node] = [IfNode(output_branches, output_branches[0].pos)] if output_branches else []
    return wrapped_filters, wrapped_outputs


def _check_label_references(nodes: list[PluginNode], labels: dict[str, Any]) -> None:
    known = ", ".join(sorted(labels)) or "none"
    for node in nodes:
        for name, pos in _label_references(node):
            # An error route needs no <label @ERROR>: without one, error events go nowhere (Fluentd).
            if name not in labels and not (name == "@ERROR" and node.name in ("rewrite_tag_filter", "concat")):
                raise ConfigError(f"unknown label '{name}'; defined labels: {known}", pos)


def _label_references(node: PluginNode) -> list[tuple[str, Pos]]:
    found: list[tuple[str, Pos]] = []
    for key in ("@label", "timeout_label"):
        written = node.settings.get(key)
        if written is not None:
            found.append((str(_plain(written.value)), written.pos))
    rules = node.settings.get("rule")
    if node.name == "rewrite_tag_filter" and rules is not None:
        sections = rules.value if isinstance(rules.value, list) else [rules.value]
        for index, section in enumerate(sections):
            if isinstance(section, dict) and section.get("label"):
                path = f"rule[{index}].label" if len(sections) > 1 else "rule.label"
                found.append((str(section["label"]), node.position_of(path)))
    return found


def _plugin_name(element: Element) -> str:
    param = element.params.get("@type") or element.params.get("type")
    if param is None:
        raise ConfigError(f"<{element.name}> needs '@type' (the plugin name)", element.pos)
    name = str(_plain(param.value)).strip()
    if not name or isinstance(param.value, (list, dict)):
        raise ConfigError("'@type' needs a plugin name", param.value_pos)
    return name


def plugin_node(element: Element, kind: str) -> PluginNode:
    """A plugin block from a directive: `@type`/`type` names it, `@id` → `id`,
    `@log_level` sets the plugin's logger level, v0.12 flat parameters move into the
    sections Fluentd 1.x converts them to (fluentd_compat), subsections become dict (or
    list-of-dict) settings.
    The node's position is where the plugin is named (the `@type` value), like the
    plugin name of a Logstash block, so "unknown plugin" points at the name."""
    name = _plugin_name(element)
    upgrade_v012(element, kind, name)
    type_key = "@type" if "@type" in element.params else "type"
    if kind == "output" and name == "secondary_file":
        raise ConfigError("secondary_file can only be used in the <secondary> section of an output",
                          element.params[type_key].value_pos)
    _rename_secondary(element)
    node = PluginNode(kind, FLUENTD_NAMES.get((kind, name), name), {}, element.params[type_key].value_pos,
                      language="fluentd", directive_arg=element.arg)
    for key, param in element.params.items():
        if key == type_key:
            continue
        target = "id" if key == "@id" else key
        node.settings[target] = Value(param.value, param.value_pos)
        node.setting_pos[target] = param.key_pos
    if kind == "output" and name == "stdout" and "codec" not in node.settings and not any(
            c.name == "format" for c in element.children):
        # Fluentd prints `time tag: {json}`, not Logstash's rubydebug.
        node.settings["codec"] = Value("fluentd_stdout", node.pos)
    for name_, group in _grouped(element.children).items():
        value: Any = _as_dict(group[0]) if len(group) == 1 else [_as_dict(g) for g in group]
        node.settings[name_] = Value(value, group[0].pos)
        node.setting_pos[name_] = group[0].pos
        _record_positions(node, name_, group)
    return node


#: Fluentd plugins whose logpipe plugin has another name (the name alone is the Logstash plugin's).
FLUENTD_NAMES = {("output", "file"): "fluent_file"}


def _rename_secondary(element: Element) -> None:
    """`<secondary> @type file` is Fluentd's out_file too."""
    for child in element.children:
        if child.name != "secondary":
            continue
        for key in ("@type", "type"):
            param = child.params.get(key)
            if param is not None and _plain(param.value) == "file":
                child.params[key] = Param(key, BareWord(FLUENTD_NAMES[("output", "file")]), param.key_pos,
                                          param.value_pos)


def _record_positions(node: PluginNode, path: str, group: list[Element]) -> None:
    """Where each parameter inside a subsection was written (`security.shared_key`,
    `server[1].host`), so a plugin's complaint about one lands on its line."""
    for index, child in enumerate(group):
        here = f"{path}[{index}]" if len(group) > 1 else path
        node.setting_pos.setdefault(here, child.pos)
        node.nested_pos.setdefault(here, child.pos)
        for key, param in child.params.items():
            node.setting_pos[f"{here}.{key}"] = param.key_pos
            node.nested_pos[f"{here}.{key}"] = param.value_pos
        for name, sub in _grouped(child.children).items():
            _record_positions(node, f"{here}.{name}", sub)


def _grouped(children: list[Element]) -> dict[str, list[Element]]:
    groups: dict[str, list[Element]] = {}
    for child in children:
        groups.setdefault(child.name, []).append(child)
    return groups


def _as_dict(element: Element) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if element.arg:
        result["@args"] = element.arg
    for key, param in element.params.items():
        result[key] = _plain(param.value)
    for name, group in _grouped(element.children).items():
        result[name] = _as_dict(group[0]) if len(group) == 1 else [_as_dict(g) for g in group]
    return result


def _plain(value: Any) -> Any:
    return value.text if isinstance(value, BareWord) else value


def _unknown_directive(element: Element, allowed: tuple[str, ...], where: str = "") -> ConfigError:
    close = difflib.get_close_matches(element.name, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean <{close[0]}>?" if close else ""
    names = ", ".join(f"<{a}>" for a in allowed)
    place = f" {where}" if where else ""
    return ConfigError(f"unknown directive <{element.name}>{place}; expected {names}{hint}", element.pos)


def parse_fluentd(text: str, name: str, base_dir: str | None = None) -> PipelineConfig:
    """Parse one Fluentd text; errors are ConfigErrors at file:line:col."""
    sources: list[str] = []
    return build_fluentd(read_fluentd(text, name, base_dir, sources), sources)
