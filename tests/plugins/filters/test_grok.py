"""The grok filter plugin: every setting, failures, timeouts, Fluentd forms."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from logpipe_plugins.filters.grok import GrokFilter
from tests.support.pipeline import CollectOutput, ScriptedInput

APACHE = ('83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /images/kibana-search.png HTTP/1.1" 200 203023 '
          '"http://semicomplete.com/" "Mozilla/5.0 (Macintosh)"')
CSV_PATTERN = "%{GREEDYDATA:a},%{GREEDYDATA:b},%{GREEDYDATA:c},%{GREEDYDATA:d};"
CSV_LINE = ",".join(f"field{i}" for i in range(300))


def ev(message: Any = None, **record: Any) -> Event:
    if message is not None:
        record["message"] = message
    return Event("test", 0, record)


def run(flt: GrokFilter, *events: Event) -> list[Event]:
    return flt.filter(list(events))


def test_match_sets_fields_and_failure_tags() -> None:
    flt = GrokFilter(match={"message": "%{COMBINEDAPACHELOG}"})
    ok, bad = run(flt, ev(APACHE), ev("not an access log"))
    assert ok.record["verb"] == "GET" and ok.record["response"] == "200"
    assert "tags" not in ok.record
    assert bad.record == {"message": "not an access log", "tags": ["_grokparsefailure"]}


def test_custom_failure_tags() -> None:
    flt = GrokFilter(match={"message": "%{INT:n}"}, tag_on_failure=["nope", "_bad"])
    (out,) = run(flt, ev("abc"))
    assert out.record["tags"] == ["nope", "_bad"]


def test_ecs_mode_nests_and_coerces() -> None:
    flt = GrokFilter(match={"message": "%{HTTPD_COMBINEDLOG}"}, ecs_compatibility="v1")
    (out,) = run(flt, ev(APACHE))
    assert out.record["http"]["response"]["status_code"] == 200
    assert out.record["url"]["original"] == "/images/kibana-search.png"


def test_break_on_match() -> None:
    patterns = ["%{WORD:first}", "%{INT:number}"]
    (out,) = run(GrokFilter(match={"message": patterns}), ev("abc 12"))
    assert "first" in out.record and "number" not in out.record
    (out,) = run(GrokFilter(match={"message": patterns}, break_on_match=False), ev("abc 12"))
    assert out.record["first"] == "abc" and out.record["number"] == "12"


def test_several_fields_and_the_flat_array_form() -> None:
    flt = GrokFilter(match=["message", "%{INT:n}", "[src][line]", "%{WORD:w}"], break_on_match=False)
    (out,) = run(flt, ev("7", src={"line": "hello"}))
    assert out.record["n"] == "7" and out.record["w"] == "hello"


def test_existing_string_field_becomes_an_array_unless_overwritten() -> None:
    (out,) = run(GrokFilter(match={"message": "%{WORD} %{GREEDYDATA:message}"}), ev("INFO started"))
    assert out.record["message"] == ["INFO started", "started"]
    flt = GrokFilter(match={"message": "%{WORD} %{GREEDYDATA:message}"}, overwrite=["message"])
    (out,) = run(flt, ev("INFO started"))
    assert out.record["message"] == "started"


def test_existing_non_string_value_is_left_alone() -> None:
    (out,) = run(GrokFilter(match={"message": "%{INT:n}"}), ev("5", n=1))
    assert out.record["n"] == 1


def test_target() -> None:
    (out,) = run(GrokFilter(match={"message": "%{WORD:w} %{INT:n:int}"}, target="[parsed]"), ev("a 1"))
    assert out.record["parsed"] == {"w": "a", "n": 1}
    assert "w" not in out.record


def test_keep_empty_and_named_captures_only() -> None:
    (out,) = run(GrokFilter(match={"message": "%{WORD:a}(?: %{WORD:b})?"}, keep_empty_captures=True), ev("x"))
    assert out.record["b"] is None
    (out,) = run(GrokFilter(match={"message": "%{INT} %{WORD:w}"}, named_captures_only=False), ev("5 y"))
    assert out.record["INT"] == "5" and out.record["w"] == "y"


def test_pattern_definitions_and_patterns_dir(tmp_path: Path) -> None:
    (tmp_path / "app.patterns").write_text("APPID app-[0-9]+\n")
    (tmp_path / "skip.txt").write_text("APPID nothing\n")
    flt = GrokFilter(match={"message": "%{APPID:app} %{LEVEL:level}"}, patterns_dir=[str(tmp_path)],
                     patterns_files_glob="*.patterns", pattern_definitions={"LEVEL": "(?:INFO|WARN)"})
    (out,) = run(flt, ev("app-12 WARN"))
    assert out.record["app"] == "app-12" and out.record["level"] == "WARN"


def test_coercion_failure_keeps_text_and_tags() -> None:
    flt = GrokFilter(match={"message": "%{NUMBER:n:int} %{WORD:w}"})
    first, second = run(flt, ev("3.5 x"), ev("4 y"))
    assert first.record["n"] == "3.5" and first.record["w"] == "x"
    assert first.record["tags"] == ["_grokcoercefailure"]
    assert second.record["n"] == 4 and "tags" not in second.record


def test_array_field_matches_each_element() -> None:
    (out,) = run(GrokFilter(match={"message": "%{INT:n}"}), ev(["1", "x", "2"]))
    assert out.record["n"] == ["1", "2"]


def test_missing_source_field_is_a_failure() -> None:
    (out,) = run(GrokFilter(match={"message": "%{INT:n}"}), ev(other="1"))
    assert out.record["tags"] == ["_grokparsefailure"]


def test_metadata_capture_goes_to_meta() -> None:
    (out,) = run(GrokFilter(match={"message": "%{WORD:[@metadata][kind]} %{INT:n}"}), ev("job 3"))
    assert out.meta == {"kind": "job"} and out.record["n"] == "3"


def test_common_options_only_on_success() -> None:
    flt = GrokFilter(match={"message": "%{WORD:verb}"}, add_tag=["parsed"], add_field={"v": "%{verb}!"})
    ok, bad = run(flt, ev("GET"), ev("!!!"))
    assert ok.record["tags"] == ["parsed"] and ok.record["v"] == "GET!"
    assert bad.record["tags"] == ["_grokparsefailure"] and "v" not in bad.record


# -- timeouts ----------------------------------------------------------------------------


@pytest.mark.timeout(60, method="thread")  # leave SIGALRM to the grok watchdog (see test_grok_engine)
def test_catastrophic_pattern_times_out_and_the_batch_goes_on() -> None:
    flt = GrokFilter(match={"message": "(a+)+$"}, timeout_millis=200)
    start = time.perf_counter()
    slow, fast = run(flt, ev("a" * 40 + "b"), ev("aaaa"))
    elapsed = time.perf_counter() - start
    assert slow.record["tags"] == ["_groktimeout"]
    assert "tags" not in fast.record
    assert elapsed < 0.45


@pytest.mark.timeout(60, method="thread")
def test_real_pattern_timeout_among_normal_lines() -> None:
    flt = GrokFilter(match={"message": CSV_PATTERN}, timeout_millis=200, tag_on_timeout="slow")
    events = [ev("1,2,3,4;"), ev(CSV_LINE), ev("5,6,7,8;")]
    start = time.perf_counter()
    out = run(flt, *events)
    assert time.perf_counter() - start < 0.45
    assert out[0].record["d"] == "4" and out[2].record["a"] == "5"
    assert out[1].record["tags"] == ["slow"]


def test_timeout_from_another_thread_uses_the_regex_module() -> None:
    flt = GrokFilter(match={"message": CSV_PATTERN}, timeout_millis=200)
    result: list[list[Event]] = []
    thread = threading.Thread(target=lambda: result.append(run(flt, ev(CSV_LINE), ev("1,2,3,4;"))))
    thread.start()
    thread.join(10)
    slow, fast = result[0]
    assert slow.record["tags"] == ["_groktimeout"]
    assert fast.record["c"] == "3"


def test_timeout_zero_disables_the_budget() -> None:
    flt = GrokFilter(match={"message": "%{INT:n}"}, timeout_millis=0)
    assert flt.timeout is None
    (out,) = run(flt, ev("1"))
    assert out.record["n"] == "1"


# -- configuration errors ------------------------------------------------------------------


def test_unknown_pattern_is_a_config_error_on_match() -> None:
    with pytest.raises(ConfigError) as info:
        GrokFilter(match={"message": "%{IP:ip} %{NOTAPATTERN:x}"})
    assert info.value.setting == "match"
    assert "unknown pattern %{NOTAPATTERN}" in info.value.message
    assert "position 9" in info.value.message


def test_broken_inline_definition_points_at_pattern_definitions() -> None:
    with pytest.raises(ConfigError) as info:
        GrokFilter(match={"message": "%{MINE:x}"}, pattern_definitions={"MINE": "[a-"})
    assert info.value.setting == "pattern_definitions"
    assert "pattern MINE" in info.value.message


def test_missing_match() -> None:
    with pytest.raises(ConfigError) as info:
        GrokFilter()
    assert info.value.setting == "match"


def test_bad_match_shape() -> None:
    with pytest.raises(ConfigError, match="hash of field => pattern"):
        GrokFilter(match=42)


def test_bad_ecs_value() -> None:
    with pytest.raises(ConfigError) as info:
        GrokFilter(match={"message": "%{INT}"}, ecs_compatibility="v2")
    assert info.value.setting == "ecs_compatibility"


def test_the_core_does_not_see_the_pattern_map_as_tag_globs() -> None:
    assert GrokFilter(match={"message": "%{INT}"}).tag_patterns() is None
    assert GrokFilter(match={"message": "%{INT}"}, match_tag=["app.*"]).tag_patterns() == ["app.*"]


# -- Fluentd forms -------------------------------------------------------------------------


def test_fluentd_format_apache2_with_tag_globs() -> None:
    flt = GrokFilter(format="apache2", match=["web.**"])
    assert flt.tag_patterns() == ["web.**"]
    (out,) = run(flt, ev(APACHE))
    assert out.record["method"] == "GET" and out.record["code"] == 200 and out.record["size"] == 203023


def test_fluentd_parse_sections() -> None:
    (out,) = run(GrokFilter(parse={"@type": "grok", "grok_pattern": "%{INT:n:int}"}), ev("x 5"))
    assert out.record["n"] == 5
    (out,) = run(GrokFilter(parse={"@type": "regexp", "expression": r"/^(?<k>\w+)=(?<v>\w+)$/"}), ev("a=b"))
    assert out.record["k"] == "a" and out.record["v"] == "b"
    (out,) = run(GrokFilter(parse={"@type": "nginx"}, key_name="log"),
                 ev(log='1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 612 "-" "curl"'))
    assert out.record["remote"] == "1.2.3.4" and out.record["code"] == 200


def test_fluentd_regexp_format() -> None:
    (out,) = run(GrokFilter(format=r"/^(?<level>[A-Z]+) (?<rest>.*)$/"), ev("WARN disk"))
    assert out.record["level"] == "WARN" and out.record["rest"] == "disk"


def test_fluentd_unknown_format() -> None:
    with pytest.raises(ConfigError) as info:
        GrokFilter(format="apache3")
    assert info.value.setting == "format"
    assert "did you mean 'apache'" in info.value.message


def test_nested_captures_merge_into_existing_objects() -> None:
    flt = GrokFilter(match={"message": "%{WORD:[http][method]} %{INT:[source][port]:int}"})
    (out,) = run(flt, ev("GET 80", http={"version": "1.1"}, source="a string"))
    assert out.record["http"] == {"version": "1.1", "method": "GET"}
    assert out.record["source"] == "a string"  # not an object: left alone, as Logstash leaves it


def test_single_and_general_paths_agree() -> None:
    single = GrokFilter(match={"message": "%{HTTPD_COMBINEDLOG}"}, ecs_compatibility="v1")
    general = GrokFilter(match={"message": "%{HTTPD_COMBINEDLOG}", "other": "%{INT:n}"}, ecs_compatibility="v1")
    (a,) = run(single, ev(APACHE, tags=["x"]))
    (b,) = run(general, ev(APACHE, tags=["x"]))
    assert a.record == b.record and a.record["http"]["response"]["status_code"] == 200


@pytest.mark.timeout(60, method="thread")
async def test_a_pathological_line_does_not_hold_a_running_pipeline(state_dir: str) -> None:
    """In the event loop (the main thread), the watchdog bounds the stuck event and the rest flows."""
    source = ScriptedInput(batches=[[{"message": "1,2,3,4;"}, {"message": CSV_LINE}], [{"message": "5,6,7,8;"}]])
    sink = CollectOutput()
    flt = GrokFilter(match={"message": CSV_PATTERN}, timeout_millis=300)
    started = time.perf_counter()
    assert await Pipeline(inputs=[source], filters=[flt], outputs=[sink], state_dir=state_dir).run() == 0
    assert time.perf_counter() - started < 3.0
    by_text = {e.record["message"] if isinstance(e.record["message"], str) else "?": e for e in sink.events}
    assert by_text[CSV_LINE].record["tags"] == ["_groktimeout"]
    assert by_text["1,2,3,4;"].record["a"] == "1" and by_text["5,6,7,8;"].record["d"] == "8"


async def test_explain_failures_says_where_the_line_diverged(state_dir: str) -> None:
    from logpipe import CallbackOutput, Pipeline

    seen = CallbackOutput()
    config = """filter { grok { id => "g" explain_failures => true
      match => { "message" => ["%{IP:ip} %{WORD:verb} %{NUMBER:n}", "%{WORD:w}=%{INT:i}"] } } }"""
    async with Pipeline.from_string(config, outputs=[seen], state_dir=state_dir) as pipeline:
        ack = await pipeline.emit_many("t", [{"message": "10.0.0.1 GET many"}, {"message": "10.0.0.1 GET 5"}])
        await pipeline.delivered(ack)
        stats = pipeline.stats()["filters"]["g"]
    failed, ok = seen.events
    why = failed.meta["_parse_failure"]
    assert why["plugin"] == "g"
    assert why["pattern"] == "%{IP:ip} %{WORD:verb} %{NUMBER:n}"  # the pattern that got furthest
    assert why["expected"] == "%{NUMBER:n}" and why["column"] == 14 and why["consumed"] == "10.0.0.1 GET "
    assert "_parse_failure" not in ok.meta and "_parse_failure" not in failed.record
    assert stats["recent_failures"] == ["10.0.0.1 GET many"]


def test_failures_are_not_explained_unless_asked() -> None:
    from logpipe.event import Event
    from logpipe_plugins.filters.grok import GrokFilter

    f = GrokFilter(match={"message": "%{INT:i}"})
    [ev] = f.filter([Event("t", None, {"message": "x"})])
    assert "_parse_failure" not in ev.meta and ev.record["tags"] == ["_grokparsefailure"]
    assert list(f.recent_failures) == ["x"]


def test_patterns_dir_missing_is_warned_globbed_and_implicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    flt = GrokFilter(match={"message": "%{WORD:w}"}, patterns_dir=[str(tmp_path / "absent")])
    assert "does not exist" in caplog.text
    assert flt.filter([Event("t", 0, {"message": "hi"})])[0].record["w"] == "hi"
    (tmp_path / "a.grok").write_text("APPID [a-z]+-\\d+\n")
    (tmp_path / "b.txt").write_text("LEVEL NOPE\n")
    globbed = GrokFilter(match={"message": "%{APPID:app}"}, patterns_dir=[str(tmp_path / "*.grok")])
    assert globbed.filter([Event("t", 0, {"message": "web-1"})])[0].record["app"] == "web-1"
    home = tmp_path / "home"
    (home / "patterns").mkdir(parents=True)
    (home / "patterns" / "site").write_text("SITEID site_\\d+\n")
    monkeypatch.setenv("LOGPIPE_HOME", str(home))
    implicit = GrokFilter(match={"message": "%{SITEID:site}"})
    assert implicit.filter([Event("t", 0, {"message": "site_7"})])[0].record["site"] == "site_7"


def test_per_pattern_match_counters() -> None:
    from logpipe.event import Event
    from logpipe.metrics import REGISTRY
    from logpipe_plugins.filters.grok import GrokFilter

    def hits(**labels: str) -> float:
        return REGISTRY.value("logpipe_filter_grok_pattern_matches_total", **labels)

    f = GrokFilter(id="pp", match={"message": ["%{INT:i}", "%{WORD:w}"]})
    f.filter([Event("t", None, {"message": m}) for m in ("12", "abc", "def", "!!")])
    assert hits(filter="pp", field="message", pattern="%{INT:i}") == 1
    assert hits(filter="pp", field="message", pattern="%{WORD:w}") == 2
    single = GrokFilter(id="one", match={"message": "%{INT:i}"})
    single.filter([Event("t", None, {"message": "5"})])
    assert hits(filter="one", field="message", pattern="%{INT:i}") == 1
