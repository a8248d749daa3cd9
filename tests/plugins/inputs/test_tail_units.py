"""Unit tests of the tail input's helpers: splitting, ack windows, multiline, parsers, paths."""

from __future__ import annotations

import os

import pytest

from logpipe.errors import ConfigError
from logpipe.helpers.multiline import Multiline, MultilineSpec
from logpipe.helpers.parser import make_parser
from logpipe.metrics import PluginMetrics
from logpipe_plugins.inputs.tail.acks import AckWindow
from logpipe_plugins.inputs.tail.lines import LineSplitter
from logpipe_plugins.inputs.tail.paths import PathMatcher, expand_braces, split_paths, tag_for
from logpipe_plugins.inputs.tail.positions import Position, load_positions, save_positions


def test_splitter_keeps_partial_line_across_chunks() -> None:
    s = LineSplitter(100)
    assert s.feed(b"ab") == ([], 0, False)
    assert s.feed(b"c\nde\nf") == ([b"abc", b"de"], 0, False)
    assert s.pending_bytes == 1
    assert s.feed(b"\n") == ([b"f"], 0, False)


def test_splitter_bounds_an_overlong_partial_line_and_counts_dropped_bytes() -> None:
    s = LineSplitter(4)
    s.feed(b"abcdef")
    s.feed(b"ghij")
    assert s.pending_bytes == 10
    assert len(s.rest) == 4
    lines, extra, overlong = s.feed(b"kl\nok\n")
    assert lines == [b"abcd", b"ok"] and overlong
    # raw length of the first line: 4 kept + 8 dropped + its newline
    assert len(lines[0]) + extra + 1 == len(b"abcdefghijkl\n")


def test_ack_window_commits_only_the_contiguous_done_prefix() -> None:
    changes: list[int] = []

    def record() -> None:
        changes.append(w.committed)

    w = AckWindow(0, record)
    a, b, c = w.push(10), w.push(20), w.push(30)
    c()
    b()
    assert w.committed == 0
    a()
    assert w.committed == 30 and changes == [30]
    w.advance(35)
    assert w.committed == 35


def test_ack_window_skipped_bytes_wait_for_earlier_batches() -> None:
    w = AckWindow(0, lambda: None)
    a = w.push(10)
    w.advance(15)
    assert w.committed == 0
    a()
    assert w.committed == 15


def _lens(lines: list[str]) -> list[int]:
    return [len(x) + 1 for x in lines]


def test_multiline_previous_joins_indented_lines_and_holds_the_last_event() -> None:
    m = Multiline(MultilineSpec(pattern=r"^\s", what="previous"))
    lines = ["Exception: x", "  at a", "  at b", "next event", "  at c"]
    out, consumed = m.feed(lines, _lens(lines))
    assert out == [("Exception: x\n  at a\n  at b", ["multiline"])]
    assert consumed == [sum(_lens(lines[:3]))]
    assert m.pending_raw == sum(_lens(lines[3:]))
    assert m.flush() == ([("next event\n  at c", ["multiline"])], [sum(_lens(lines[3:]))])


def test_multiline_next_with_negate_false() -> None:
    m = Multiline(MultilineSpec(pattern=r"\\$", what="next"))
    lines = ["a \\", "b \\", "c", "d"]
    out, consumed = m.feed(lines, _lens(lines))
    assert out == [("a \\\nb \\\nc", ["multiline"]), ("d", None)]
    assert consumed == [sum(_lens(lines[:3])), len("d") + 1]
    assert not m.pending


def test_multiline_negate_and_max_lines() -> None:
    m = Multiline(MultilineSpec(pattern=r"^\d{4}-", negate=True, what="previous", max_lines=3))
    lines = ["2024-01-01 start", "x", "y", "z", "2024-01-02 other"]
    out, _ = m.feed(lines, _lens(lines))
    assert out[0] == ("2024-01-01 start\nx\ny", ["multiline", "multiline_codec_max_lines_reached"])
    assert out[1] == ("z", None)


class _Owner:
    """The plugin a parser counts for: its metrics carry `input="t"`."""

    kind = "input"
    id = "t"


def test_json_parser_keeps_bad_lines_as_message() -> None:
    metrics = PluginMetrics(_Owner())
    parse = make_parser("json", metrics)
    assert parse(['{"a": 1}', "not json", "[1]"]) == [
        {"a": 1},
        {"message": "not json", "tags": ["_jsonparsefailure"]},
        {"message": "[1]", "tags": ["_jsonparsefailure"]},
    ]
    (failures,) = metrics.declared
    assert (failures.name, failures.labels, failures.value) == ("logpipe_input_parse_failures_total",
                                                                 {"format": "json"}, 2)


def test_regexp_format_with_fluentd_named_groups() -> None:
    parse = make_parser("/^(?<verb>[A-Z]+) (?<path>\\S+)$/", PluginMetrics(_Owner()))
    assert parse(["GET /x", "nope"]) == [
        {"verb": "GET", "path": "/x"},
        {"message": "nope", "tags": ["_regexparsefailure"]},
    ]


def test_bad_regexp_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        make_parser("/(unclosed/", PluginMetrics(_Owner()))
    assert err.value.setting == "format"


def test_paths_split_braces_and_tags(tmp_path) -> None:
    assert split_paths(["/a/{x,y}.log,/b.log"]) == ["/a/{x,y}.log", "/b.log"]
    assert expand_braces("/a/{x,y}.{log,txt}") == ["/a/x.log", "/a/x.txt", "/a/y.log", "/a/y.txt"]
    assert tag_for("app.*", "/var/log/a.log") == "app.var.log.a.log"
    for name in ("a.log", "b.log", "c.gz"):
        (tmp_path / name).write_text("")
    matcher = PathMatcher([str(tmp_path / "*")], ["*.gz"])
    assert matcher.scan() == [str(tmp_path / "a.log"), str(tmp_path / "b.log")]


def test_positions_round_trip_and_corrupt_file(tmp_path) -> None:
    path = str(tmp_path / "pos")
    save_positions(path, [Position("/x", 1, 2, 30, "abcd", 4)])
    assert load_positions(path) == {(1, 2): Position("/x", 1, 2, 30, "abcd", 4)}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".pos-")]
    (tmp_path / "pos").write_bytes(b"{garbage")
    assert load_positions(path) == {}
