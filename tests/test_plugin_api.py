"""The plugin author's single import, the error tree, and errors placed after construction."""

from __future__ import annotations

import socket

import pytest

import logpipe.plugin as api
from logpipe import errors
from logpipe.build import instantiate
from logpipe.config import load_config_string
from logpipe.config.model import PluginNode
from logpipe.grok.errors import GrokError as OldGrokError
from logpipe.grok.errors import GrokTimeout as OldGrokTimeout
from logpipe.helpers.server import ProtocolError as OldProtocolError


def test_one_import_brings_the_whole_api() -> None:
    for name in ("Input", "Filter", "Output", "Codec", "Setting", "Section", "ConfigError", "Event",
                 "compile_getter", "compile_sprintf", "ServerInput", "TlsServer", "TlsClient", "Timers"):
        assert hasattr(api, name), name
    assert set(api.__all__) <= set(dir(api))


def test_every_error_is_a_logpipe_error_and_old_names_still_import() -> None:
    for cls in (errors.ConfigError, errors.GrokError, errors.GrokTimeout, errors.BufferOverflowError,
                errors.PluginError, errors.RetryableError, errors.ProtocolError):
        assert issubclass(cls, errors.LogpipeError), cls
    assert OldGrokError is errors.GrokError and OldGrokTimeout is errors.GrokTimeout
    assert OldProtocolError is errors.ProtocolError and api.RetryableError is errors.RetryableError
    for name in ("ConfigError", "GrokError", "PluginError", "RetryableError", "ProtocolError"):
        assert name in (errors.__doc__ or ""), name


async def test_an_error_raised_at_start_points_at_its_setting() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = load_config_string(f"input {{\n  beats {{\n    host => \"127.0.0.1\"\n    port => {port}\n  }}\n}}\n",
                                    "<start>")
        node = config.inputs[0]
        assert isinstance(node, PluginNode)
        plugin = instantiate(node)
        with pytest.raises(errors.ConfigError) as info:
            await plugin.lifecycle_start()
    assert info.value.render().startswith("<start>:4:13: error: cannot listen on 127.0.0.1:"), info.value.render()


def test_attribute_annotations_agree_with_the_declarations() -> None:
    """Typed plugins annotate the attributes their settings become; the declaration is the
    truth, so an annotation that says otherwise is a bug mypy cannot see."""
    import types
    import typing
    from importlib.metadata import entry_points

    checked = 0
    for ep in entry_points(group="logpipe.plugins"):
        cls = ep.load()
        hints = typing.get_type_hints(cls)
        for setting in cls.all_settings():
            hint = hints.get(setting.name.lstrip("@"))
            if hint is None or setting.type in ("any", "codec") or typing.get_origin(hint) is typing.ClassVar:
                continue  # a ClassVar of that name is the class's own (`name`), not the setting
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            allowed = set(typing.get_args(hint)) if union else {hint}
            origins = {typing.get_origin(a) or a for a in allowed}
            wanted = setting.python_type
            assert wanted in origins or (wanted is float and int in origins and float in origins), (
                f"{ep.name}: {setting.name} is declared {setting.type} but annotated {hint}")
            checked += 1
    assert checked > 30


def test_a_setting_cannot_replace_the_plugins_own_name() -> None:
    """The cef codec once declared Logstash's `name` (the CEF event name) and became a codec called
    "Logstash"; such a declaration is refused, and cef takes `name` as a spelling of `event_name`."""

    class Named(api.Filter):
        name = "named"
        settings = [api.Setting("name", "string", default="x")]

    with pytest.raises(TypeError, match="would replace the plugin's own 'name'"):
        Named()
