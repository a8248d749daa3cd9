"""Fluentd tag globs: `*`, `**`, `{a,b}`, escapes, regexes, several patterns, the cache."""

from __future__ import annotations

import pytest

from logpipe.config import tagmatch
from logpipe.config.tagmatch import compile_tag_patterns
from logpipe.errors import ConfigError


@pytest.mark.parametrize(
    ("pattern", "tag", "expected"),
    [
        ("a", "a", True),
        ("a", "ab", False),
        ("a", "a.b", False),
        ("a.b", "a.b", True),
        ("a.b", "axb", False),  # the dot is literal
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*.b", "x.b", True),
        ("*.b", "x.y.b", False),
        ("*", "abc", True),
        ("*", "a.b", False),
        ("a.**", "a", True),  # zero parts
        ("a.**", "a.b", True),
        ("a.**", "a.b.c", True),
        ("a.**", "ab", False),
        ("a.**", "b.a", False),
        ("**", "", True),
        ("**", "anything.at.all", True),
        ("**.b", "b", True),
        ("**.b", "x.y.b", True),
        ("**.b", "xb", False),
        ("a.**.z", "a.z", True),
        ("a.**.z", "a.b.c.z", True),
        ("a.**.z", "a.bz", False),
        ("{a,b}.x", "a.x", True),
        ("{a,b}.x", "b.x", True),
        ("{a,b}.x", "c.x", False),
        ("app.{web,db}.**", "app.db.slow", True),
        ("app.{web,db}.**", "app.cache", False),
        ("a.{b,c.**}", "a.c.d.e", True),
        ("a.{b,{c,d}}", "a.d", True),
        ("{a", "a", True),  # unclosed brace closes at the end, like Fluentd
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("a+b", "a+b", True),  # regex metacharacters are literal
        ("a+b", "aab", False),
        ("/^web\\.(access|error)$/", "web.error", True),
        ("/^web\\.(access|error)$/", "web.debug", False),
    ],
)
def test_glob(pattern, tag, expected):
    assert compile_tag_patterns([pattern])(tag) is expected


def test_several_patterns_in_one_string_and_list():
    match = compile_tag_patterns(["web.* app.**", "db"])
    tags = ("web.a", "app", "app.x.y", "db", "db.x", "web")
    assert [match(t) for t in tags] == [True, True, True, True, False, False]


def test_catch_all_short_circuits():
    assert compile_tag_patterns(["x", "**"])("whatever") is True


def test_cache_is_bounded_and_answers_stay_correct(monkeypatch):
    monkeypatch.setattr(tagmatch, "CACHE_SIZE", 8)
    match = compile_tag_patterns(["web.*"])
    cells = match.__closure__
    cache = next(c.cell_contents for c in cells if isinstance(c.cell_contents, dict))
    for i in range(50):
        assert match(f"web.{i}") is True
        assert match(f"x.{i}") is False
        assert len(cache) <= 8
    assert match("web.49") is True


def test_invalid_and_empty_patterns():
    with pytest.raises(ConfigError, match="invalid tag pattern"):
        compile_tag_patterns(["/(x/"])
    with pytest.raises(ConfigError, match="at least one pattern"):
        compile_tag_patterns(["  "])


def test_regex_valid_alone_but_not_embedded_is_config_error():
    # A global flag is legal at the start of a lone regex, not inside the combined alternation.
    with pytest.raises(ConfigError, match="invalid tag pattern"):
        compile_tag_patterns(["/(?i)web/", "app.*"])
