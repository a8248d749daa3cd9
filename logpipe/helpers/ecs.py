"""Logstash's `ecs_compatibility` setting, shared by the plugins whose field layout depends on it.

Logstash plugins take `disabled`, `v1` or `v8` (v8 lays fields out as v1 for every plugin here).
A plugin whose user set nothing follows the pipeline-wide default, `DEFAULT_MODE`; it is
`disabled` today so that new plugins agree with grok's legacy default in the same pipeline.
"""

from __future__ import annotations

from typing import Any

from logpipe.settings import Setting

MODES = ("disabled", "v1", "v8")
DEFAULT_MODE = "disabled"


def ecs_setting(doc: str = "field layout: disabled (legacy names) or v1/v8 (ECS names)") -> Setting:
    """The declaration every ECS-aware plugin shares (None: the pipeline default)."""
    return Setting("ecs_compatibility", "string", default=None, choices=MODES, doc=doc)


def ecs_enabled(params: dict[str, Any]) -> bool:
    """True when the plugin lays fields out the ECS way (v1 or v8)."""
    return (params.get("ecs_compatibility") or DEFAULT_MODE) != "disabled"
