"""The one config model both front-ends (Logstash DSL, Fluentd directives) produce.

Every node keeps its source position so that errors found later (plugin settings,
grok patterns) still point at file:line:col.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logpipe.errors import Pos


@dataclass(slots=True)
class Value:
    """A setting value as written. `value` is plain Python data (str, int, float, bool,
    list, dict, None; nested lists/dicts hold plain data, not Values), or a
    `BareWord`. `pos` is where the value starts."""

    value: Any
    pos: Pos


@dataclass(frozen=True, slots=True)
class BareWord:
    """An unquoted identifier used as a value (`codec => json`, `format apache2`)."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class PluginNode:
    """One plugin block: `grok { ... }` or `<match web.**> @type stdout </match>`.

    `kind` is input|filter|output|codec. `settings` maps setting name to Value;
    `setting_pos` maps setting name to where the *name* was written (for unknown-setting
    errors). Fluentd subsections (`<buffer>`, `<parse>`, `<record>`) are settings whose
    value is a dict; repeated subsections (`<store>`) become a list of dicts.
    A `codec => json { charset => "x" }` value is a nested PluginNode of kind codec.
    `nested_pos` maps the path of a value inside a section or hash (`security.shared_key`,
    `server[1].host`) to where that value was written, and `setting_pos` holds the
    same paths for where their names were, so errors inside sections are placed too.
    """

    kind: str
    name: str
    settings: dict[str, Value]
    pos: Pos
    setting_pos: dict[str, Pos] = field(default_factory=dict)
    nested_pos: dict[str, Pos] = field(default_factory=dict)
    #: "fluentd" or "logstash" (which front-end wrote it) and the directive's argument
    #: (`<match backend.*>` → "backend.*"), for messages that show the right form.
    language: str = ""
    directive_arg: str = ""

    def position_of(self, setting: str | None, at_name: bool = False) -> Pos:
        """Where the user wrote `setting` (a name or a path into a section): its value,
        or its name with `at_name`; the nearest enclosing place a path is not recorded for."""
        path = setting
        while path:
            written = self.settings.get(path)
            if not at_name and written is not None:
                return written.pos
            if not at_name and path in self.nested_pos:
                return self.nested_pos[path]
            if path in self.setting_pos:
                return self.setting_pos[path]
            at_name = False  # an enclosing section: point at its value
            path = _parent_path(path)
        return self.pos


def _parent_path(path: str) -> str:
    """`a.b[1].c` → `a.b[1]` → `a.b` → `a` → ``."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


# ---- conditional expressions -------------------------------------------------------


@dataclass(slots=True)
class FieldRef:
    """`[a][b]` or a bare `a`; `path` is the list of keys (`["a", "b"]`; `@metadata`
    first for meta; `["@timestamp"]` for the event time)."""

    path: list[str]
    pos: Pos


@dataclass(slots=True)
class Literal:
    """A string, number, bool, array or hash literal in a condition. Strings may hold
    sprintf references (`"%{host}"`)."""

    value: Any
    pos: Pos


@dataclass(slots=True)
class RegexLiteral:
    source: str
    pos: Pos


@dataclass(slots=True)
class Compare:
    """op is one of == != < > <= >= =~ !~ in "not in"."""

    op: str
    left: Expr
    right: Expr
    pos: Pos


@dataclass(slots=True)
class BoolOp:
    """op is and|or|xor|nand; evaluated left to right like Logstash."""

    op: str
    left: Expr
    right: Expr
    pos: Pos


@dataclass(slots=True)
class Not:
    operand: Expr
    pos: Pos


@dataclass(slots=True)
class Truthy:
    """A bare value used as a condition: `if [field]` — true when present and not
    false/None/empty-string... (Logstash: present and not false/nil)."""

    operand: Expr
    pos: Pos


@dataclass(slots=True)
class TagMatch:
    """The event's tag matches one of the Fluentd-style globs (`*`, `**`, `{a,b}`).
    Produced by the Fluentd front-end for `<filter>`/`<match>` patterns."""

    patterns: list[str]
    pos: Pos


Expr = FieldRef | Literal | RegexLiteral | Compare | BoolOp | Not | Truthy | TagMatch


@dataclass(slots=True)
class Branch:
    """`condition` is None for the final `else`."""

    condition: Expr | None
    body: list[Node]
    pos: Pos


@dataclass(slots=True)
class IfNode:
    """`if / else if / else`: the first branch whose condition holds runs."""

    branches: list[Branch]
    pos: Pos
    #: A Fluentd `<match>` chain: events no branch takes are counted and warned (logpipe/unmatched.py).
    counts_unmatched: bool = False


Node = PluginNode | IfNode


@dataclass(slots=True)
class PipelineConfig:
    """The whole pipeline. Inputs have no conditionals (only PluginNodes)."""

    inputs: list[PluginNode] = field(default_factory=list)
    filters: list[Node] = field(default_factory=list)
    outputs: list[Node] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    #: Worker processes the config asks for (Fluentd's `<system> workers N`); None: not said.
    workers: int | None = None
