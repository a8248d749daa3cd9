"""`logpipe check` messages: every error at once, Logstash plugins logpipe lacks named as such,
"did you mean" only for typos, the known-settings list split into the plugin's own and the common ones."""

from __future__ import annotations

import pytest

from logpipe.cli import main
from logpipe.suggest import close_name


def check(config: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check", "-e", config])
    return code, [line for line in capsys.readouterr().err.splitlines() if "error:" in line]


def test_every_error_is_listed_with_its_position(capsys: pytest.CaptureFixture[str]) -> None:
    code, errors = check('input { stdin { sorce => 1 } }\nfilter { grok { mach => {} }\n'
                         'if [a] =~ "(" { mutate { add_tag => "x" } } }\noutput { stdout { codec => jsno } }', capsys)
    assert code == 1
    assert [e.split(": error: ")[0] for e in errors] == ["<command line>:1:17", "<command line>:2:17",
                                                         "<command line>:3:11", "<command line>:4:28"]
    assert "did you mean 'match'?" in errors[1] and "did you mean 'json'?" in errors[3]


def test_one_error_has_no_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-e", "input { stdin { sorce => 1 } } output { stdout {} }"]) == 1
    assert "errors in the configuration" not in capsys.readouterr().err


def test_logstash_plugins_logpipe_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    _, errors = check("input { twitter {} } filter { aggregate {} } output { sns {} }", capsys)
    assert "'twitter' is a Logstash input plugin that logpipe does not provide" in errors[0]
    assert "'aggregate' is a Logstash filter plugin that logpipe does not provide" in errors[1]
    assert "'sns' is a Logstash output plugin that logpipe does not provide" in errors[2]
    _, invented = check("filter { frobnicate {} }", capsys)
    assert "unknown filter plugin 'frobnicate'; known filters:" in invented[0]


@pytest.mark.parametrize(("written", "names", "expected"), [
    ("hots", ["hosts", "host"], "hosts"), ("jsno", ["json", "line"], "json"), ("sorce", ["source"], "source"),
    ("document_type", ["document_id", "index"], None), ("templat_name", ["template_name"], "template_name"),
    ("xyz", ["hosts"], None),
])
def test_did_you_mean_only_for_typos(written: str, names: list[str], expected: str | None) -> None:
    assert close_name(written, names) == expected


def test_known_settings_are_split_into_own_and_common(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-e", 'filter { geoip { source => "ip" colour => 1 } }']) == 1
    capsys_text = [capsys.readouterr().err]
    message = capsys_text[0]
    own, _, common = message.partition(" and the ")
    assert "cache_size, database, default_database_type, ecs_compatibility, fields, source" in own
    assert "add_field" not in own and "add_field" in common
    assert "`logpipe plugins geoip` lists all" in common
