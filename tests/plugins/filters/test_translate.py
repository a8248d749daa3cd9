"""translate filter: vectors derived from logstash-filter-translate's spec (translate_spec.rb)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.translate import TranslateFilter

STATUS = ["200", "OK", "300", "Redirect", "400", "Client Error", "500", "Server Error"]


def one(record: dict[str, Any], **settings: Any) -> dict[str, Any]:
    (ev,) = TranslateFilter(**settings).filter([Event("t", 0, record)])
    return ev.record


def test_exact_and_no_regex() -> None:
    assert one({"status": 200}, source="status", dictionary=STATUS)["translation"] == "OK"
    regexy = ["^2\\d\\d", "OK", "^3\\d\\d", "Redirect"]
    assert "translation" not in one({"status": 200}, source="status", dictionary=regexy)


def test_fuzzy_replaces_inside_the_value() -> None:
    rec = one({"status": "200 & 500"}, source="status", dictionary=STATUS, exact=False)
    assert rec["translation"] == "OK & Server Error"


def test_exact_regex_first_key_that_matches() -> None:
    regexes = ["^2[0-9][0-9]$", "OK", "^3[0-9][0-9]$", "Redirect", "^4[0-9][0-9]$", "Client Error"]
    assert one({"status": "200"}, source="status", dictionary=regexes, regex=True)["translation"] == "OK"
    assert one({"status": "x 404"}, source="status", dictionary=["4\\d\\d", "E"], regex=True)["translation"] == "E"


def test_fallback_plain_and_sprintf() -> None:
    assert one({"status": "204"}, source="status", dictionary=STATUS, fallback="no match")["translation"] == "no match"
    rec = one({"status": "204", "missing_translation": "missing"}, source="status", dictionary=STATUS,
              fallback="%{missing_translation} no match")
    assert rec["translation"] == "missing no match"


def _write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def test_dictionary_files(tmp_path: Path) -> None:
    yml = _write(tmp_path, "dict.yml", 'a : 1\nb : 2\nc : 3\nd : { "e": [1, "hello", true] }\n200: OK\n')
    assert one({"status": "a"}, source="status", dictionary_path=yml)["translation"] == 1
    assert one({"status": "d"}, source="status", dictionary_path=yml)["translation"] == {"e": [1, "hello", True]}
    assert one({"status": 200}, source="status", dictionary_path=yml)["translation"] == "OK"
    js = _write(tmp_path, "dict.json", '{"a": 10, "b": 20}')
    assert one({"status": "b"}, source="status", dictionary_path=js)["translation"] == 20
    cs = _write(tmp_path, "dict.csv", '"a",100\n"b",200\n"c",300\n')
    assert one({"status": "c"}, source="status", dictionary_path=cs)["translation"] == "300"
    omap = _write(tmp_path, "omap.yml", '--- !!omap\n- "nine": "val-9-1|val-9-2"\n- "one": "val-1-1"\n')
    assert one({"status": "nine"}, source="status", dictionary_path=omap)["translation"] == "val-9-1|val-9-2"


def test_bad_dictionary_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must end in"):
        TranslateFilter(source="s", dictionary_path=_write(tmp_path, "dict.other", "a: 1"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        TranslateFilter(source="s", dictionary_path=_write(tmp_path, "bad.yml", "a: [1,\n"))
    with pytest.raises(ConfigError, match="mutually exclusive"):
        TranslateFilter(source="s", dictionary={"a": "b"}, dictionary_path=_write(tmp_path, "d.yml", "a: 1"))
    with pytest.raises(ConfigError, match="requires setting 'source'"):
        TranslateFilter(dictionary={"a": "b"})


@pytest.mark.parametrize("name", ["dict-e.yml", "dict-e.json", "dict-e.csv"])
def test_empty_dictionary_file_falls_back(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, "")
    assert one({"status": "a"}, source="status", dictionary_path=path, fallback="no match")["translation"] == "no match"


def test_iterate_on_values_and_maps() -> None:
    words = {"nine": "val-9", "eight": "val-8", "seven": "val-7", "two": "val-2", "one": "val-1"}
    rec = one({"foo": ["nine", "eight", "ten"]}, iterate_on="foo", source="foo", target="baz", dictionary=words,
              fallback="nooo")
    assert rec["baz"] == ["val-9", "val-8", "nooo"]
    ints = one({"foo": [200, 300, 400]}, iterate_on="foo", source="foo", target="baz", dictionary=STATUS)
    assert ints["baz"] == ["OK", "Redirect", "Client Error"]
    maps = one({"foo": [{"bar": "two"}, {"bar": "one"}, {"bar": 200}]}, iterate_on="foo", source="bar",
               target="baz", dictionary={**words, "200": "OK"})
    assert [m["baz"] for m in maps["foo"]] == ["val-2", "val-1", "OK"]


def test_override_and_in_place() -> None:
    kept = one({"status": "200", "translation": "old"}, source="status", dictionary=STATUS)
    assert kept["translation"] == "old"
    replaced = one({"status": "200", "translation": "old"}, source="status", dictionary=STATUS, override=True)
    assert replaced["translation"] == "OK"
    inplace = one({"foo": "nine"}, source="foo", target="foo", dictionary={"nine": "val-9"})
    assert inplace == {"foo": "val-9"}
    with pytest.raises(ConfigError, match="override => false"):
        TranslateFilter(source="foo", target="foo", override=False, dictionary={"a": "b"})


def test_default_target_legacy_and_ecs() -> None:
    assert one({"message": "foo"}, source="message", dictionary={"foo": "bar"}, ecs_compatibility="disabled") == \
        {"message": "foo", "translation": "bar"}
    assert one({"message": "foo"}, source="message", dictionary={"foo": "bar"}, ecs_compatibility="v1") == \
        {"message": "bar"}


def test_deprecated_field_and_destination(caplog: pytest.LogCaptureFixture) -> None:
    f = TranslateFilter(field="message", destination="bar", dictionary={"foo": "x"})
    assert (f.source, f.target) == ("message", "bar")
    assert "deprecated" in caplog.text


@pytest.mark.parametrize(("behaviour", "after_c"), [("merge", 3), ("replace", "no match")])
def test_refresh_merge_and_replace(tmp_path: Path, behaviour: str, after_c: Any) -> None:
    path = _write(tmp_path, "live.yml", "a : 1\nb : 2\nc : 3")
    f = TranslateFilter(source="status", dictionary_path=path, refresh_interval=1, refresh_behaviour=behaviour,
                        fallback="no match")
    before = [Event("t", 0, {"status": s}) for s in ("b", "c")]
    f.filter(before)
    Path(path).write_text("a : 1\nb : 4")
    os.utime(path, (1, 1))  # a different mtime whatever the clock's resolution
    f._next_check = 0.0  # the interval has passed
    after = [Event("t", 0, {"status": s}) for s in ("b", "c")]
    f.filter(after)
    assert [e.record["translation"] for e in before] == [2, 3]
    assert [e.record["translation"] for e in after] == [4, after_c]


def test_refresh_failure_keeps_previous_dictionary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, "live.json", '{"a": 1}')
    f = TranslateFilter(source="s", dictionary_path=path, refresh_interval=1)
    Path(path).write_text("{broken")
    os.utime(path, (1, 1))
    f._next_check = 0.0
    (ev,) = f.filter([Event("t", 0, {"s": "a"})])
    assert ev.record["translation"] == 1
    assert "keeping the previous dictionary" in caplog.text


def test_add_tag_only_on_translation() -> None:
    f = TranslateFilter(source="s", dictionary={"a": "b"}, add_tag=["tr"])
    hit, miss = f.filter([Event("t", 0, {"s": "a"}), Event("t", 0, {"s": "z"})])
    assert hit.record["tags"] == ["tr"] and "tags" not in miss.record
