"""The grok engine: compilation, translation, captures, coercion, errors, timeouts."""

from __future__ import annotations

import re
import threading
import time
import warnings
from pathlib import Path

import pytest

from logpipe.grok import Grok, GrokCaptures, GrokError, GrokTimeout
from logpipe.grok.translate import translate

APACHE = ('83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /images/kibana-search.png HTTP/1.1" 200 203023 '
          '"http://semicomplete.com/" "Mozilla/5.0 (Macintosh)"')
#: A realistic mistake: GREEDYDATA per CSV column, and a line that lacks the final ';'.
CSV_PATTERN = "%{GREEDYDATA:a},%{GREEDYDATA:b},%{GREEDYDATA:c},%{GREEDYDATA:d};"
CSV_LINE = ",".join(f"field{i}" for i in range(300))


def test_combined_apache_legacy() -> None:
    caps = Grok("%{COMBINEDAPACHELOG}").match(APACHE)
    assert caps == {
        "clientip": "83.149.9.216", "ident": "-", "auth": "-", "timestamp": "17/May/2015:10:05:03 +0000",
        "verb": "GET", "request": "/images/kibana-search.png", "httpversion": "1.1", "response": "200",
        "bytes": "203023", "referrer": '"http://semicomplete.com/"', "agent": '"Mozilla/5.0 (Macintosh)"',
    }


def test_combined_apache_ecs_nests_and_coerces() -> None:
    caps = Grok("%{HTTPD_COMBINEDLOG}", ecs_compatibility="v1").match(APACHE)
    assert caps is not None
    assert caps["http"]["request"]["method"] == "GET"
    assert caps["http"]["response"] == {"status_code": 200, "body": {"bytes": 203023}}
    assert caps["source"] == {"address": "83.149.9.216"}
    assert "user" not in caps  # '-' matched the literal branch: the optional capture is absent


def test_bracket_and_dotted_names_both_nest() -> None:
    caps = Grok("%{WORD:[http][request][method]} %{NUMBER:http.response.code:int}").match("GET 404")
    assert caps == {"http": {"request": {"method": "GET"}, "response": {"code": 404}}}


def test_no_match_returns_none() -> None:
    assert Grok("%{IP:ip}").match("no address here") is None


def test_search_is_unanchored_like_logstash() -> None:
    assert Grok("%{INT:n}").match("abc 42 def") == {"n": "42"}


def test_float_coercion() -> None:
    assert Grok("%{NUMBER:x:float}").match("took 1.5s") == {"x": 1.5}


def test_int_on_a_decimal_keeps_the_text_and_reports() -> None:
    caps = Grok("%{NUMBER:x:int} %{WORD:w}").match("3.5 ok")
    assert isinstance(caps, GrokCaptures)
    assert caps == {"x": "3.5", "w": "ok"}
    assert caps.coerce_failures == [("x", "3.5", "int")]


def test_plain_matches_return_a_plain_dict() -> None:
    assert type(Grok("%{INT:x:int}").match("7")) is dict


def test_optional_capture_absent_unless_keep_empty() -> None:
    pattern = "%{WORD:a}(?: %{WORD:b})?"
    assert Grok(pattern).match("x") == {"a": "x"}
    assert Grok(pattern, keep_empty_captures=True).match("x") == {"a": "x", "b": None}


def test_empty_string_capture_skipped_unless_kept() -> None:
    pattern = r"\[%{DATA:inner}\]"
    assert Grok(pattern).match("[]") == {}
    assert Grok(pattern, keep_empty_captures=True).match("[]") == {"inner": ""}


def test_named_captures_only_false_keeps_pattern_names() -> None:
    assert Grok("%{INT} %{WORD:w}", named_captures_only=False).match("5 x") == {"INT": "5", "w": "x"}
    assert Grok("%{INT} %{WORD:w}").match("5 x") == {"w": "x"}


def test_a_field_captured_twice_becomes_a_list() -> None:
    assert Grok("%{WORD:w} %{WORD:w}").match("a b") == {"w": ["a", "b"]}


def test_raw_named_groups_are_captures() -> None:
    caps = Grok(r"(?<[req][verb]>[A-Z]+) (?<path>\S+)").match("GET /x")
    assert caps == {"req": {"verb": "GET"}, "path": "/x"}


def test_list_of_patterns_first_match_wins() -> None:
    g = Grok(["%{INT:num}$", "%{WORD:word}"])
    assert g.match("42") == {"num": "42"}
    assert g.match("hello") == {"word": "hello"}


def test_pattern_definitions_extend_and_override() -> None:
    g = Grok("%{MYID:id} %{WORD:w}", pattern_definitions={"MYID": "[A-Z]{2}-[0-9]+", "WORD": "[a-z]+"})
    assert g.match("AB-12 hello") == {"id": "AB-12", "w": "hello"}
    assert g.match("AB-12 HELLO") is None


def test_inline_definition() -> None:
    assert Grok("%{TICKET:t=T-[0-9]+}").match("see T-99") == {"t": "T-99"}


def test_patterns_dir_and_glob(tmp_path: Path) -> None:
    (tmp_path / "extra.grok").write_text("# comment\nQUEUE [a-z]+-q\n\nSTAMP %{INT}s\n")
    (tmp_path / "ignored.txt").write_text("QUEUE nope\n")
    g = Grok("%{QUEUE:q} %{STAMP:s}", patterns_dir=[str(tmp_path)], patterns_files_glob="*.grok")
    assert g.match("jobs-q 12s") == {"q": "jobs-q", "s": "12s"}


def test_patterns_dir_bad_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad").write_text("GOOD x\n!!! nope\n")
    with pytest.raises(GrokError, match=r"bad:2: expected 'NAME REGEX'"):
        Grok("%{GOOD}", patterns_dir=[str(tmp_path)])


def test_unknown_pattern_names_it_and_the_position() -> None:
    with pytest.raises(GrokError) as info:
        Grok("%{WORD:a} %{NOPE:b}")
    assert "unknown pattern %{NOPE}" in str(info.value)
    assert info.value.position == 10
    assert "^" in str(info.value)


def test_unknown_pattern_inside_a_definition_names_the_definition() -> None:
    with pytest.raises(GrokError) as info:
        Grok("%{OUTER}", pattern_definitions={"OUTER": "x %{MISSING}"})
    assert info.value.pattern == "OUTER" and info.value.position == 2


def test_recursive_definition() -> None:
    with pytest.raises(GrokError, match=r"recursive pattern definition \(A -> B -> A\)"):
        Grok("%{A}", pattern_definitions={"A": "a%{B}", "B": "b%{A}"})


def test_invalid_regex_names_the_pattern_and_position() -> None:
    with pytest.raises(GrokError) as info:
        Grok("%{BROKEN:x}", pattern_definitions={"BROKEN": "ab(c"})
    assert info.value.pattern == "BROKEN"
    assert "missing ')'" in str(info.value)
    with pytest.raises(GrokError) as info2:
        Grok("%{WORD} [z-a]")
    assert info2.value.pattern is None and info2.value.position == 10


def test_unknown_type() -> None:
    with pytest.raises(GrokError, match="unknown type ':long'"):
        Grok("%{INT:x:long}")


def test_unknown_ecs_mode() -> None:
    with pytest.raises(GrokError, match="unknown ecs_compatibility 'v2'"):
        Grok("%{INT}", ecs_compatibility="v2")


# -- translation -------------------------------------------------------------------------


def _tr(src: str) -> str:
    names = iter(range(100))
    return translate(src, lambda raw: f"g{next(names)}").pattern


def test_posix_class_and_nested_class_flatten() -> None:
    assert _tr("[[[:alnum:]]_%-]") == "[a-zA-Z0-9_%\\-]"
    assert re.fullmatch(Grok("%{UNIXPATH}").regex, "/var/log/app_1.log")


def test_hex_escape_h() -> None:
    assert Grok("%{RUUID:u}").match("a" * 32) == {"u": "a" * 32}
    assert _tr(r"\h\H") == "[0-9a-fA-F][^0-9a-fA-F]"


def test_ruby_m_flag_mid_pattern_is_scoped_dotall() -> None:
    assert _tr("a(?m)b.c") == "a(?s:b.c)"
    assert _tr("(x(?i)y)z") == "(?:x(?i:y))z"


def test_ruby_interval_then_plus_is_not_possessive() -> None:
    assert _tr("a{2}+") == "(?:a{2})+"
    assert re.fullmatch(_tr("a{2}+"), "aaaa")


def test_end_anchors() -> None:
    assert _tr(r"x\z") == r"x\Z" and _tr(r"x\Z") == r"x(?=\n?\Z)"


def test_plain_groups_stay_capturing_with_backrefs() -> None:
    assert _tr(r"(a)\1") == r"(a)\1"
    assert _tr(r"(a)b") == "(?:a)b"


def test_set_operators_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = Grok(r"^[~~||&]+$")
    assert g.match("~|&") is not None
    with pytest.raises(GrokError, match="intersection"):
        Grok("[a-z&&[^aeiou]]")


def test_dot_matches_newline_like_logstash() -> None:
    assert Grok("%{GREEDYDATA:all}").match("a\nb") == {"all": "a\nb"}


def test_compiled_expressions_are_cached() -> None:
    assert Grok("%{COMBINEDAPACHELOG}").compiled[0] is Grok("%{COMBINEDAPACHELOG}").compiled[0]


# -- timeouts ----------------------------------------------------------------------------


# pytest-timeout's default "signal" method owns SIGALRM during a test; the engine then
# (correctly) falls back to the regex module. These tests use the thread method so the
# SIGALRM watchdog itself is exercised.
@pytest.mark.timeout(60, method="thread")
def test_catastrophic_regex_times_out_in_main_thread() -> None:
    g = Grok("(a+)+$", timeout=0.2)
    start = time.perf_counter()
    with pytest.raises(GrokTimeout):
        g.match("a" * 40 + "b")
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5
    assert g.match("aaaa") == {}


@pytest.mark.timeout(60, method="thread")
def test_real_pattern_times_out_and_normal_lines_still_match() -> None:
    g = Grok(CSV_PATTERN, timeout=0.2)
    start = time.perf_counter()
    with pytest.raises(GrokTimeout):
        g.match(CSV_LINE)
    assert time.perf_counter() - start < 0.5
    assert g.match("1,2,3,4;") == {"a": "1", "b": "2", "c": "3", "d": "4"}


def test_other_threads_use_the_regex_module_timeout() -> None:
    g = Grok(CSV_PATTERN, timeout=0.2)
    outcome: list[object] = []

    def work() -> None:
        start = time.perf_counter()
        try:
            g.match(CSV_LINE)
            outcome.append("finished")
        except GrokTimeout:
            outcome.append(time.perf_counter() - start)
        outcome.append(g.match("1,2,3,4;"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert isinstance(outcome[0], float) and outcome[0] < 1.0
    assert outcome[1] == {"a": "1", "b": "2", "c": "3", "d": "4"}


def test_foreign_sigalrm_owner_means_regex_module_fallback() -> None:
    """Under pytest-timeout's signal method SIGALRM is taken: the match must still be bounded."""
    g = Grok(CSV_PATTERN, timeout=0.2)
    start = time.perf_counter()
    with pytest.raises(GrokTimeout):
        g.match(CSV_LINE)
    assert time.perf_counter() - start < 1.0


def test_without_timeout_match_is_the_generated_function() -> None:
    g = Grok("%{INT:n}")
    assert g.match is g.compiled[0].match
