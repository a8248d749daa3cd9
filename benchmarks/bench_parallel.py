"""tail → Apache parse → file and → null: logpipe against Fluent Bit and Fluentd, in one run
on the same generated file, each as its own daemon process (issue 9).

Every system runs as a real process from a config of its own; completion is observed from
outside: the lines in the output file (file), logpipe's /stats (null), Fluent Bit's HTTP
metrics (null), Fluentd's pos_file offset (null: out_null takes events synchronously).
Throughput is timed from the first event seen to the last, so process start-up (Ruby's
above all) is not counted; peak RSS is sampled over the whole process tree (Fluentd's
supervisor and worker, logpipe's worker processes) every 100 ms.
A peer that is not installed under /work/peers/bin is skipped, saying so.

    python benchmarks/bench_parallel.py [--lines 500000] [--workers 1 2] [--outputs file null]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench_e2e import make_log

REPO = Path(__file__).resolve().parent.parent
PEERS = Path("/work/peers/bin")
FB_PARSERS = next((p for p in (Path("/work/peers/opt/fluent-bit/etc/fluent-bit/parsers.conf"),
                               Path("/work/peers/src/fluent-bit/conf/parsers.conf")) if p.exists()),
                  Path("/work/peers/opt/fluent-bit/etc/fluent-bit/parsers.conf"))
LOGPIPE = REPO / ".venv" / "bin" / "logpipe"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_rss_kib(pid: int) -> int:
    """VmRSS of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of `pid` itself and of its live descendants (worker processes):
    what each side costs per event, whatever else the shared machine runs."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    rest, todo = 0.0, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        rest += _cpu_seconds(p)
    return _cpu_seconds(pid), rest


class LineCounter:
    """Newlines in files that only grow, read incrementally (re-reading them every poll would
    cost the machine the benchmark measures)."""

    def __init__(self, paths: Callable[[], list[Path]]) -> None:
        self._paths = paths
        self._seen: dict[Path, tuple[int, int]] = {}

    def __call__(self) -> int:
        for p in self._paths():
            offset, n = self._seen.get(p, (0, 0))
            try:
                with p.open("rb") as fh:
                    fh.seek(offset)
                    while chunk := fh.read(1 << 22):
                        n += chunk.count(b"\n")
                        offset += len(chunk)
            except OSError:
                continue
            self._seen[p] = (offset, n)
        return sum(n for _, n in self._seen.values())


def measure(cmd: list[str], progress: Callable[[], int], lines: int, timeout: float = 120) -> tuple[float, float]:
    """Run `cmd` until `progress()` reaches `lines`: (events/s, peak RSS MiB of the tree)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    first_t: float | None = None
    first_n = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            time.sleep(0.1)
            peak = max(peak, _tree_rss_kib(proc.pid))
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            n = progress()
            now = time.monotonic()
            if n > 0 and first_t is None:
                first_t, first_n = now, n
            if n >= lines:
                assert first_t is not None
                own, rest = _tree_cpu(proc.pid)
                print(f"  {Path(cmd[0]).name}: CPU {own / lines * 1e6:.2f} us/event in the main process, "
                      f"{rest / lines * 1e6:.2f} in its children (start-up included)", flush=True)
                return (n - first_n) / max(now - first_t, 1e-9), peak / 1024
            if now > deadline:
                raise RuntimeError(f"{cmd[0]}: {n} of {lines} events after {timeout}s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stats_delivered(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1) as resp:
            doc = json.load(resp)
    except OSError:
        return 0
    total = 0
    for pipeline in (doc.get("pipelines") or {"main": doc.get("pipeline") or doc}).values():
        for out in (pipeline.get("outputs") or {}).values():
            total += int(out.get("delivered", 0))
    return total


def run_logpipe(work: Path, log: Path, output: str, lines: int, workers: int) -> tuple[float, float]:
    port = _free_port()
    out_file = work / "logpipe.out"
    out = f'file {{ path => "{out_file}" }}' if output == "file" else "null {}"
    cfg = (f'input {{ tail {{ path => "{log}" read_from_head => true pos_file => "{work}/lp.pos" }} }}\n'
           'filter { grok { match => { "message" => "%{HTTPD_COMBINEDLOG}" } } }\n'
           f"output {{ {out} }}\n")
    cmd = [str(LOGPIPE), "run", "-e", cfg, "--state-dir", str(work / "state"), "--http-port", str(port)]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    progress = LineCounter(lambda: [out_file]) if output == "file" else (lambda: _stats_delivered(port))
    return measure(cmd, progress, lines)


def _fb_null_records(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/metrics", timeout=1) as resp:
            doc = json.load(resp)
    except OSError:
        return 0
    return sum(int(v.get("proc_records", 0)) for v in doc.get("output", {}).values())


def run_fluent_bit(work: Path, log: Path, output: str, lines: int) -> tuple[float, float]:
    port = _free_port()
    out_dir = work / "fb-out"
    out_dir.mkdir()
    out = (f"[OUTPUT]\n    Name file\n    Match *\n    Path {out_dir}\n    File fb.log\n    Format plain\n"
           if output == "file" else "[OUTPUT]\n    Name null\n    Match *\n")
    conf = work / "fb.conf"
    conf.write_text(
        f"[SERVICE]\n    Flush 1\n    Log_Level warn\n    Parsers_File {FB_PARSERS}\n"
        f"    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port {port}\n"
        f"[INPUT]\n    Name tail\n    Path {log}\n    Read_from_Head On\n    DB {work}/fb.db\n"
        f"    Parser apache2\n    Tag apache\n{out}")
    progress = LineCounter(lambda: [out_dir / "fb.log"]) if output == "file" else (lambda: _fb_null_records(port))
    return measure([str(PEERS / "fluent-bit"), "-c", str(conf)], progress, lines)


def _fluentd_pos_offset(pos: Path, size: int, lines: int) -> int:
    """Lines done as far as the pos_file says: all of them once the offset reaches the end."""
    try:
        fields = pos.read_text().split("\t")
        offset = int(fields[1], 16)
    except (OSError, IndexError, ValueError):
        return 0
    return lines if offset >= size else int(lines * offset / size)


def run_fluentd(work: Path, log: Path, output: str, lines: int) -> tuple[float, float]:
    out_dir = work / "fd-out"
    match = (f"<match **>\n  @type file\n  path {out_dir}/fd\n  <format>\n    @type json\n  </format>\n"
             "  <buffer>\n    flush_interval 1s\n  </buffer>\n</match>\n"
             if output == "file" else "<match **>\n  @type null\n</match>\n")
    conf = work / "fluentd.conf"
    pos = work / "fd.pos"
    conf.write_text(f"<source>\n  @type tail\n  path {log}\n  pos_file {pos}\n  read_from_head true\n"
                    f"  tag apache\n  <parse>\n    @type apache2\n  </parse>\n</source>\n{match}")
    size = log.stat().st_size
    progress: Callable[[], int]
    if output == "file":
        progress = LineCounter(lambda: [p for p in out_dir.glob("fd*.log") if p.is_file()])
    else:
        def progress() -> int:
            return _fluentd_pos_offset(pos, size, lines)
    return measure([str(PEERS / "fluentd"), "-c", str(conf), "--no-supervisor", "-q"], progress, lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--outputs", nargs="+", choices=["file", "null"], default=["file", "null"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "access.log"
        make_log(log, args.lines)
        rows: list[tuple[str, str, str]] = []
        for output in args.outputs:
            runs: list[tuple[str, Callable[[Path], tuple[float, float]]]] = [
                (f"logpipe workers={w}", lambda d, w=w, o=output: run_logpipe(d, log, o, args.lines, w))
                for w in args.workers]
            for name, fn in (("Fluent Bit", run_fluent_bit), ("Fluentd", run_fluentd)):
                binary = PEERS / ("fluent-bit" if name == "Fluent Bit" else "fluentd")
                if binary.exists():
                    runs.append((name, lambda d, fn=fn, o=output: fn(d, log, o, args.lines)))
                else:
                    print(f"{name}: not installed at {binary}, skipped", file=sys.stderr)
            for name, run in runs:
                work = Path(tmp) / f"{output}-{name.replace(' ', '_').replace('=', '')}"
                work.mkdir()
                try:
                    rate, rss = run(work)
                    rows.append((name, output, f"{rate:,.0f} events/s, peak RSS {rss:.0f} MiB"))
                except RuntimeError as exc:
                    rows.append((name, output, f"failed: {str(exc)[:300]}"))
                print(f"tail→parse→{output} {name}: {rows[-1][2]}", flush=True)
                shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.lines} lines, one run:")
    for name, output, result in rows:
        print(f"  {output:5} {name:20} {result}")


if __name__ == "__main__":
    main()
