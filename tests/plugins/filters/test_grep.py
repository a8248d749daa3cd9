"""Fluentd's filter_grep (docs.fluentd.org/filter/grep)."""

from __future__ import annotations

import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe_plugins.filters.grep import GrepFilter

EVENTS = [
    {"message": "It's cool outside today", "hostname": "web001.example.com"},
    {"message": "That's not cool", "hostname": "web1337.example.com"},
    {"message": "I am cool but you are uncool", "hostname": "db001.example.com"},
    {"hostname": "web001.example.com"},
]


def kept(f: GrepFilter, records: list[dict] = EVENTS) -> list[dict]:
    return [ev.record for ev in f.filter([Event("t", 1, dict(r)) for r in records])]


def test_docs_example_regexp_and_exclude() -> None:
    f = GrepFilter(regexp={"key": "message", "pattern": "/cool/"},
                   exclude={"key": "message", "pattern": "/uncool/"})
    assert kept(f) == EVENTS[:2]
    both = GrepFilter(regexp=[{"key": "message", "pattern": "/cool/"},
                              {"key": "hostname", "pattern": "/^web\\d+\\.example\\.com$/"}])
    assert kept(both) == EVENTS[:2]


def test_or_of_regexps_and_and_of_excludes() -> None:
    any_of = GrepFilter(**{"or": {"regexp": [{"key": "hostname", "pattern": "/^db/"},
                                             {"key": "message", "pattern": "/not/"}]}})
    assert kept(any_of) == [EVENTS[1], EVENTS[2]]
    all_of = GrepFilter(**{"and": {"exclude": [{"key": "hostname", "pattern": "/^web001/"},
                                               {"key": "message", "pattern": "/cool/"}]}})
    assert kept(all_of) == EVENTS[1:]


def test_v012_flat_forms_and_ignorecase() -> None:
    f = GrepFilter(regexp1="message COOL", exclude1="hostname ^db")
    assert kept(f) == []
    f = GrepFilter(regexp1="message /COOL/i", exclude1="hostname ^db")
    assert kept(f) == EVENTS[:2]


def test_nested_keys_and_non_string_values() -> None:
    f = GrepFilter(regexp={"key": "$.kubernetes.namespace", "pattern": "^prod$"},
                   exclude={"key": "code", "pattern": "^5"})
    records = [{"kubernetes": {"namespace": "prod"}, "code": 200}, {"kubernetes": {"namespace": "prod"}, "code": 503},
               {"kubernetes": {"namespace": "dev"}, "code": 200}]
    assert kept(f, records) == records[:1]


def test_mistakes() -> None:
    with pytest.raises(ConfigError):
        GrepFilter(regexp={"key": "message"})
    with pytest.raises(ConfigError):
        GrepFilter(regexp={"key": "message", "pattern": "(unclosed"})
    with pytest.raises(ConfigError):
        GrepFilter(**{"or": {"regexp": {"key": "a", "pattern": "b"}, "exclude": {"key": "a", "pattern": "b"}}})


def test_from_a_fluentd_config() -> None:
    config = load_config_string("""
<filter **>
  @type grep
  <regexp>
    key message
    pattern /cool/
  </regexp>
  <exclude>
    key message
    pattern /uncool/
  </exclude>
</filter>
<match **>
  @type null
</match>
""")
    pipeline = Pipeline(config)
    (grep,) = pipeline.built.filters
    assert isinstance(grep, GrepFilter) and kept(grep) == EVENTS[:2]


def test_rule_sections_are_declared_and_their_mistakes_placed() -> None:
    """<regexp>/<exclude> inside <and>/<or> are declared sections: a misspelt setting is named
    where it is written, with the one it should be."""
    config = """<filter **>
  @type grep
  <and>
    <regexp>
      key message
      patern x
    </regexp>
  </and>
</filter>
<match **>
  @type null
</match>
"""
    with pytest.raises(ConfigError) as err:
        Pipeline.from_string(config)
    assert str(err.value).startswith("<config string>:6:7: error: unknown setting 'patern' for section 'regexp'; "
                                     "did you mean 'pattern'?")
