"""CRI and docker json-file decoding: partial joins per stream, times, caps, failures, hold offsets."""

from __future__ import annotations

from itertools import accumulate

import orjson

from logpipe.helpers.container_log import ContainerDecoder, ContainerFormat, Decoded, TimeParser


def feed(dec: ContainerDecoder, lines: list[str], start: int = 0) -> Decoded:
    ends = list(accumulate((len(x.encode()) + 1 for x in lines), initial=start))[1:]
    out = Decoded()
    dec.feed(lines, start, ends, None, out)
    return out


def docker(log: str, stream: str = "stdout", t: str = "2024-05-01T10:00:00.123456789Z") -> str:
    return orjson.dumps({"log": log, "stream": stream, "time": t}).decode()


def test_time_parser_keeps_nanoseconds_and_offsets() -> None:
    parse = TimeParser()
    assert parse("2024-05-01T10:00:00.123456789Z") == 1714557600_123456789
    assert parse("2024-05-01T10:00:00Z") == 1714557600_000000000
    assert parse("2024-05-01T12:00:00.5+02:00") == 1714557600_500000000
    assert parse("2024-05-01T10:00:00.1234567891Z") == 1714557600_123456789  # digits past ns dropped
    assert parse("not a time") is None
    assert parse("2024-05-01T10:00:00.12a4Z") is None
    assert parse("2024-13-01T10:00:00Z") is None


def test_cri_full_lines_and_partials_joined_per_stream() -> None:
    dec = ContainerDecoder(ContainerFormat("cri", message_key="log"))
    lines = [
        "2024-05-01T10:00:00.000000001Z stdout F hello",
        "2024-05-01T10:00:00.000000002Z stdout P part one, ",
        "2024-05-01T10:00:00.000000003Z stderr F an error",
        "2024-05-01T10:00:00.000000004Z stdout P part two, ",
    ]
    out = feed(dec, lines)
    assert [r["log"] for r in out.records] == ["hello", "an error"]
    assert out.times == [1714557600_000000001, 1714557600_000000003]
    assert [r["stream"] for r in out.records] == ["stdout", "stderr"]
    # the unfinished stdout group starts at line 2: nothing from there on may be committed
    assert dec.hold == len(lines[0]) + 1
    end_of_4 = sum(len(x) + 1 for x in lines)
    more = feed(dec, ["2024-05-01T10:00:00.000000005Z stdout F end"], start=end_of_4)
    assert more.records == [{"log": "part one, part two, end", "stream": "stdout"}]
    assert more.times == [1714557600_000000002]  # the group's first piece
    assert more.starts == [len(lines[0]) + 1]
    assert dec.hold is None


def test_cri_empty_message_and_extra_tags() -> None:
    dec = ContainerDecoder(ContainerFormat("cri"))
    out = feed(dec, ["2024-05-01T10:00:00Z stdout F ", "2024-05-01T10:00:00Z stdout F",
                     "2024-05-01T10:00:00Z stdout F:x tagged"])
    assert [r["message"] for r in out.records] == ["", "", "tagged"]


def test_invalid_lines_pass_on_tagged_and_counted() -> None:
    failures: list[int] = []
    dec = ContainerDecoder(ContainerFormat("cri"), on_failure=lambda: failures.append(1))
    out = feed(dec, ["garbage line", "2024-05-01T10:00:00Z stdlog F x", "2024-05-01T10:00:00Z stdout X y",
                     "2024-05-01T10:00:00Z stdout F ok"])
    assert [r.get("tags") for r in out.records] == [["_containerparsefailure"]] * 3 + [None]
    assert out.records[0]["message"] == "garbage line"
    assert len(failures) == 3


def test_joined_size_cap_truncates_and_tags() -> None:
    dec = ContainerDecoder(ContainerFormat("cri", max_size=10))
    out = feed(dec, ["2024-05-01T10:00:00Z stdout P 123456", "2024-05-01T10:00:00Z stdout P 789abc",
                     "2024-05-01T10:00:00Z stdout F def", "2024-05-01T10:00:00Z stdout F 0123456789xyz"])
    assert out.records == [
        {"message": "123456789a", "stream": "stdout", "tags": ["_linetruncated"]},
        {"message": "0123456789", "stream": "stdout", "tags": ["_linetruncated"]},
    ]


def test_docker_16k_splits_join_per_stream() -> None:
    dec = ContainerDecoder(ContainerFormat("docker", message_key="log"))
    piece = "x" * 16384
    out = feed(dec, [docker(piece), docker("err\n", "stderr"), docker(piece), docker("tail\n"),
                     docker("single\n")])
    assert [r["log"] for r in out.records] == ["err", piece + piece + "tail", "single"]
    assert out.times[0] == 1714557600_123456789
    assert feed(dec, ['{"log": 1}', "not json"]).records[0]["tags"] == ["_containerparsefailure"]


def test_auto_detects_each_files_format() -> None:
    cri = ContainerDecoder(ContainerFormat("auto"))
    assert feed(cri, ["2024-05-01T10:00:00Z stdout F a"]).records[0]["message"] == "a"
    assert cri.mode == "cri"
    dock = ContainerDecoder(ContainerFormat("auto"))
    assert feed(dock, [docker("b\n")]).records[0]["message"] == "b"
    assert dock.mode == "docker"


def test_json_mode_merges_docker_and_passes_other_objects() -> None:
    dec = ContainerDecoder(ContainerFormat("json", message_key="log"))
    out = feed(dec, [docker("a"), docker("b\n"), '{"level": "info"}', "[1]"])
    assert out.records[0] == {"log": "ab", "stream": "stdout"}
    assert out.records[1] == {"level": "info"}
    assert out.records[2] == {"message": "[1]", "tags": ["_jsonparsefailure"]}


def test_flush_emits_unfinished_groups_ending_at_their_last_piece() -> None:
    dec = ContainerDecoder(ContainerFormat("cri"))
    lines = ["2024-05-01T10:00:00Z stdout P never finished"]
    feed(dec, lines)
    out = Decoded()
    dec.flush(out, older_than=3600)
    assert not out.records and dec.pending
    dec.flush(out)
    assert out.records == [{"message": "never finished", "stream": "stdout"}]
    assert out.ends == [len(lines[0]) + 1]
    assert dec.hold is None
