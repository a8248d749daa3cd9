"""The embedded-Ruby forms real Fluentd configs use, evaluated without Ruby."""

from __future__ import annotations

import os
import socket

import pytest

from logpipe.build import plain
from logpipe.config.embedded_ruby import USE_DEFAULT, RubyError, evaluate
from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LP_HOST", "es.local")
    monkeypatch.setenv("LP_PORT", "9201")
    monkeypatch.setenv("LP_EMPTY", "")
    monkeypatch.delenv("LP_UNSET", raising=False)


@pytest.mark.parametrize("code, expected", [
    ("ENV['LP_HOST']", "es.local"),
    ('ENV["LP_UNSET"]', ""),
    ("ENV['LP_UNSET'] || 'localhost'", "localhost"),
    ("ENV['LP_EMPTY'] || 'x'", ""),  # an empty string is true in Ruby
    ("ENV.fetch('LP_UNSET', 'd')", "d"),
    ("ENV.fetch('LP_PORT', '9200').to_i", "9201"),
    ("'https://' + ENV.fetch('LP_HOST') + ':' + ENV.fetch('LP_PORT') + '/api'", "https://es.local:9201/api"),
    ("ENV['LP_UNSET'] || true", "true"),
    ("File.join('/var/log', 'td-agent', 'buffer')", "/var/log/td-agent/buffer"),
    ("Socket.gethostname", socket.gethostname()),
    ("ENV['LP_UNSET'] || use_default", USE_DEFAULT),
    ("(ENV['LP_UNSET'] || '5').to_i", "5"),
])
def test_supported_forms(code: str, expected: str) -> None:
    assert evaluate(code) == expected


@pytest.mark.parametrize("code", ["system('rm -rf /')", "`id`", "ENV.keys", "File.read('/etc/passwd')",
                                  "ENV.fetch('LP_UNSET')", "1 + 'a'", "eval('1')"])
def test_anything_else_is_refused(code: str) -> None:
    with pytest.raises(RubyError):
        evaluate(code)


def test_in_a_config_use_default_drops_the_parameter_and_errors_name_the_expression() -> None:
    config = load_config_string("""
<match **>
  @type forward
  <server>
    host "#{ENV['LP_HOST'] || 'localhost'}"
    port "#{ENV['LP_PORT'] || '24224'}"
  </server>
  send_timeout "#{ENV['LP_UNSET'] || use_default}"
</match>
""")
    node = config.outputs[0].branches[0].body[0]
    settings = plain({k: v.value for k, v in node.settings.items()})
    assert settings["server"] == {"host": "es.local", "port": "9201"} and "send_timeout" not in settings
    with pytest.raises(ConfigError) as err:
        load_config_string('<source>\n  @type sample\n  tag "#{`hostname`}"\n</source>\n', "r.conf")
    assert "#{`hostname`}" in err.value.message and err.value.pos.line == 3
    assert os.environ["LP_HOST"] == "es.local"
