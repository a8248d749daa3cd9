"""`logpipe test`: unit tests for pipeline configs, as `vector test` does for Vector.

A config is code, and the filter section is where it breaks: a grok pattern that no longer
matches after a log format change, a conditional that sends the wrong events to the wrong
place. A test file names a config, feeds events (records, or raw lines through an input's
codec) into its filter section, and states what must come out after a given plugin. Nothing
is started but the filters: no input reads, no output writes, so a test runs offline in
milliseconds and can sit in CI next to the config it guards.

Test files are YAML (`.yaml`/`.yml`) or TOML (`.toml`)::

    config: pipeline.conf            # relative to this file (or `config_string: "filter { … }"`)
    tests:
      - name: an access line is parsed
        tag: web.access              # tag of the input events (default "test")
        events:                      # records …
          - message: '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326'
        # lines: ["raw line"]        # … or raw lines, decoded by the codec of `input` (an id)
        extract_from: apache_grok    # a filter or output id; default: what leaves the filters
        expect:
          count: 1                   # how many events come out (0 = all dropped)
          all:                       # conditions every event meets
            absent: ["[tags]"]
          events:                    # conditions per event, in order
            - equal: {"[response]": "200", "[verb]": "GET"}
              match: {"[request]": "^/"}
              tags: ["parsed"]
              not_tags: ["_grokparsefailure"]

Field names are Logstash references (`[a][b]`, `@timestamp`, `[@metadata][x]`).
"""

from __future__ import annotations

import os
import re
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event, event_document
from logpipe.fields import MISSING, compile_getter, parse_ref
from logpipe.jsonvalues import json_default
from logpipe.plugin import Plugin

CONDITION_KEYS = {"equal", "absent", "present", "match", "tags", "not_tags"}
TEST_KEYS = {"name", "tag", "events", "lines", "input", "extract_from", "expect"}
EXPECT_KEYS = {"count", "all", "events"}


@dataclass
class CaseResult:
    """One test case: its name, how long it took, and what did not hold (empty = passed)."""

    file: str
    name: str
    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_test_file(path: str) -> dict[str, Any]:
    """Read a YAML or TOML test file; a syntax error is a ConfigError naming the file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read test file: {exc.strerror}") from None
    if path.endswith(".toml"):
        try:
            data: Any = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a test file is a mapping with `config` and `tests`")
    return data


async def run_test_file(path: str) -> list[CaseResult]:
    """Run every case of one test file. A mistake in the file or its config is a ConfigError."""
    from logpipe.pipeline import Pipeline

    spec = load_test_file(path)
    unknown = set(spec) - {"config", "config_string", "tests"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: config, config_string, tests")
    cases = spec.get("tests")
    if not isinstance(cases, list) or not cases:
        raise ConfigError(f"{path}: `tests` must be a non-empty list of test cases")
    for i, case in enumerate(cases):
        _check_case(path, i, case)
    base = os.path.dirname(os.path.abspath(path))
    results = []
    for i, case in enumerate(cases):
        # A fresh pipeline per case: filters with state (throttle, translate caches) start clean.
        if "config_string" in spec:
            pipeline = Pipeline.from_string(str(spec["config_string"]), f"{path}:config_string",
                                            state_dir=base)
        elif "config" in spec:
            pipeline = Pipeline.from_paths([os.path.join(base, str(spec["config"]))], state_dir=base)
        else:
            raise ConfigError(f"{path}: give the config to test as `config` (a path) or `config_string`")
        results.append(await _run_case(path, i, case, pipeline))
    return results


def _check_case(path: str, index: int, case: Any) -> None:
    where = f"{path}: test {index + 1}"
    if not isinstance(case, dict):
        raise ConfigError(f"{where}: a test case is a mapping")
    unknown = set(case) - TEST_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(TEST_KEYS))}")
    if ("events" in case) == ("lines" in case):
        raise ConfigError(f"{where}: give exactly one of `events` (records) or `lines` (raw lines)")
    expect = case.get("expect", {})
    if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
        raise ConfigError(f"{where}: `expect` takes {', '.join(sorted(EXPECT_KEYS))}")
    conditions = [expect.get("all", {}), *(expect.get("events") or [])]
    for cond in conditions:
        if not isinstance(cond, dict) or set(cond) - CONDITION_KEYS:
            raise ConfigError(f"{where}: a condition takes {', '.join(sorted(CONDITION_KEYS))}")
        for ref in [*cond.get("equal", {}), *cond.get("match", {}), *cond.get("absent", []),
                    *cond.get("present", [])]:
            try:
                parse_ref(str(ref))
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc.message}") from None
        for pattern in cond.get("match", {}).values():
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ConfigError(f"{where}: bad regex {pattern!r}: {exc}") from None


async def _run_case(path: str, index: int, case: dict[str, Any], pipeline: Any) -> CaseResult:
    name = str(case.get("name") or f"test {index + 1}")
    started = time.perf_counter()
    result = CaseResult(path, name, 0.0)
    events = _input_events(case, pipeline)
    extract = case.get("extract_from")
    captured: list[list[Event]] | None = None
    target: Plugin | None = None
    if extract is not None:
        target = next((p for p in pipeline.plugins if p.id == extract and p.kind in ("filter", "output")), None)
        if target is None:
            ids = sorted(p.id for p in pipeline.plugins if p.kind in ("filter", "output"))
            raise ConfigError(f"{path}: {name}: no filter or output with id {extract!r}; ids: {', '.join(ids)}")
    for plugin in pipeline.built.filters:
        await plugin.lifecycle_start()
    try:
        if target is not None and target.kind == "filter":
            captured = []
            target.observers.append(lambda out: captured.append([ev.copy() for ev in out]))  # type: ignore[union-attr]
        out = pipeline.filter_batch(events)
        if target is not None and target.kind == "output":
            got = [part for output, part in pipeline.route_batch(out) if output is target]
            out = [ev for part in got for ev in part]
        elif captured is not None:
            out = [ev for batch in captured for ev in batch]
    finally:
        for plugin in pipeline.built.filters:
            await plugin.lifecycle_close()
    result.failures = check_expectations(case.get("expect", {}), out)
    result.seconds = time.perf_counter() - started
    return result


def _input_events(case: dict[str, Any], pipeline: Any) -> list[Event]:
    tag = str(case.get("tag") or "test")
    if "events" in case:
        records = case["events"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ConfigError(f"test {case.get('name')!r}: `events` is a list of records (mappings)")
        return [Event(tag, None, _plain(r)) for r in records]
    lines = [str(line) for line in case["lines"]]
    inputs = pipeline.built.inputs
    wanted = case.get("input")
    source = next((p for p in inputs if p.id == wanted), None) if wanted else (inputs[0] if inputs else None)
    if wanted and source is None:
        raise ConfigError(f"test {case.get('name')!r}: no input with id {wanted!r}")
    codec = source.params.get("codec") if source is not None else None
    records = codec.decode(lines) if codec is not None else [{"message": line} for line in lines]
    if source is not None and not case.get("tag"):
        tag = source.event_tag
    return [Event(tag, None, record) for record in records]


def _plain(value: Any) -> Any:
    """YAML dates and times become strings, as they would arrive in a log record."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def check_expectations(expect: dict[str, Any], events: list[Event]) -> list[str]:
    """Every expectation that does not hold, as a readable line (empty when all hold)."""
    failures: list[str] = []
    count = expect.get("count")
    if count is not None and len(events) != int(count):
        failures.append(f"expected {count} event(s), got {len(events)}")
    shared = expect.get("all") or {}
    for i, ev in enumerate(events):
        failures += [f"event {i + 1}: {f}" for f in _check_event(shared, ev)]
    for i, cond in enumerate(expect.get("events") or []):
        if i >= len(events):
            failures.append(f"event {i + 1}: expected, but only {len(events)} event(s) came out")
            continue
        failures += [f"event {i + 1}: {f}" for f in _check_event(cond, events[i])]
    if failures:
        shown = [orjson.dumps(event_document(ev, with_metadata=True), default=json_default).decode() for ev in events]
        failures.append("events that came out:\n" + "\n".join("  " + line for line in shown))
    return failures


def _check_event(cond: dict[str, Any], ev: Event) -> list[str]:
    out: list[str] = []
    get: Callable[[str], Any] = lambda ref: compile_getter(parse_ref(ref))(ev)  # noqa: E731
    for ref, want in (cond.get("equal") or {}).items():
        have = get(ref)
        if have is MISSING:
            out.append(f"{ref} is absent, expected {want!r}")
        elif have != _plain(want):
            out.append(f"{ref} is {have!r}, expected {want!r}")
    for ref, pattern in (cond.get("match") or {}).items():
        have = get(ref)
        if have is MISSING:
            out.append(f"{ref} is absent, expected a match for /{pattern}/")
        elif re.search(str(pattern), have if isinstance(have, str) else str(have)) is None:
            out.append(f"{ref} is {have!r}, which does not match /{pattern}/")
    for ref in cond.get("absent") or []:
        have = get(ref)
        if have is not MISSING:
            out.append(f"{ref} is {have!r}, expected it absent")
    for ref in cond.get("present") or []:
        if get(ref) is MISSING:
            out.append(f"{ref} is absent, expected it present")
    tags = ev.record.get("tags")
    tags = tags if isinstance(tags, list) else []
    for tag in cond.get("tags") or []:
        if tag not in tags:
            out.append(f"tag {tag!r} missing (tags: {tags})")
    for tag in cond.get("not_tags") or []:
        if tag in tags:
            out.append(f"tag {tag!r} present, expected it absent")
    return out


def junit_xml(results: list[CaseResult]) -> bytes:
    """A JUnit report, the format every CI system reads."""
    suite = ET.Element("testsuite", name="logpipe test", tests=str(len(results)),
                       failures=str(sum(1 for r in results if not r.passed)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.file, name=r.name, time=f"{r.seconds:.3f}")
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.failures[0])
            failure.text = "\n".join(r.failures)
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def format_results(results: list[CaseResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.file}: {r.name}")
        for failure in r.failures:
            lines.append("      " + failure.replace("\n", "\n      "))
    passed = sum(1 for r in results if r.passed)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)
