"""End to end, as an operator runs it: a real `logpipe run` process tails a file into the
Elasticsearch stand-in, and is killed, starved or stopped on the way (ARCHITECTURE.md, "Delivery"
and "Buffers, retries, dead letters"; issue 5, "Show").

The document `_id` is the SHA1 of the line (fingerprint filter, Logstash's recipe), so
every line has one known id: the assertions compare the exact set of ids and of lines with
what was written. One variant uses the output's own generated id instead, which must be
just as stable when tail reads a line again. The stand-in's count of index operations
against its count of documents tells how many replayed duplicates the ids absorbed.
Synchronisation is on the stand-in's counters, tail's committed position and the
process's read offset, polled with deadlines; RSS is VmRSS from /proc.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.e2e import (
    LogpipeProcess,
    StandInThread,
    append_lines,
    committed_offset,
    wait_until,
    write_config,
)

INDEX = "e2e"
MIB = 1024  # RSS figures are in KiB


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def assert_exactly(state_messages: dict[str, str], lines: list[str]) -> None:
    """Every line indexed once, under its own id, and nothing else."""
    assert len(state_messages) == len(lines)
    assert set(state_messages.values()) == set(lines)
    assert state_messages == {sha1(line): line for line in lines}


@pytest.fixture
def standin() -> Iterator[StandInThread]:
    server = StandInThread()
    yield server
    server.close()


@pytest.fixture(params=[1, 2], ids=["workers1", "workers2"])
def workers(request: pytest.FixtureRequest) -> int:
    """Every scenario runs with the single-process pipeline and with two worker processes
    (logpipe/workers): the delivery contract is the same."""
    return int(request.param)


@pytest.fixture
def processes() -> Iterator[list[LogpipeProcess]]:
    """Every logpipe process a test starts; any still running at the end is killed."""
    started: list[LogpipeProcess] = []
    yield started
    for proc in started:
        proc.ensure_stopped()


def test_kill9_during_file_buffered_run_then_restart_indexes_every_line_once(
        tmp_path: Path, standin: StandInThread, processes: list[LogpipeProcess], workers: int) -> None:
    n = 30_000
    log, sincedb, state = tmp_path / "app.log", tmp_path / "sincedb", tmp_path / "state"
    lines = append_lines(log, 0, n)
    config = write_config(tmp_path / "pipeline.conf", log=log, sincedb=sincedb, es_url=standin.url, index=INDEX,
                          buffer="file", extra_output="chunk_limit_records => 500\n    bulk_max_docs => 500")
    standin.set_delay(0.02)  # ~25k docs/s at most: the test can catch the run part-way
    first = LogpipeProcess(config, state, tmp_path / "logpipe.err", workers=workers)
    processes.append(first)

    wait_until(lambda: standin.doc_count() >= n // 3, 30, "a third of the lines indexed", first)
    # From now on a bulk request is indexed but its reply withheld, so the kill lands
    # between "stored in Elasticsearch" and "removed from the file buffer".
    standin.hold_replies()
    wait_until(lambda: standin.held()[0] >= 1, 10, "a bulk request indexed with its reply held", first)
    # The file buffer acknowledges what it has fsynced and tail commits only acknowledged
    # bytes: once the whole file is committed, the unindexed lines exist only in the buffer.
    wait_until(lambda: committed_offset(sincedb, log) == log.stat().st_size, 10,
               "tail to commit the whole file (all lines stored in the file buffer)", first)
    indexed_at_kill = standin.doc_count()
    first.kill9()
    _, held_items = standin.held()
    standin.release_replies()
    standin.set_delay(0)
    assert n // 3 <= indexed_at_kill < n, "the kill must land part-way"
    assert held_items > 0

    second = LogpipeProcess(config, state, tmp_path / "logpipe.err", workers=workers)
    processes.append(second)
    wait_until(lambda: standin.doc_count() >= n, 30, f"all {n} lines indexed after the restart", second)
    final = standin.wait_quiet(INDEX, quiet=0.5, timeout=20)

    assert_exactly(final.messages, lines)
    # The held request's documents were indexed, never acknowledged, and replayed from
    # the buffer after the restart: absorbed as rewrites of the same ids.
    assert final.duplicates_absorbed >= held_items
    print(f"\nkill -9: {n} lines, {indexed_at_kill} indexed at the kill, {final.operations} index operations, "
          f"{final.duplicates_absorbed} duplicates absorbed ({held_items} in the held request), "
          f"{final.docs} documents")
    code, _ = second.terminate(15)
    assert code == 0, second.stderr_tail()


@pytest.mark.parametrize("ids", ["fingerprint_id", "generated_id"])
def test_kill9_before_positions_are_saved_rereads_without_duplicate_documents(
        tmp_path: Path, standin: StandInThread, processes: list[LogpipeProcess], ids: str,
        workers: int) -> None:
    """Tail saves positions every sincedb_write_interval: a kill -9 in between makes it read
    again lines that are already indexed. Their ids must be the ones they had."""
    n = 30_000
    log, sincedb, state = tmp_path / "app.log", tmp_path / "sincedb", tmp_path / "state"
    lines = append_lines(log, 0, n)
    config = write_config(tmp_path / "pipeline.conf", log=log, sincedb=sincedb, es_url=standin.url, index=INDEX,
                          buffer="file", extra_output="chunk_limit_records => 500\n    bulk_max_docs => 500",
                          extra_input='sincedb_write_interval => "30s"', fingerprint_id=ids == "fingerprint_id")
    standin.set_delay(0.02)
    first = LogpipeProcess(config, state, tmp_path / "logpipe.err", workers=workers)
    processes.append(first)
    wait_until(lambda: standin.doc_count() >= n // 3, 30, "a third of the lines indexed", first)
    first.kill9()
    indexed_at_kill = standin.doc_count()
    standin.set_delay(0)
    assert indexed_at_kill < n, "the kill must land part-way"
    assert committed_offset(sincedb, log) == 0, "no position saved yet: everything is read again"

    second = LogpipeProcess(config, state, tmp_path / "logpipe.err", workers=workers)
    processes.append(second)
    wait_until(lambda: standin.doc_count() >= n, 30, f"all {n} lines indexed after the restart", second)
    final = standin.wait_quiet(INDEX, quiet=0.5, timeout=20)
    print(f"\nkill -9 before a position save ({ids}): {n} lines, {indexed_at_kill} indexed at the kill, "
          f"{final.operations} index operations, {final.docs} documents, "
          f"{final.duplicates_absorbed} duplicates absorbed")
    per_line = Counter(final.messages.values())
    assert set(per_line) == set(lines)
    assert sorted(set(per_line.values())) == [1], f"{sum(per_line.values()) - n} duplicate documents"
    # The lines read again that the file buffer had stored are skipped (its durable marks,
    # logpipe/buffer/marks.py); what is sent again is at most the chunk being written at the
    # kill (chunk_limit_records 500, one flush worker), under the same ids. Before the marks
    # every line indexed before the kill was sent again.
    assert final.duplicates_absorbed <= 500 < indexed_at_kill
    if ids == "fingerprint_id":
        assert_exactly(final.messages, lines)
    code, _ = second.terminate(15)
    assert code == 0, second.stderr_tail()


@pytest.mark.parametrize("outage", ["connection_refused", "http_503"])
def test_outage_with_block_keeps_memory_bounded_and_loses_nothing(
        tmp_path: Path, standin: StandInThread, processes: list[LogpipeProcess], outage: str,
        workers: int) -> None:
    width, warmup, per_round, held_rounds = 200, 5_000, 12_000, 5
    log = tmp_path / "app.log"
    lines = append_lines(log, 0, warmup, width)
    config = write_config(tmp_path / "pipeline.conf", log=log, sincedb=tmp_path / "sincedb", es_url=standin.url,
                          index=INDEX, buffer="memory",
                          extra_output='overflow_action => block\n    total_limit_size => "2MB"\n'
                                       '    chunk_limit_size => "1MB"')
    proc = LogpipeProcess(config, tmp_path / "state", tmp_path / "logpipe.err", workers=workers)
    processes.append(proc)
    wait_until(lambda: standin.doc_count() >= warmup, 30, "the warm-up lines indexed", proc)
    baseline = proc.rss_kib()

    if outage == "connection_refused":
        standin.go_down()
    else:
        standin.refuse_bulk(503)

    def append_round() -> None:
        lines.extend(append_lines(log, len(lines), per_round, width))

    # Lines keep coming during the outage, 2.4 MB each half second. Held in memory they
    # would take ~1.4 KB of RSS each (measured with total_limit_size 1GB: +28 MB per
    # 20,000 lines). First until the pipeline is full: tail's read offset (its descriptor's
    # position, from /proc) stops moving although the file keeps growing.
    fill_peaks: list[int] = []
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, f"tail never blocked; RSS {fill_peaks} KiB\n{proc.stderr_tail()}"
        append_round()
        read_before = proc.read_offset(log)
        fill_peaks.append(proc.peak_rss_kib(0.5))
        read_after = proc.read_offset(log)
        if read_before == read_after and read_after is not None and read_after < log.stat().st_size:
            break
    # Then with the pipeline full: nothing more may be read, and memory must stay flat.
    held_peaks = []
    for _ in range(held_rounds):
        append_round()
        held_peaks.append(proc.peak_rss_kib(0.5))
    assert proc.read_offset(log) == read_after, "tail kept reading while the output was blocked"
    assert standin.doc_count() == warmup, "nothing can be indexed during the outage"
    if outage == "http_503":
        assert standin.request_status_count(503) > 0

    series = (f"baseline {baseline // MIB} MiB, filling {[p // MIB for p in fill_peaks]} MiB, "
              f"full {[p // MIB for p in held_peaks]} MiB")
    unread = log.stat().st_size - read_after
    print(f"\n{outage}: {len(lines)} lines, {unread / 1e6:.1f} MB left unread by backpressure; RSS {series}")
    # Bounded: the 2 MB buffer plus the bounded queue between tail and the outputs.
    assert max(fill_peaks + held_peaks) - baseline < 64 * MIB, series
    # Flat once full: garbage left by each failed retry shows as growth here. A correct
    # run stays within a few hundred KiB.
    assert max(held_peaks) - max(fill_peaks) < 4 * MIB, series

    if outage == "connection_refused":
        standin.come_back()
    else:
        standin.accept_bulk()
    wait_until(lambda: standin.doc_count() >= len(lines), 60, "every line indexed after the outage", proc)
    final = standin.wait_quiet(INDEX, quiet=0.3, timeout=20)
    assert_exactly(final.messages, lines)
    code, _ = proc.terminate(15)
    assert code == 0, proc.stderr_tail()


def test_sigterm_during_outage_exits_in_time_and_restart_delivers_everything(
        tmp_path: Path, standin: StandInThread, processes: list[LogpipeProcess], workers: int) -> None:
    shutdown_timeout, before, during = 2.0, 3_000, 3_000
    log, sincedb, state = tmp_path / "app.log", tmp_path / "sincedb", tmp_path / "state"
    lines = append_lines(log, 0, before)
    config = write_config(tmp_path / "pipeline.conf", log=log, sincedb=sincedb, es_url=standin.url, index=INDEX,
                          buffer="memory")
    first = LogpipeProcess(config, state, tmp_path / "logpipe.err", shutdown_timeout=shutdown_timeout,
                           workers=workers)
    processes.append(first)
    wait_until(lambda: standin.doc_count() >= before, 30, "the first lines indexed", first)

    standin.refuse_bulk(503)
    refused_before = standin.request_status_count(503)
    lines += append_lines(log, before, during)
    # The new lines are in the memory buffer, being retried.
    wait_until(lambda: standin.request_status_count(503) >= refused_before + 2, 10,
               "the new lines to be refused twice", first)
    code, took = first.terminate(shutdown_timeout + 10)
    assert took < shutdown_timeout + 3, f"stopping took {took:.1f}s"
    assert code == 0, first.stderr_tail()
    assert "Traceback" not in first.stderr_tail(100_000)
    assert standin.doc_count() == before
    # Only acknowledged bytes are committed: the refused lines are not.
    assert committed_offset(sincedb, log) < log.stat().st_size

    standin.accept_bulk()
    second = LogpipeProcess(config, state, tmp_path / "logpipe.err", workers=workers)
    processes.append(second)
    wait_until(lambda: standin.doc_count() >= len(lines), 30, "every line indexed after the restart", second)
    final = standin.wait_quiet(INDEX, quiet=0.3, timeout=20)
    assert_exactly(final.messages, lines)
    print(f"\nSIGTERM in an outage: exited {code} in {took:.2f}s (timeout {shutdown_timeout}s); "
          f"{len(lines)} lines, {final.operations} index operations, {final.duplicates_absorbed} duplicates absorbed")
    code, _ = second.terminate(15)
    assert code == 0, second.stderr_tail()
