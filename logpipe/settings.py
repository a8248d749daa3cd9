"""Setting declarations and their validation.

A plugin declares its settings once; this module turns values as written into the
declared types and produces the error messages (unknown setting with a suggestion,
missing required setting, wrong type). Kept apart from plugin.py so the buffer
engine can declare settings without importing the plugin base classes.
"""

from __future__ import annotations

import builtins
import copy
import logging
import re
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logpipe.errors import ConfigError

if TYPE_CHECKING:
    from logpipe.base import Plugin


class PluginBlock:
    """What a plugin block in a config builds (the base of `logpipe.base.Plugin`): a
    setting's value may be one — a codec written with its own settings — and this module
    must tell it from plain data without importing the plugin classes above it. The
    plugin classes define `kind` and `name`."""


SETTING_TYPES = (
    "string", "int", "float", "number", "bool", "array", "hash", "any",
    "codec", "path", "duration", "bytes", "section",
)

#: How a secret value is shown wherever settings are printed (errors, `logpipe plugins`).
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Setting:
    """One declared setting.

    type: string | int | float | number | bool | array | hash | any | codec | path |
    duration (seconds as float; accepts 5, "5s", "250ms", "1m", "2h") | bytes (accepts
    1024, "8MB", "1g", "512k") | section (nested settings, below). `array` turns a single
    value into a one-element list; `hash` accepts Logstash's flat pair arrays
    (`["a", "b"]` → `{"a": "b"}`).

    Checks: `choices` (the value must be one of them), `min`/`max` (numbers, sizes and
    durations; inclusive). `secret` values are never echoed: errors say `<redacted>` and
    `logpipe plugins` shows no default. `example` is shown by `logpipe plugins`.
    `deprecated_alias` (and its older spelling `aliases`) are old names still accepted,
    with a warning, once per process, naming the new one. `spellings` are the same
    setting's name in the other front-end's language (`bind` for Logstash's `host`):
    accepted silently, because a config written in that language is not outdated.

    A `section` (Fluentd's `config_section`: `<security>`, `<transport tls>`, `<server>`…;
    a hash, or an array of hashes, in the Logstash DSL) declares its own `settings`; with
    `multiple=True` it may be written several times and its value is a list. Its value is
    a `SectionValue` (a dict that also reads as attributes) with defaults applied; a
    section that is not written reads as its defaults (an empty list when `multiple`).
    Fluentd's section argument (`tls` in `<transport tls>`) is `value.arg`; a section
    written as a plain string (`transport tls`) is a section with that argument.
    """

    name: str
    type: str = "string"
    default: Any = None
    required: bool = False
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    aliases: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    secret: bool = False
    example: Any = None
    deprecated_alias: tuple[str, ...] = ()
    settings: tuple[Setting, ...] = ()
    multiple: bool = False
    spellings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in SETTING_TYPES:
            raise ValueError(f"unknown setting type {self.type!r} for {self.name!r}")
        for name in ("choices", "aliases", "deprecated_alias", "settings", "spellings"):
            value = getattr(self, name)
            if isinstance(value, list):  # lists read naturally in declarations; stored frozen
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.deprecated_alias, str):
            object.__setattr__(self, "deprecated_alias", (self.deprecated_alias,))
        if self.settings and self.type != "section":
            raise ValueError(f"setting {self.name!r} declares nested settings but is not a section")

    @property
    def python_type(self) -> builtins.type:
        """The type of the attribute a plugin reads this setting from (None aside when
        there is no default): what a class annotation of that attribute must say."""
        if self.type == "section":
            return list if self.multiple else SectionValue
        return _PYTHON_TYPES.get(self.type, object)

    @property
    def old_names(self) -> tuple[str, ...]:
        """Every deprecated spelling of this setting."""
        return self.aliases + self.deprecated_alias

    def shown(self, value: Any) -> Any:
        """The value as it may be printed: secrets never are."""
        return REDACTED if self.secret and value is not None else value


def Section(  # noqa: N802 - reads as a declaration, next to Setting(...)
    name: str, settings: list[Setting], *, multiple: bool = False, doc: str = "", required: bool = False,
    deprecated_alias: tuple[str, ...] | list[str] = (), example: Any = None,
) -> Setting:
    """A section declaration: `Section("security", [Setting("shared_key", secret=True)])`."""
    return Setting(name, "section", doc=doc, required=required, settings=tuple(settings), multiple=multiple,
                   deprecated_alias=tuple(deprecated_alias), example=example)


_PYTHON_TYPES: dict[str, type] = {
    "string": str, "path": str, "int": int, "float": float, "number": float, "bool": bool,
    "array": list, "hash": dict, "duration": float, "bytes": int,
}


class SectionValue(dict[str, Any]):
    """A section's coerced settings: `section.shared_key` and `section["shared_key"]`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def arg(self) -> str | None:
        """Fluentd's section argument: `tls` in `<transport tls>`."""
        value = self.get("@args")
        return None if value is None else str(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def coerce_value(setting: Setting, value: Any) -> Any:
    """Convert a value as written into the declared type, or raise ConfigError(setting=…)."""
    kind = setting.type
    name = setting.name

    def bad(expected: str) -> ConfigError:
        got = REDACTED if setting.secret else _describe(value)
        return ConfigError(f"setting '{name}' expects {expected}, got {got}", setting=name)

    from logpipe.plugin import Plugin  # plugin.py imports this module

    if kind == "section":
        return _coerce_section(setting, value)
    if isinstance(value, Plugin) and kind not in ("codec", "any"):
        raise bad("a value, not a plugin block")
    text = str(value) if _is_text(value) else None
    if kind in ("string", "path"):
        if isinstance(value, (list, dict)) or value is None:
            raise bad("a string")
        result: Any = str(value) if not isinstance(value, bool) else ("true" if value else "false")
    elif kind == "int":
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            result = value
        elif text is not None and re.fullmatch(r"\s*-?\d+\s*", text):
            result = int(text)
        else:
            raise bad("an integer")
    elif kind in ("float", "number"):
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            result = value
        else:
            try:
                result = float(text) if text is not None else None
            except ValueError:
                result = None
            if result is None:
                raise bad("a number")
    elif kind == "bool":
        if isinstance(value, bool):
            result = value
        elif text is not None and text.lower() in ("true", "yes", "on"):
            result = True
        elif text is not None and text.lower() in ("false", "no", "off"):
            result = False
        else:
            raise bad("true or false")
    elif kind == "array":
        if isinstance(value, dict):
            raise bad("an array")
        result = list(value) if isinstance(value, (list, tuple)) else [value]
    elif kind == "hash":
        if isinstance(value, dict):
            result = dict(value)
        elif isinstance(value, list) and len(value) % 2 == 0 and all(not isinstance(v, (list, dict)) for v in value):
            result = {str(value[i]): value[i + 1] for i in range(0, len(value), 2)}
        else:
            raise bad("a hash")
    elif kind == "duration":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        else:
            m = _DURATION.match(text or "")
            if not m:
                raise bad("a duration such as 5, \"5s\", \"250ms\", \"1m\"")
            result = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    elif kind == "bytes":
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        else:
            m = _BYTES.match(text or "")
            if not m:
                raise bad("a size such as 1024, \"8MB\", \"1g\"")
            result = int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
    elif kind == "codec":  # a name (Plugin.__init__ builds it) or a codec built from a nested block
        if not (isinstance(value, str) or (isinstance(value, PluginBlock) and getattr(value, "kind", "") == "codec")):
            raise bad("a codec name such as json")
        result = value
    else:  # any
        result = value
    if setting.choices is not None and result not in setting.choices:
        allowed = ", ".join(repr(c) for c in setting.choices)
        got = REDACTED if setting.secret else _describe(value)
        raise ConfigError(f"setting '{name}' must be one of {allowed}, got {got}", setting=name)
    _check_range(setting, result)
    return result


def _check_range(setting: Setting, result: Any) -> None:
    if result is None or (setting.min is None and setting.max is None):
        return
    if not isinstance(result, (int, float)) or isinstance(result, bool):
        return
    low, high = setting.min, setting.max
    if (low is not None and result < low) or (high is not None and result > high):
        if low is not None and high is not None:
            wanted = f"between {_num(low)} and {_num(high)}"
        elif low is not None:
            wanted = "positive" if low == 1 and setting.type in ("int", "bytes") else f"at least {_num(low)}"
        else:
            assert high is not None
            wanted = f"at most {_num(high)}"
        got = REDACTED if setting.secret else _num(result)
        raise ConfigError(f"setting '{setting.name}' must be {wanted}, got {got}", setting=setting.name)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _coerce_section(setting: Setting, value: Any) -> Any:
    """A section (or, when `multiple`, every instance of it) checked against its declaration."""
    if value is None:  # not written: its defaults (its required settings are only required when it is)
        if setting.multiple:
            return []
        return SectionValue(coerce_declared(list(setting.settings), {}, f"section '{setting.name}'",
                                            setting.name, written=False))
    items = value if isinstance(value, list) else [value]
    if not setting.multiple and len(items) > 1:
        raise ConfigError(f"section '{setting.name}' may be written only once", setting=setting.name)
    out = []
    for index, item in enumerate(items):
        path = f"{setting.name}[{index}]" if setting.multiple and isinstance(value, list) else setting.name
        if isinstance(item, str):
            item = {"@args": item}
        if not isinstance(item, dict):
            raise ConfigError(f"section '{setting.name}' expects a hash of settings, got {_describe(item)}",
                              setting=path)
        out.append(_section_values(setting, item, path))
    return out if setting.multiple else out[0]


def _section_values(setting: Setting, raw: dict[str, Any], path: str) -> SectionValue:
    values = coerce_declared(list(setting.settings), raw, f"section '{setting.name}'", path)
    if "@args" in raw:
        values["@args"] = raw["@args"]
    return SectionValue(values)


def coerce_settings(cls: type[Plugin], raw: dict[str, Any]) -> dict[str, Any]:
    """Validate settings against the plugin's declaration: unknown names (with a
    suggestion), missing required ones, wrong types, ranges, sections. Returns every
    declared setting, defaults filled in."""
    common = frozenset(s.name for s in cls.common_settings)
    return coerce_declared(cls.all_settings(), raw, f"{cls.kind} '{cls.name}'", common=common)


_warned: set[tuple[str, str]] = set()


def coerce_declared(
    declared: list[Setting], raw: dict[str, Any], owner: str, path: str = "", written: bool = True,
    common: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The work of `coerce_settings` for any list of declarations: a plugin's, or a
    section's (then `path` is where the section sits, `security` or `server[1]`, and every
    error names the setting by its full path, so the loader can place it)."""
    by_name = {s.name: s for s in declared}
    alias_of = {a: s.name for s in declared for a in s.old_names}
    spelled = {a: s.name for s in declared for a in s.spellings}
    prefix = f"{path}." if path else ""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "@args" and path:
            continue
        target = spelled.get(key, key) if key not in by_name else key
        if target not in by_name and key in alias_of:
            target = alias_of[key]
            if (owner, key) not in _warned:
                _warned.add((owner, key))
                logging.getLogger("logpipe.config").warning(
                    "setting '%s' of %s is deprecated; use '%s'", key, owner, target
                )
        if target in values:
            raise ConfigError(f"setting '{key}' of {owner} is '{target}' written a second time",
                              setting=prefix + key, at_name=True)
        setting = by_name.get(target)
        if setting is None:
            raise ConfigError(_unknown_setting_message(declared, owner, key, common), setting=prefix + key,
                              at_name=True)
        try:
            values[target] = coerce_value(setting, value)
        except ConfigError as exc:
            # the name as written (it may be an alias), so the loader finds its position; a
            # section's own errors already carry the path below it
            inner = exc.setting if exc.setting and setting.type == "section" else None
            exc.setting = prefix + (key + inner[len(setting.name):] if inner else key)
            raise
    for setting in declared:
        if setting.name not in values:
            if setting.required and written:
                raise ConfigError(
                    f"{owner} requires setting '{setting.name}' ({setting.doc or setting.type})",
                    setting=path or None,
                )
            if setting.type == "section":
                values[setting.name] = coerce_value(setting, None)
                continue
            default = _fresh(setting.default)
            if default is not None and setting.type in ("bytes", "duration"):
                default = coerce_value(setting, default)
            values[setting.name] = default
    return values


def written_names(declared: list[Setting], keys: list[str]) -> dict[str, str]:
    """Declared name → the name the user wrote for it (an alias or another spelling), so
    a plugin's later complaint about a setting names what the user has to edit."""
    other = {a: s.name for s in declared for a in s.old_names + s.spellings}
    names = {s.name for s in declared}
    return {other[k]: k for k in keys if k not in names and k in other}


def _fresh(default: Any) -> Any:
    """Mutable defaults are copied so instances never share them."""
    if isinstance(default, (list, dict)):
        return copy.deepcopy(default)
    return default


def _unknown_setting_message(declared: list[Setting], owner: str, key: str,
                             common: frozenset[str] = frozenset()) -> str:
    """A typo gets "did you mean"; otherwise the plugin's own settings, then, apart, how many
    common ones every plugin of the kind takes (buffer, codec, id …), so the list stays readable."""
    from logpipe.suggest import close_name, name_list

    names = [s.name for s in declared if not s.name.startswith("@")]
    close = close_name(key, names)
    if close:
        return f"unknown setting '{key}' for {owner}; did you mean '{close}'?"
    own = [n for n in names if n not in common]
    shared = sorted(n for n in names if n in common)
    text = f"unknown setting '{key}' for {owner}; known settings:\n{name_list(own or names)}"
    if own and shared:
        kind = owner.split(" ", 1)[0]
        plugin = owner.split("'")[1] if owner.count("'") >= 2 else kind
        shown = ", ".join(shared[:6]) + (", …" if len(shared) > 6 else "")
        tail = f"and the {len(shared)} every {kind} takes ({shown}; `logpipe plugins {plugin}` lists all)"
        text += "\n" + "\n".join(textwrap.wrap(tail, width=100, initial_indent="    ", subsequent_indent="    "))
    return text


def _is_text(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if isinstance(value, PluginBlock):
        return f"a {getattr(value, 'kind', '')} block '{getattr(value, 'name', '')}'"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a hash"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(str(value)) if not isinstance(value, (int, float)) else str(value)
