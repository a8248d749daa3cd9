"""Config messages: wrong block, well-known plugins logpipe lacks, suggestions only when close."""

from __future__ import annotations

import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.pipeline import Pipeline
from logpipe.suggest import close_name


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        Pipeline(load_config_string(text, "m.conf"))
    return err.value


def test_output_in_a_source_block_shows_the_right_form() -> None:
    err = error_of("<source backend.*>\n  type mongo\n</source>\n")
    assert err.message == "'mongo' is an output plugin, not an input: it belongs in <match backend.*>, not in <source>"
    assert (err.pos.line, err.pos.col) == (2, 8)


def test_input_in_a_match_block() -> None:
    err = error_of("<match app.**>\n  @type tail\n</match>\n")
    assert "'tail' is an input plugin, not an output: it belongs in <source>" in err.message


def test_logstash_plugin_in_the_wrong_section() -> None:
    err = error_of("input { elasticsearch { hosts => ['x'] } }\noutput { stdout {} }\n")
    assert "'elasticsearch' is an output plugin, not an input: it belongs in the output { } section" in err.message


def test_well_known_plugins_logpipe_does_not_provide() -> None:
    assert "'bigquery_insert' is a Fluentd output plugin that logpipe does not provide" in \
        error_of("<match **>\n  @type bigquery_insert\n</match>\n").message
    assert "'graphite' is a Logstash output plugin that logpipe does not provide" in \
        error_of("input { stdin {} }\noutput { graphite {} }\n").message
    assert "'detect_exceptions' is a Fluentd filter plugin" in \
        error_of("<filter **>\n  @type detect_exceptions\n</filter>\n<match **>\n  @type null\n</match>\n").message


@pytest.mark.parametrize("typo, names, expected", [
    ("time_format", ["format", "time_key"], None),
    ("tag_key", ["api_key", "tags"], None),
    ("multiline", ["line", "multiline_pattern"], None),
    ("hots", ["hosts", "port"], "hosts"),
    ("pth", ["path"], "path"),
    ("flush_intervall", ["flush_interval"], "flush_interval"),
    ("stdot", ["stdout", "stdin"], "stdout"),
])
def test_did_you_mean_only_when_close(typo: str, names: list[str], expected: str | None) -> None:
    assert close_name(typo, names) == expected


def test_unknown_setting_lists_known_settings_wrapped() -> None:
    err = error_of("<match **>\n  @type stdout\n  tag_key x\n</match>\n")
    assert "did you mean" not in err.message and "known settings:\n    " in err.message
    assert max(len(line) for line in err.message.splitlines()) <= 104
