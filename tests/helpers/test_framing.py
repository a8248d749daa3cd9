"""Framers: newline with limits, octet counting, per-connection detection."""

from __future__ import annotations

import pytest

from logpipe.helpers.framing import FrameError, LineFramer, OctetCountFramer, SyslogFramer


def test_lines_across_reads_and_cr_nul() -> None:
    f = LineFramer(100, nul_too=True)
    assert f.feed(b"one\r\ntw") == [b"one"]
    assert f.held == 2
    assert f.feed(b"o\x00three\n") == [b"two", b"three"]
    assert f.flush() == []


def test_oversized_line_is_skipped_to_the_next_delimiter() -> None:
    f = LineFramer(10)
    assert f.feed(b"x" * 30) == []
    assert f.held == 0 and f.oversized == 1
    assert f.feed(b"xxxx\nok\n") == [b"ok"]
    assert f.feed(b"y" * 11 + b"\nfine\n") == [b"fine"]
    assert f.oversized == 2


def test_custom_delimiter() -> None:
    f = LineFramer(100, delimiter=b"||")
    assert f.feed(b"a||b||c") == [b"a", b"b"]
    assert f.flush() == [b"c"]


def test_octet_counting() -> None:
    f = OctetCountFramer(100)
    assert f.feed(b"5 hello3 ab") == [b"hello"]
    assert f.feed(b"c\n4 a\nb\n") == [b"abc", b"a\nb\n"]


@pytest.mark.parametrize(("data", "reason"), [(b"101 x", "oversized"), (b"12a x", "bad_frame"),
                                              (b"99999999 x", "bad_frame")])
def test_octet_errors(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        OctetCountFramer(100).feed(data)
    assert err.value.reason == reason


def test_detection_per_connection() -> None:
    assert SyslogFramer(100).feed(b"\n7 <13>abc") == [b"<13>abc"]
    assert SyslogFramer(100).feed(b"<13>abc\n<13>d\n") == [b"<13>abc", b"<13>d"]
    with pytest.raises(FrameError):
        SyslogFramer(100, "octet_count").feed(b"<13>abc\n")
