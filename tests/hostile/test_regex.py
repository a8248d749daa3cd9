"""Catastrophic regexes in user config (issue 12, item 6): `^(a+)+$` against 36 `a`s and
a `!` backtracks for hours in stdlib `re` while holding the GIL. In a conditional, a
tail `format => /…/` and a multiline pattern, it must cost about one regex budget
(logpipe.regex_budget.DEFAULT_TIMEOUT, 1 s) per poisoned line: the line is delivered
tagged `_regextimeout` (or as an event of its own, for multiline), the lines after it
flow, and /healthz keeps answering. Before: the pipeline stopped at 100% CPU, health
checks timed out, only kill -9 helped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.hostile import Daemon, Watch

POISON = "a" * 36 + "!"
EVIL = "^(a+)+$"


def test_catastrophic_regexes_cost_only_their_lines(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.log" for name in ("cond", "fmt", "ml")}
    for path in files.values():
        path.write_text(f"{POISON}\naaaa\nhello\n")
    out = tmp_path / "out.jsonl"
    inputs = "\n".join(
        f"""file {{ id => "{name}" path => "{path}" start_position => "beginning" stat_interval => 0.05
                 sincedb_path => "{tmp_path / (name + '.sincedb')}" add_field => {{ "src" => "{name}" }} {extra} }}"""
        for name, path, extra in [
            ("cond", files["cond"], ""),
            ("fmt", files["fmt"], 'format => "/^(?<v>(a+)+)$/"'),
            ("ml", files["ml"], f'multiline_pattern => "{EVIL}" multiline_flush_interval => 0.2'),
        ]
    )
    config = f"""
input {{ {inputs} }}
filter {{ if [src] == "cond" and [message] =~ /{EVIL}/ {{ mutate {{ add_tag => ["aaa"] }} }} }}
output {{ file {{ path => "{out}" codec => json_lines }} }}
"""
    proc = Daemon(tmp_path, config)
    try:
        proc.wait_listening(proc.http_port)
        deadline = time.monotonic() + 60
        with Watch(proc) as watch:
            while time.monotonic() < deadline:
                assert proc.alive(), proc.log()
                docs = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
                if len(docs) >= 8:
                    break
                time.sleep(0.05)
    finally:
        proc.stop()
    assert len(docs) == 8, f"{len(docs)} of 8 events delivered"
    by_src: dict[str, list[dict[str, object]]] = {}
    for doc in docs:
        by_src.setdefault(str(doc["src"]), []).append(doc)
    cond = {d["message"]: d.get("tags", []) for d in by_src["cond"]}
    assert cond == {POISON: ["_regextimeout"], "aaaa": ["aaa"], "hello": []}
    fmt = by_src["fmt"]
    assert {"message": POISON, "tags": ["_regextimeout"]}.items() <= fmt[0].items()
    assert fmt[1]["v"] == "aaaa"
    # the timed-out line starts an event; "aaaa" matches, so it continues that one
    assert [d["message"] for d in by_src["ml"]] == [f"{POISON}\naaaa", "hello"]
    assert watch.health_failures == 0 and watch.worst_health < 2.0, watch.worst_health
