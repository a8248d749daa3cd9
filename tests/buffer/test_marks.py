"""Durable marks of stored tail lines (logpipe/buffer/marks.py): what is skipped when read
again, and — the side that must never fail — what is not."""

from __future__ import annotations

from pathlib import Path

from logpipe.buffer.marks import StoredMarks
from logpipe.event import Event


def _lines(ino: int, fp: str, ends: range, tag: str = "app") -> list[Event]:
    return [Event(tag, 1, {"message": str(end)}, {"_origin": (ino, fp, end)}) for end in ends]


def test_lines_stored_are_skipped_after_a_restart_and_others_are_not(tmp_path: Path) -> None:
    marks = StoredMarks(str(tmp_path / "stored.marks"))
    marks.note(_lines(7, "fp-a", range(300, 1000, 100)))
    data = marks.snapshot()
    assert data is not None and marks.snapshot() is None  # written once per change
    marks.write(data)

    again = StoredMarks(str(tmp_path / "stored.marks"))
    again.load()
    read_again = _lines(7, "fp-a", range(300, 1300, 100))
    assert [e.record["message"] for e in again.skip(read_again)] == ["1000", "1100", "1200"]
    # Another file (inode), another tag, a rewritten file (other first bytes), or lines
    # within the first 255 bytes: never skipped.
    assert len(again.skip(_lines(8, "fp-a", range(300, 1000, 100)))) == 7
    assert len(again.skip(_lines(7, "fp-a", range(300, 1000, 100), tag="other"))) == 7
    assert len(again.skip(_lines(7, "fp-b", range(300, 1000, 100)))) == 7
    assert len(again.skip(_lines(7, "fp-a", range(40, 255, 40)))) == 6


def test_a_damaged_marks_file_means_no_marks(tmp_path: Path) -> None:
    path = tmp_path / "stored.marks"
    path.write_bytes(b"\xc1 not msgpack")
    marks = StoredMarks(str(path))
    marks.load()
    assert len(marks.skip(_lines(7, "fp-a", range(300, 1000, 100)))) == 7
