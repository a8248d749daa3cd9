"""`logpipe test`: config unit tests, run offline through the filter section."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from logpipe.configtest import run_test_file
from logpipe.errors import ConfigError
from tests.paths import CONFIGS

CONFIG = """
input { stdin { id => "in" codec => json } }
filter {
  kv { id => "kv" }
  if [level] == "debug" { drop { id => "drop_debug" } }
  mutate { id => "mark" add_tag => ["seen"] convert => { "n" => "integer" } }
}
output {
  if [level] == "error" { file { id => "errors" path => "/dev/null" } }
  stdout { id => "all" }
}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / "pipeline.conf").write_text(CONFIG)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_passing_cases_records_lines_and_extract_points(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", """
config: pipeline.conf
tests:
  - name: kv then mutate
    events: [{message: "level=info n=7 user=ann"}]
    expect:
      count: 1
      events:
        - equal: {"[level]": info, "[n]": 7, "[user]": ann}
          tags: [seen]
  - name: debug lines are dropped
    events: [{message: "level=debug"}, {message: "level=info"}]
    expect: {count: 1, all: {equal: {"[level]": info}}}
  - name: after kv, before mutate, dropped ones included
    events: [{message: "level=debug n=1"}]
    extract_from: kv
    expect: {count: 1, all: {equal: {"[n]": "1"}, absent: ["[tags]"]}}
  - name: raw lines go through the input's codec
    lines: ['{"message": "level=error n=2"}', '{"message": "level=info"}']
    extract_from: errors
    expect: {count: 1, events: [{equal: {"[level]": error}, match: {"[message]": "^level=err"}}]}
""")
    results = await run_test_file(path)
    assert [r.failures for r in results] == [[], [], [], []]


async def test_failures_name_the_field_and_show_the_events(tmp_path: Path) -> None:
    path = write(tmp_path, "t.toml", """
config = "pipeline.conf"
[[tests]]
name = "wrong on purpose"
events = [{message = "level=info n=7"}]
[tests.expect]
count = 2
[[tests.expect.events]]
equal = {"[n]" = 8}
absent = ["[level]"]
not_tags = ["seen"]
""")
    [result] = await run_test_file(path)
    assert not result.passed
    text = "\n".join(result.failures)
    assert "expected 2 event(s), got 1" in text
    assert "[n] is 7, expected 8" in text
    assert "[level] is 'info', expected it absent" in text
    assert "tag 'seen' present" in text
    assert '"n":7' in text  # the events that came out


@pytest.mark.parametrize(("body", "message"), [
    ("config: pipeline.conf\ntests: []\n", "non-empty list"),
    ("config: pipeline.conf\ntests:\n  - {events: [{a: 1}], lines: [x]}\n", "exactly one of"),
    ("config: pipeline.conf\ntests:\n  - {events: [{a: 1}], expect: {all: {equal: {'[a': 1}}}}\n", "malformed"),
    ("config: pipeline.conf\ntests:\n  - {events: [{a: 1}], extract_from: nope}\n", "no filter or output with id"),
    ("config: pipeline.conf\ntests:\n  - {events: [{a: 1}], expect: {all: {match: {'a': '('}}}}\n", "bad regex"),
    ("tests: [\n", "not valid YAML"),
])
async def test_mistakes_in_test_files_are_config_errors(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(ConfigError, match=message):
        await run_test_file(path)


def test_cli_exit_codes_and_junit(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", "config: pipeline.conf\ntests:\n  - {events: [{message: a=1}], "
                                        "expect: {count: 1}}\n")
    bad = write(tmp_path, "bad.yaml", "config: pipeline.conf\ntests:\n  - {name: nope, events: [{message: a=1}], "
                                      "expect: {count: 3}}\n")
    junit = tmp_path / "report.xml"
    ok = subprocess.run([sys.executable, "-m", "logpipe.cli", "test", good], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 passed, 0 failed" in ok.stdout
    fail = subprocess.run([sys.executable, "-m", "logpipe.cli", "test", good, bad, "--junit", str(junit)],
                          capture_output=True, text=True)
    assert fail.returncode == 1
    assert "FAIL" in fail.stdout and "expected 3 event(s), got 1" in fail.stdout
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None] == ["nope"]
    broken = write(tmp_path, "broken.yaml", "tests: 3\n")
    err = subprocess.run([sys.executable, "-m", "logpipe.cli", "test", broken], capture_output=True, text=True)
    assert err.returncode == 1 and "Traceback" not in err.stderr and "non-empty list" in err.stderr


@pytest.mark.parametrize("path", sorted((CONFIGS / "tests").glob("*.test.*")), ids=lambda p: p.name)
async def test_the_example_configs_pass_their_own_tests(path: Path) -> None:
    results = await run_test_file(str(path))
    assert results and all(r.passed for r in results), [r.failures for r in results]


async def test_fluentd_configs_are_tested_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "fluent.conf").write_text("""
<source>
  @type forward
  port 24224
</source>
<filter app.**>
  @type record_transformer
  @id add_host
  <record>
    hostname web1
  </record>
</filter>
<match app.**>
  @type stdout
</match>
""")
    path = tmp_path / "t.yaml"
    path.write_text("""
config: fluent.conf
tests:
  - name: the filter applies to its tags
    tag: app.web
    events: [{message: hi}]
    extract_from: add_host
    expect: {count: 1, events: [{equal: {"[hostname]": web1}}]}
  - name: other tags pass untouched
    tag: other
    events: [{message: hi}]
    expect: {count: 1, all: {absent: ["[hostname]"], equal: {"[message]": hi}}}
""")
    results = await run_test_file(str(path))
    assert [r.failures for r in results] == [[], []]
