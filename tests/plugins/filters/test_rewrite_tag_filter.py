"""rewrite_tag_filter: vectors from fluent-plugin-rewrite-tag-filter's test suite
(test/plugin/test_out_rewrite_tag_filter.rb) and README, run through a Fluentd config, plus
logpipe's own guarantees (routing again from the top, the loop guard, the regex budget)."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest

from logpipe.config.loader import load_config_string
from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.metrics import REGISTRY
from logpipe.pipeline import Pipeline


def _match(body: str, pattern: str = "**") -> str:
    return f"<match {pattern}>\n  @type rewrite_tag_filter\n{body}\n</match>\n<match **>\n  @type null\n</match>\n"


def _rewritten(body: str, feed: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """(tag, record) of the events that leave the filter stage, as the plugin's test driver
    sees the re-emitted events (pattern of the match: the tags fed)."""
    tags = sorted({tag for tag, _ in feed})
    pipeline = Pipeline(load_config_string(_match(body, " ".join(tags))))
    out = pipeline.filter_batch([Event(tag, 0, dict(record)) for tag, record in feed])
    return [(ev.tag, ev.record) for ev in out]


SIMPLE = """
  <rule>
    key domain
    pattern ^www\\.google\\.com$
    tag site.Google
  </rule>
  <rule>
    key domain
    pattern ^news\\.google\\.com$
    tag site.GoogleNews
  </rule>
  <rule>
    key agent
    pattern .* Mac OS X .*
    tag agent.MacOSX
  </rule>
  <rule>
    key agent
    pattern (Googlebot|CustomBot)-([a-zA-Z]+)
    tag agent.$1-$2
  </rule>
  <rule>
    key domain
    pattern ^(tagtest)\\.google\\.com$
    tag site.${tag}.$1
  </rule>
"""


def test_simple() -> None:
    feed = [
        {"domain": "www.google.com", "path": "/foo/bar?key=value", "agent": "Googlebot", "response_time": 1000000},
        {"domain": "news.google.com", "path": "/", "agent": "Googlebot-Mobile", "response_time": 900000},
        {"domain": "map.google.com", "path": "/", "agent": "Macintosh; Intel Mac OS X 10_7_4", "response_time": 9},
        {"domain": "labs.google.com", "path": "/", "agent": "Mozilla/5.0 Googlebot-FooBar/2.1", "response_time": 9},
        {"domain": "tagtest.google.com", "path": "/", "agent": "Googlebot", "response_time": 900000},
        {"domain": "noop.example.com"},  # to be ignored
    ]
    out = _rewritten(SIMPLE, [("input.access", r) for r in feed])
    assert [tag for tag, _ in out] == ["site.Google", "site.GoogleNews", "agent.MacOSX", "agent.Googlebot-FooBar",
                                       "site.input.access.tagtest"]
    assert out[1][1]["domain"] == "news.google.com"


@pytest.mark.parametrize("prefix", ["input", "input."])
def test_remove_tag_prefix(prefix: str) -> None:
    body = f"  remove_tag_prefix {prefix}\n  <rule>\n    key domain\n    pattern ^www\\.google\\.com$\n" \
           "    tag ${tag}\n  </rule>"
    assert [t for t, _ in _rewritten(body, [("input.access", {"domain": "www.google.com"})])] == ["access"]


def test_remove_tag_regexp() -> None:
    body = "  remove_tag_regexp /^input\\.(apache|nginx)\\./\n  <rule>\n    key domain\n" \
           "    pattern ^www\\.google\\.com$\n    tag rewritten.${tag}\n  </rule>"
    feed = [(t, {"domain": "www.google.com"}) for t in ("input.apache.access", "input.nginx.access",
                                                         "input.tomcat.access")]
    assert [t for t, _ in _rewritten(body, feed)] == ["rewritten.access", "rewritten.access",
                                                       "rewritten.input.tomcat.access"]


def test_short_hostname() -> None:
    body = "  remove_tag_prefix input\n  hostname_command hostname -s\n  <rule>\n    key domain\n" \
           "    pattern ^www\\.google\\.com$\n    tag ${hostname}\n  </rule>"
    out = _rewritten(body, [("input.access", {"domain": "www.google.com"})])
    assert [t for t, _ in out] == [socket.gethostname().split(".")[0]]


def test_invert_fires_for_missing_and_unmatched_values() -> None:
    body = """
  <rule>
    key domain
    pattern ^www\\..+$
    tag not_start_with_www
    invert true
  </rule>
  <rule>
    key domain
    pattern ^www\\..+$
    tag start_with_www
  </rule>"""
    feed = [("input.access", r) for r in ({"domain": "www.google.com"}, {"path": "/"}, {"domain": "maps.google.com"})]
    assert [t for t, _ in _rewritten(body, feed)] == ["start_with_www", "not_start_with_www", "not_start_with_www"]


def test_split_by_tag_parts() -> None:
    body = """
  <rule>
    key user_name
    pattern ^Lynn Minmay$
    tag vip.${tag_parts[1]}.remember_love
  </rule>
  <rule>
    key user_name
    pattern ^Harlock$
    tag ${tag_parts[2]}.${tag_parts[0]}.${tag_parts[1]}
  </rule>
  <rule>
    key  world
    pattern ^(alice|chaos)$
    tag application.${tag_parts[0]}.$1_server
  </rule>
  <rule>
    key world
    pattern ^[a-z]+$
    tag application.${tag_parts[1]}.future_server
  </rule>"""
    feed = [("game.production.api", r) for r in (
        {"user_id": "10000", "world": "chaos", "user_name": "gamagoori"},
        {"user_id": "10001", "world": "chaos", "user_name": "sanageyama"},
        {"user_id": "10002", "world": "nehan", "user_name": "inumuta"},
        {"user_id": "77777", "world": "space", "user_name": "Lynn Minmay"},
        {"user_id": "99999", "world": "space", "user_name": "Harlock"},
    )]
    assert [t for t, _ in _rewritten(body, feed)] == [
        "application.game.chaos_server", "application.game.chaos_server", "application.production.future_server",
        "vip.production.remember_love", "api.game.production"]


@pytest.mark.parametrize("key", ["$.email.domain", "$['email']['domain']"])
def test_nested_keys(key: str) -> None:
    body = f"  <rule>\n    key {key}\n    pattern ^(example)\\.(com)$\n    tag $2.$1\n  </rule>"
    feed = [("input", {"email": {"localpart": "john", "domain": "example.com"}}),
            ("input", {"email": {"localpart": "doe", "domain": "example.jp"}})]
    assert [t for t, _ in _rewritten(body, feed)] == ["com.example"]


def test_readme_capitalize_and_unchanged_tag_is_discarded() -> None:
    body = """
  capitalize_regex_backreference yes
  <rule>
    key     domain
    pattern /^(mail)\\.(example)\\.com$/
    tag     site.$2$1
  </rule>
  <rule>
    key     domain
    pattern /.+/
    tag     ${tag}
  </rule>"""
    before = REGISTRY.value("logpipe_filter_rewrite_tag_discarded_total", filter="rewrite_tag_filter") or 0
    out = _rewritten(body, [("td.apache.access", {"domain": "mail.example.com"}),
                            ("td.apache.access", {"domain": "other.example.com"})])
    assert [t for t, _ in out] == ["site.ExampleMail"]
    assert REGISTRY.value("logpipe_filter_rewrite_tag_discarded_total", filter="rewrite_tag_filter") == before + 1


def test_unknown_placeholder_and_missing_backreference_become_empty() -> None:
    body = "  <rule>\n    key k\n    pattern ^(a)$\n    tag x.${tag_parts[9]}$2.${unknown}y\n  </rule>"
    assert [t for t, _ in _rewritten(body, [("in", {"k": "a"})])] == ["x..y"]


def test_invert_rule_keeps_dollar_n_as_written() -> None:
    body = "  <rule>\n    key k\n    pattern ^a$\n    invert true\n    tag x.$1\n  </rule>"
    assert [t for t, _ in _rewritten(body, [("in", {"k": "b"})])] == ["x.$1"]


@pytest.mark.parametrize(("body", "expected"), [
    ("", "rule"),
    ("  rewriterule1 foo ^foo$ new_tag\n  <rule>\n    key a\n    pattern b\n    tag c\n  </rule>", "dropped"),
    ("  remove_tag_prefix prefix\n  remove_tag_regexp /^prefix\\./\n  <rule>\n    key message\n"
     "    pattern .+\n    tag ${tag}\n  </rule>", "exclusive"),
    ("  <rule>\n    key a\n    pattern b\n    tag c\n  </rule>\n  <rule>\n    key a\n    pattern b\n"
     "    tag d\n  </rule>", "duplicated"),
    ("  <rule>\n    key a\n    pattern (\n    tag c\n  </rule>", "invalid regular expression"),
    ("  <rule>\n    key a\n    pattern b\n    tag ${tag_parts[0..2]}\n  </rule>", "range"),
    ("  hostname_command curl evil\n  <rule>\n    key a\n    pattern b\n    tag c\n  </rule>", "no commands"),
    ("  <rule>\n    key a\n    pattern b\n    tag c\n    label @NOPE\n  </rule>", "unknown label '@NOPE'"),
    ("  <rule>\n    key a\n    patern b\n    tag c\n  </rule>", "did you mean 'pattern'"),
    ("  <rule>\n    key a\n    pattern b\n    tag c\n    invert maybe\n  </rule>", "true or false"),
])
def test_configuration_errors_are_placed(body: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        Pipeline(load_config_string(_match(body), "rt.conf"))
    assert expected in err.value.message
    assert err.value.pos is not None and err.value.pos.file == "rt.conf"


def test_pattern_error_points_at_the_pattern_line() -> None:
    with pytest.raises(ConfigError) as err:
        Pipeline(load_config_string(_match("  <rule>\n    key a\n    pattern (\n    tag c\n  </rule>"), "rt.conf"))
    assert err.value.pos is not None and err.value.pos.line == 5


async def test_rewritten_events_are_routed_again_from_the_top(tmp_path: Path) -> None:
    """A filter before the rewrite sees the new tag too; filters after the rewrite's match do not see
    the original event; a rule label sends the event into that label."""
    site, labelled, rest = tmp_path / "site.jsonl", tmp_path / "label.jsonl", tmp_path / "rest.jsonl"
    config = f"""
<filter site.**>
  @type record_transformer
  <record>
    seen_as ${{tag}}
  </record>
</filter>
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key kind
    pattern ^special$
    tag ${{tag}}
    label @SPECIAL
  </rule>
  <rule>
    key $.kubernetes.namespace_name
    pattern ^(.+)$
    tag site.$1.${{tag_parts[1]}}
  </rule>
</match>
<filter app.**>
  @type record_transformer
  <record>
    after_rewrite true
  </record>
</filter>
<match site.**>
  @type file
  path {site}
  append true
  add_path_suffix false
  <format>
    @type json
  </format>
  <buffer []>
    @type memory
  </buffer>
</match>
<match **>
  @type file
  path {rest}
  append true
  add_path_suffix false
  <format>
    @type json
  </format>
  <buffer []>
    @type memory
  </buffer>
</match>
<label @SPECIAL>
  <match **>
    @type file
    path {labelled}
    append true
    add_path_suffix false
    <format>
      @type json
    </format>
    <buffer []>
      @type memory
    </buffer>
  </match>
</label>
"""
    async with Pipeline.from_string(config, state_dir=str(tmp_path / "s")) as pipeline:
        await pipeline.emit("app.web", {"kubernetes": {"namespace_name": "prod"}, "n": 1})
        await pipeline.emit("app.web", {"kind": "special", "n": 2})
        await pipeline.emit("app.web", {"n": 3})  # no rule fires: discarded, as the plugin does
        ack = await pipeline.emit("other", {"n": 4})
        await pipeline.delivered(ack)
    def records(path: Path) -> list[dict]:
        return [{k: v for k, v in orjson.loads(x).items() if k != "@timestamp"} for x in path.read_bytes().splitlines()]

    assert records(site) == [{"kubernetes": {"namespace_name": "prod"}, "n": 1, "seen_as": "site.prod.web"}]
    assert records(labelled) == [{"kind": "special", "n": 2}]
    assert [r["n"] for r in records(rest)] == [4]


def test_a_rewrite_loop_is_stopped_and_sent_to_the_error_label() -> None:
    config = """
<match a.**>
  @type rewrite_tag_filter
  <rule>
    key k
    pattern .+
    tag b.${tag_parts[1]}
  </rule>
</match>
<match b.**>
  @type rewrite_tag_filter
  <rule>
    key k
    pattern .+
    tag a.${tag_parts[1]}
  </rule>
</match>
<match **>
  @type null
</match>
<label @ERROR>
  <match **>
    @type null
  </match>
</label>
"""
    before = REGISTRY.value("logpipe_reemit_loops_total") or 0
    pipeline = Pipeline(load_config_string(config))
    out = pipeline.filter_batch([Event("a.x", 0, {"k": "v"}), Event("c", 0, {"k": "v"})])
    assert [(ev.tag, ev.meta.get("_label")) for ev in out] == [("c", None), ("b.x", "@ERROR")]
    assert REGISTRY.value("logpipe_reemit_loops_total") == before + 1
    (error_output,) = [o for o, part in pipeline.route_batch(out) if part and part[0].tag == "b.x"]
    assert error_output is pipeline.built.outputs[-1]  # the @ERROR label's match


def test_a_pathological_pattern_runs_within_the_regex_budget() -> None:
    body = "  <rule>\n    key k\n    pattern ^(a|aa)+$\n    tag slow\n  </rule>\n  <rule>\n    key k\n" \
           "    pattern .\n    tag fallback\n  </rule>"
    out = _rewritten(body, [("in", {"k": "a" * 40 + "!"})])
    assert [t for t, _ in out] == ["fallback"]
    assert (REGISTRY.value("logpipe_filter_rewrite_tag_regex_timeouts_total", filter="rewrite_tag_filter")
            or 0) >= 1
