"""Logstash's `ecs_compatibility` setting, shared by the plugins whose field layout depends on it.

Logstash plugins take `disabled`, `v1` or `v8` (v8 lays fields out as v1 for every plugin here).
A plugin whose user set nothing follows the pipeline-wide default, `DEFAULT_MODE` (resolved when
the plugin is built: `logpipe.plugin.Plugin`), so inputs and filters of one pipeline agree, as
Logstash 8's `pipeline.ecs_compatibility` makes them. It is `disabled` unless
`--ecs-compatibility` or `$LOGPIPE_ECS_COMPATIBILITY` says otherwise: Logstash 8 defaults to
v8, but the configs people bring (`%{COMBINEDAPACHELOG}` then `geoip { source => "clientip" }`)
are written for the legacy names.
"""

from __future__ import annotations

import os
from typing import Any

from logpipe.settings import Setting

MODES = ("disabled", "v1", "v8")
DEFAULT_MODE = os.environ.get("LOGPIPE_ECS_COMPATIBILITY", "disabled")
if DEFAULT_MODE not in MODES:
    DEFAULT_MODE = "disabled"


def set_default_mode(mode: str) -> None:
    """Make `mode` the pipeline-wide default (the CLI's --ecs-compatibility)."""
    global DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(f"ecs_compatibility must be one of {', '.join(MODES)}, not {mode!r}")
    DEFAULT_MODE = mode


def ecs_setting(doc: str = "field layout: disabled (legacy names) or v1/v8 (ECS names)") -> Setting:
    """The declaration every ECS-aware plugin shares (None: the pipeline default)."""
    return Setting("ecs_compatibility", "string", default=None, choices=MODES, doc=doc)


def ecs_enabled(params: dict[str, Any]) -> bool:
    """True when the plugin lays fields out the ECS way (v1 or v8)."""
    return (params.get("ecs_compatibility") or DEFAULT_MODE) != "disabled"
