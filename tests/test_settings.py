"""Setting declarations: ranges, choices, secrets, deprecated names, other spellings and
sections — each checked where the user wrote it, with defaults applied."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import pytest

from logpipe.build import instantiate
from logpipe.config import load_config_string
from logpipe.config.model import PluginNode
from logpipe.errors import ConfigError
from logpipe.plugin import Input, InputContext, Section, SectionValue, Setting
from logpipe.registry import register
from logpipe.settings import REDACTED


class Demo(Input):
    name = "settings_demo"
    settings: ClassVar[list[Setting]] = [
        Setting("workers", "int", default=1, min=1, max=64),
        Setting("ratio", "float", default=0.5, min=0, max=1),
        Setting("size", "bytes", default="1k", min=1),
        Setting("token", "string", secret=True, choices=("a", "b")),
        Setting("api_key", "string", secret=True),
        Setting("limit", "int", default=5, deprecated_alias=["max_items"]),
        Setting("host", "string", default="localhost", spellings=("bind",)),
        Section("auth", [
            Setting("user", "string", required=True),
            Setting("password", "string", secret=True),
            Setting("timeout", "duration", default="5s", min=0.1),
        ]),
        Section("server", [
            Setting("host", "string", required=True),
            Setting("port", "int", default=24224, min=1, max=65535),
            Section("tls", [Setting("verify", "bool", default=True)]),
        ], multiple=True),
    ]

    async def run(self, ctx: InputContext) -> None:
        return None


register(Demo)


def _build(text: str) -> Any:
    config = load_config_string(text, "<settings>")
    node = config.inputs[0]
    assert isinstance(node, PluginNode)
    return instantiate(node)


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _build(text)
    return info.value.render()


def test_defaults_of_sections_are_applied() -> None:
    demo: Any = Demo()
    assert isinstance(demo.auth, SectionValue)
    assert demo.auth.timeout == 5.0 and demo.auth.user is None
    assert demo.server == [] and demo.size == 1024


def test_range_errors_name_the_bound() -> None:
    with pytest.raises(ConfigError, match="'workers' must be between 1 and 64, got 0") as info:
        Demo(workers=0)
    assert info.value.setting == "workers"
    with pytest.raises(ConfigError, match="'size' must be positive"):
        Demo(size=0)
    with pytest.raises(ConfigError, match="'ratio' must be between 0 and 1, got 1.5"):
        Demo(ratio=1.5)


def test_secret_values_never_appear_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        Demo(token="hunter2")
    assert "hunter2" not in info.value.render() and REDACTED in info.value.render()
    with pytest.raises(ConfigError) as info:
        Demo(api_key=["hunter2"])
    assert "hunter2" not in info.value.render()


def test_deprecated_alias_warns_once_naming_the_new_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="logpipe.config"):
        first: Any = Demo(max_items=3)
        Demo(max_items=4)
    assert first.limit == 3
    warnings = [r.getMessage() for r in caplog.records if "max_items" in r.getMessage()]
    assert warnings == ["setting 'max_items' of input 'settings_demo' is deprecated; use 'limit'"]
    assert first.setting_name("limit") == "max_items"


def test_spellings_are_silent_and_clash_with_the_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="logpipe.config"):
        demo: Any = Demo(bind="127.0.0.1")
    assert demo.host == "127.0.0.1" and not caplog.records
    with pytest.raises(ConfigError, match="written a second time"):
        Demo(bind="a", host="b")


def test_fluentd_sections_are_typed_and_repeatable() -> None:
    demo = _build(
        "<source>\n  @type settings_demo\n  <auth>\n    user bob\n    timeout 250ms\n  </auth>\n"
        "  <server>\n    host a\n  </server>\n  <server>\n    host b\n    port 7000\n"
        "    <tls>\n      verify false\n    </tls>\n  </server>\n</source>\n"
    )
    assert demo.auth.user == "bob" and demo.auth.timeout == 0.25
    assert [(s.host, s.port, s.tls.verify) for s in demo.server] == [("a", 24224, True), ("b", 7000, False)]


def test_logstash_sections_are_hashes_or_arrays_of_hashes() -> None:
    demo = _build('input { settings_demo { auth => { user => "x" } server => [{ host => "a" }, { host => "b" }] } }')
    assert demo.auth.user == "x" and [s.host for s in demo.server] == ["a", "b"]


def test_errors_inside_a_fluentd_section_point_at_the_line() -> None:
    text = ("<source>\n  @type settings_demo\n  <server>\n    host a\n  </server>\n  <server>\n"
            "    host b\n    port 99999\n  </server>\n</source>\n")
    rendered = _error(text)
    assert rendered.startswith("<settings>:8:10: error: setting 'port' must be between 1 and 65535"), rendered
    rendered = _error("<source>\n  @type settings_demo\n  <auth>\n    usr bob\n  </auth>\n</source>\n")
    assert rendered.startswith("<settings>:4:5: error: unknown setting 'usr' for section 'auth'; did you mean 'user'?")
    rendered = _error("<source>\n  @type settings_demo\n  <auth>\n    password x\n  </auth>\n</source>\n")
    assert rendered.startswith("<settings>:3:3: error: section 'auth' requires setting 'user'")


def test_errors_inside_a_logstash_hash_point_at_the_value() -> None:
    text = 'input {\n  settings_demo {\n    server => [{ host => "a" }, { host => "b" port => 0 }]\n  }\n}\n'
    rendered = _error(text)
    assert rendered.startswith("<settings>:3:55: error: setting 'port' must be between 1 and 65535, got 0"), rendered
    rendered = _error('input { settings_demo { auth => { user => "u" timeout => "soon" } } }')
    assert rendered.startswith("<settings>:1:58: error: setting 'timeout' expects a duration"), rendered


def test_a_single_section_may_not_repeat() -> None:
    with pytest.raises(ConfigError, match="section 'auth' may be written only once"):
        Demo(auth=[{"user": "a"}, {"user": "b"}])
