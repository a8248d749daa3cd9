"""Plugin-setting mistakes found while building plugins (`logpipe.build.instantiate`) are
ConfigErrors that point at the setting as written, with the line and a caret — never a
traceback and never just the plugin's name when the setting is known."""

from __future__ import annotations

import pytest

from logpipe.build import Built, compile_outputs, instantiate
from logpipe.config import load_config_string
from logpipe.config.model import PluginNode
from logpipe.errors import ConfigError


def _build_all(text: str) -> None:
    config = load_config_string(text, "<plugin errors>")
    for node in [*config.inputs, *config.filters, *config.outputs]:
        assert isinstance(node, PluginNode)
        instantiate(node)


@pytest.mark.parametrize(
    ("line", "col", "fragment"),
    [
        ('stdin { codec => jsno }', 18, "unknown codec plugin 'jsno'; did you mean 'json'?"),
        ('stdin { codec => json codec => line }', 18, "setting 'codec' expects a codec name such as json"),
        ('stdin { codec => 5 }', 18, "setting 'codec' expects a codec name such as json, got 5"),
        ('stdin { tag => json { } }', 16, "setting 'tag' expects a value, not a plugin block"),
        ('beats { port => 0 ssl => "maybe" }', 26, "setting 'ssl_enabled' expects true or false"),
    ],
)
def test_input_setting_errors_point_at_the_value(line: str, col: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _build_all(f"input {{\n{line}\n}}\n")
    rendered = info.value.render().splitlines()
    assert rendered[0].startswith(f"<plugin errors>:2:{col}: error: "), rendered[0]
    assert fragment in rendered[0]
    assert rendered[1].strip() == line
    assert rendered[2].index("^") == rendered[1].index(line) + col - 1


@pytest.mark.parametrize(
    ("block", "setting"),
    [
        ('drop { add_field => { "[a" => "x" } }', "add_field"),
        ('drop { remove_field => ["[a"] }', "remove_field"),
        ('drop { match => "/(?i)web/" }', "match"),
        ('drop { match_tag => ["/(x/"] }', "match_tag"),
    ],
)
def test_filter_common_option_errors_point_at_the_option(block: str, setting: str) -> None:
    text = f"filter {{\n  {block}\n}}\n"
    with pytest.raises(ConfigError) as info:
        _build_all(text)
    err = info.value
    assert err.pos is not None and err.pos.line == 2
    assert err.pos.col == block.index(setting) + len(setting) + len(" => ") + 3  # the value, after 2 spaces
    assert "^" in err.render()


def test_buffer_mistakes_are_found_at_build_time_with_a_position() -> None:
    # Before, these surfaced only when the buffer engine started: `logpipe check` said OK.
    with pytest.raises(ConfigError) as info:
        _build_all('output {\n  stdout { buffer => "disk" }\n}\n')
    assert info.value.pos is not None and (info.value.pos.line, info.value.pos.col) == (2, 22)
    fluentd = "<match **>\n  @type stdout\n  <buffer>\n    flush_interval soon\n  </buffer>\n</match>\n"
    config = load_config_string(fluentd, "<fluentd buffer>")
    with pytest.raises(ConfigError, match="flush_interval") as info:
        compile_outputs(config.outputs, Built([], [], []))
    assert info.value.pos is not None and info.value.pos.line == 3
    assert "<buffer>" in info.value.render()
