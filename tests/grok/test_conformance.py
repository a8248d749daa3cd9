"""Every vector of shared/conformance/grok (derived from Logstash's pattern specs), both modes.

A vector's captures are merged into an event holding `message` the way Logstash's
grok filter does (a capture into an existing string field makes an array), then
compared as the README says. Vectors that misstate what Logstash does are kept out
of the count, each with its reason (MISSTATED); vectors we fail by design are
listed with theirs (KNOWN_FAILURES). The summary test prints every failure.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from logpipe.grok import Grok, GrokError
from logpipe.grok.library import builtin_patterns
from tests.paths import SHARED

VECTOR_DIR = SHARED / "conformance" / "grok"

#: (id, mode, first `includes` key or else `expect`) → why the vector does not describe Logstash.
MISSTATED: dict[tuple[str, str, str], str] = {
    ("exim_spec.rb:14", "legacy", "exim_year"):
        "expects '@version' => '1', a field Logstash adds to every event, not a grok capture",
    ("firewalls_spec.rb:84", "legacy", "message"):
        "the spec only checks that 'message' is unchanged, which holds without a match; the legacy "
        "CISCOFW106014 needs ' (type' with a space and this message has '11(type', so no engine matches it",
    ("netscreen_spec.rb:89", "legacy", "match"):
        "contradicts its own no_match vector (same id and mode): the legacy NETSCREENSESSIONLOG requires "
        "'src-xlated ip=', absent from the message; the spec only asserts that 'date' is absent",
}

#: Vectors logpipe fails on purpose.
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {
    ("aws_spec.rb:359", "legacy", "time_taken"):
        "GREEDYDATA:time_taken:float captures '0.001\\t-\\tTLSv1.2…'; Ruby's to_f takes the numeric prefix "
        "(0.001) while logpipe coerces strictly, keeps the text and tags _grokcoercefailure (the issue asks "
        "':int' on '3.5' to keep the string)",
}


def _load() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        vectors.extend(json.loads(path.read_text(encoding="utf-8")))
    return vectors


VECTORS = _load() if VECTOR_DIR.is_dir() else []


def _merge(target: dict[str, Any], caps: dict[str, Any]) -> None:
    for key, value in caps.items():
        if isinstance(value, dict):
            sub = target.get(key)
            if not isinstance(sub, dict):
                sub = target[key] = {}
            _merge(sub, value)
            continue
        for item in value if isinstance(value, list) else [value]:
            old = target.get(key)
            if old is None:
                target[key] = item
            elif isinstance(old, list):
                old.append(item)
            elif isinstance(old, str):
                target[key] = [old, item]


def _subset(expected: Any, got: Any) -> bool:
    if isinstance(expected, dict):
        if isinstance(got, list):  # {"0": …} addresses an array element
            return all(k.isdigit() and int(k) < len(got) and _subset(v, got[int(k)]) for k, v in expected.items())
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in expected.items())
    return bool(expected == got and type(expected) is type(got))


def _has(event: dict[str, Any], dotted: str) -> bool:
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _key(vector: dict[str, Any]) -> tuple[str, str, str]:
    inc = vector.get("includes") or {}
    return vector["id"], vector["mode"], next(iter(inc), vector["expect"])


def check(vector: dict[str, Any]) -> str | None:
    """None when the vector passes, else why not."""
    mode = "disabled" if vector["mode"] == "legacy" else "v1"
    # Some vectors carry the RSpec describe text ("NAGIOSLOGLINE - SERVICE ALERT"); the pattern is its first word.
    name = vector["pattern"].split(" - ")[0]
    expression = f"^%{{{name}}}$" if vector["exact"] else f"%{{{name}}}"
    try:
        captures = Grok(expression, ecs_compatibility=mode).match(vector["message"])
    except GrokError as exc:
        return f"does not compile: {exc}"
    if vector["expect"] == "no_match":
        return None if captures is None else f"matched but Logstash does not: {captures}"
    if captures is None:
        return "no match"
    event: dict[str, Any] = {"message": vector["message"]}
    _merge(event, captures)
    if not _subset(vector.get("includes") or {}, event):
        return f"captures differ: {json.dumps(captures)[:300]}"
    for path in vector.get("excludes") or []:
        if _has(event, path):
            return f"{path} should be absent"
    for path in vector.get("has_keys") or []:
        if not _has(event, path):
            return f"{path} is missing"
    return None


def _params() -> list[Any]:
    out = []
    for i, v in enumerate(VECTORS):
        key = _key(v)
        marks = []
        if key in MISSTATED:
            marks.append(pytest.mark.skip(reason=f"misstated vector: {MISSTATED[key]}"))
        elif key in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[key], strict=True))
        out.append(pytest.param(v, id=f"{v['id']}-{v['mode']}-{i}", marks=marks))
    return out


@pytest.mark.parametrize("vector", _params())
def test_vector(vector: dict[str, Any]) -> None:
    failure = check(vector)
    assert failure is None, failure


def test_vectors_present_and_pass_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(VECTORS) == 1302, "shared/conformance/grok should hold 1302 vectors"
    counted = [v for v in VECTORS if _key(v) not in MISSTATED]
    failures = [(v, why) for v in counted if (why := check(v)) is not None]
    with capsys.disabled():
        print(f"\ngrok conformance: {len(counted) - len(failures)}/{len(counted)} pass "
              f"({len(VECTORS) - len(counted)} misstated vectors not counted)")
        for v, why in failures:
            reason = KNOWN_FAILURES.get(_key(v), "UNEXPECTED")
            print(f"  FAIL {v['id']} [{v['mode']}] {v['pattern']}: {why[:120]} -- {reason}")
    unexpected = [v["id"] for v, _ in failures if _key(v) not in KNOWN_FAILURES]
    assert not unexpected, f"unexpected failures: {unexpected}"
    assert (len(counted) - len(failures)) / len(counted) >= 0.98


@pytest.mark.parametrize("mode", ["disabled", "v1"])
def test_every_library_pattern_compiles(mode: str) -> None:
    names = list(builtin_patterns(mode))
    assert len(names) > 300
    broken = {}
    for name in names:
        try:
            Grok(f"%{{{name}}}", ecs_compatibility=mode)
        except GrokError as exc:
            broken[name] = str(exc)
    assert not broken
