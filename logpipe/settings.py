"""Setting declarations and their validation.

A plugin declares its settings once; this module turns values as written into the
declared types and produces the error messages (unknown setting with a suggestion,
missing required setting, wrong type). Kept apart from plugin.py so the buffer
engine can declare settings without importing the plugin base classes.
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logpipe.errors import ConfigError

if TYPE_CHECKING:
    from logpipe.plugin import Plugin

SETTING_TYPES = (
    "string", "int", "float", "number", "bool", "array", "hash", "any",
    "codec", "path", "duration", "bytes",
)

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Setting:
    """One declared setting.

    type: string | int | float | number | bool | array | hash | any | codec | path |
    duration (seconds as float; accepts 5, "5s", "250ms", "1m", "2h") | bytes (accepts
    1024, "8MB", "1g", "512k"). `array` turns a single value into a one-element list;
    `hash` accepts Logstash's flat pair arrays (`["a", "b"]` → `{"a": "b"}`).
    `aliases` are older names accepted with a deprecation warning.
    """

    name: str
    type: str = "string"
    default: Any = None
    required: bool = False
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in SETTING_TYPES:
            raise ValueError(f"unknown setting type {self.type!r} for {self.name!r}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def coerce_value(setting: Setting, value: Any) -> Any:
    """Convert a value as written into the declared type, or raise ConfigError(setting=…)."""
    kind = setting.type
    name = setting.name

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"setting '{name}' expects {expected}, got {_describe(value)}", setting=name)

    from logpipe.plugin import Codec, Plugin  # plugin.py imports this module

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
        if not isinstance(value, (str, Codec)):
            raise bad("a codec name such as json")
        result = value
    else:  # any
        result = value
    if setting.choices is not None and result not in setting.choices:
        allowed = ", ".join(repr(c) for c in setting.choices)
        raise ConfigError(f"setting '{name}' must be one of {allowed}, got {_describe(value)}", setting=name)
    return result


def coerce_settings(cls: type[Plugin], raw: dict[str, Any]) -> dict[str, Any]:
    """Validate settings against the plugin's declaration: unknown names (with a
    suggestion), missing required ones, wrong types. Returns every declared setting,
    defaults filled in."""
    declared = cls.all_settings()
    by_name = {s.name: s for s in declared}
    alias_of = {a: s.name for s in declared for a in s.aliases}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        target = key
        if key not in by_name and key in alias_of:
            target = alias_of[key]
            logging.getLogger("logpipe.config").warning(
                "setting '%s' of %s '%s' is deprecated; use '%s'", key, cls.kind, cls.name, target
            )
        setting = by_name.get(target)
        if setting is None:
            raise ConfigError(_unknown_setting_message(cls, key), setting=key, at_name=True)
        try:
            values[target] = coerce_value(setting, value)
        except ConfigError as exc:
            exc.setting = key  # the name as written (it may be an alias), so the loader finds its position
            raise
    for setting in declared:
        if setting.name not in values:
            if setting.required:
                raise ConfigError(
                    f"{cls.kind} '{cls.name}' requires setting '{setting.name}' ({setting.doc or setting.type})"
                )
            default = _fresh(setting.default)
            if default is not None and setting.type in ("bytes", "duration"):
                default = coerce_value(setting, default)
            values[setting.name] = default
    return values


def _fresh(default: Any) -> Any:
    """Mutable defaults are copied so instances never share them."""
    if isinstance(default, (list, dict)):
        return copy.deepcopy(default)
    return default


def _unknown_setting_message(cls: type[Plugin], key: str) -> str:
    names = [s.name for s in cls.all_settings()]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known settings: {', '.join(sorted(names))}"
    return f"unknown setting '{key}' for {cls.kind} '{cls.name}'{hint}"


def _is_text(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    from logpipe.plugin import Plugin

    if isinstance(value, Plugin):
        return f"a {value.kind} block '{value.name}'"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a hash"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(str(value)) if not isinstance(value, (int, float)) else str(value)
