"""useragent filter: vectors derived from logstash-filter-useragent's spec (useragent_spec.rb, "with target").

Exceptions, each because the packaged uap-core rules are newer than the ones the Logstash plugin
bundles: MacOutlook's OS is read from "Build 18E226" by today's rules, so its OS fields are not
asserted (its browser fields are)."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.event import Event
from logpipe.fields import MISSING, get_field
from logpipe_plugins.filters.useragent import UseragentFilter, build_os_version, build_version

#: (string, legacy expectations under [ua], ECS expectations under [ua] / [@metadata])
SAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Mozilla/5.0 (X11; Linux i686) AppleWebKit/537.31 (KHTML, like Gecko) Chrome/26.0.1410.63 Safari/537.31",
     {"name": "Chrome", "os_name": "Linux", "os_full": "Linux", "os": "Linux", "device": "Other", "major": "26",
      "minor": "0"},
     {"name": "Chrome", "os.name": "Linux", "os.full": "Linux", "device.name": "Other", "version": "26.0.1410.63",
      "@version": {"major": "26", "minor": "0", "patch": "1410"}, "major": None, "minor": None}),
    ("MacOutlook/16.24.0.190414 (Intelx64 Mac OS X Version 10.14.4 (Build 18E226))",
     {"name": "MacOutlook", "major": "16", "minor": "24", "patch": "0", "device": "Mac"},
     {"name": "MacOutlook", "version": "16.24.0.190414", "device.name": "Mac"}),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 "
     "Safari/605.1.15",
     {"name": "Safari", "major": "12", "minor": "0", "patch": None, "os_full": "Mac OS X 10.14",
      "os_name": "Mac OS X", "os_major": "10", "os_minor": "14"},
     {"name": "Safari", "version": "12.0", "os.full": "Mac OS X 10.14", "os.name": "Mac OS X",
      "os.version": "10.14", "@os": {"major": "10", "minor": "14"}}),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_3) AppleWebKit/537.75.14 (KHTML, like Gecko) Version/7.0.3 "
     "Safari/7046A194A",
     {"name": "Safari", "major": "7", "minor": "0", "patch": "3", "os_full": "Mac OS X 10.9.3", "os_name": "Mac OS X",
      "os_major": "10", "os_minor": "9", "device": "Mac"},
     {"name": "Safari", "version": "7.0.3", "os.full": "Mac OS X 10.9.3", "os.name": "Mac OS X",
      "device.name": "Mac"}),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.11; rv:45.0) Gecko/20100101 Firefox/45.0",
     {"name": "Firefox", "major": "45", "minor": "0", "patch": None, "os_full": "Mac OS X 10.11",
      "os_name": "Mac OS X", "os_major": "10", "os_minor": "11", "device": "Mac"},
     {"name": "Firefox", "version": "45.0", "os.full": "Mac OS X 10.11", "os.name": "Mac OS X",
      "os.version": "10.11", "device.name": "Mac"}),
    ("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
     {"os_name": "Windows", "os_major": "Vista", "os_minor": None, "device": "Other"},
     {"os.name": "Windows", "os.version": "Vista", "device.name": "Other"}),
    ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0; .NET CLR 1.1.4322; .NET CLR 2.0.50727; "
     ".NET CLR 3.5.30729)",
     {"name": "IE", "os_name": "Windows", "os_major": "XP", "os_minor": None, "device": "Other"},
     {"name": "IE", "os.name": "Windows", "os.version": "XP", "device.name": "Other"}),
    ("Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 "
     "Safari/537.36 Edge/12.246",
     {"name": "Edge", "os_name": "Windows", "os_major": "8", "os_minor": "1"},
     {"name": "Edge", "os.name": "Windows", "os.version": "8.1"}),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0.4389.90 "
     "Safari/537.36 Edg/89.0.774.50",
     {"name": "Edge", "os_name": "Windows", "os_major": "10", "os_minor": None, "device": "Other"},
     {"name": "Edge", "version": "89.0.774.50", "os.full": "Windows 10", "os.name": "Windows", "os.version": "10",
      "@os": {"major": "10"}, "device.name": "Other"}),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0.4389.90 Safari/537.36",
     {"name": "Chrome", "os_name": "Linux", "os_major": None, "os_minor": None, "device": "Other"},
     {"name": "Chrome", "os.name": "Linux", "os.version": None, "device.name": "Other"}),
]


def run(record: dict[str, Any], **settings: Any) -> Event:
    (ev,) = UseragentFilter(**settings).filter([Event("t", 0, record)])
    return ev


def _ref(base: str, dotted: str) -> str:
    return base + "".join(f"[{k}]" for k in dotted.split("."))


@pytest.mark.parametrize(("ua", "legacy"), [(s[0], s[1]) for s in SAMPLES], ids=range(len(SAMPLES)))
def test_legacy_layout_with_target(ua: str, legacy: dict[str, Any]) -> None:
    ev = run({"message": ua}, source="message", target="ua", ecs_compatibility="disabled")
    for key, value in legacy.items():
        assert get_field(ev, f"[ua][{key}]") == (MISSING if value is None else value), key


@pytest.mark.parametrize("mode", ["v1", "v8"])
@pytest.mark.parametrize(("ua", "ecs"), [(s[0], s[2]) for s in SAMPLES], ids=range(len(SAMPLES)))
def test_ecs_layout_with_target(ua: str, ecs: dict[str, Any], mode: str) -> None:
    ev = run({"message": ua}, source="message", target="ua", ecs_compatibility=mode)
    for key, value in ecs.items():
        if key == "@version":
            assert get_field(ev, "[@metadata][filter][user_agent][version]") == value
        elif key == "@os":
            assert get_field(ev, "[@metadata][filter][user_agent][os][version]") == value
        else:
            assert get_field(ev, _ref("[ua]", key)) == (MISSING if value is None else value), key


def test_defaults_root_legacy_and_user_agent_ecs_and_prefix() -> None:
    ua = SAMPLES[0][0]
    legacy = run({"message": ua}, source="message", ecs_compatibility="disabled")
    assert legacy.record["name"] == "Chrome" and legacy.record["os"] == "Linux"
    prefixed = run({"message": ua}, source="message", prefix="ua_", ecs_compatibility="disabled")
    assert prefixed.record["ua_name"] == "Chrome" and "name" not in prefixed.record
    ecs = run({"message": ua}, source="message", ecs_compatibility="v8")
    assert ecs.record["user_agent"]["name"] == "Chrome"
    assert ecs.record["user_agent"]["os"] == {"name": "Linux", "full": "Linux"}


def test_target_equal_to_source_replaces_it_and_add_tag() -> None:
    ev = run({"agent": SAMPLES[0][0]}, source="agent", target="agent", add_tag=["ua"], ecs_compatibility="v1")
    assert ev.record["agent"]["name"] == "Chrome"
    assert ev.record["tags"] == ["ua"]


@pytest.mark.parametrize("record", [{}, {"message": ""}, {"message": []}, {"message": 5}])
def test_missing_or_empty_source_is_left_alone(record: dict[str, Any]) -> None:
    ev = run(dict(record), source="message", add_tag=["ua"])
    assert ev.record == record


def test_array_source_uses_first_element() -> None:
    ev = run({"message": [SAMPLES[0][0], "x"]}, source="message", target="ua")
    assert ev.record["ua"]["name"] == "Chrome"


def test_unknown_string_is_other() -> None:
    ev = run({"message": "zzq wibble"}, source="message", target="ua", ecs_compatibility="v1")
    assert ev.record["ua"] == {"name": "Other", "device": {"name": "Other"}, "os": {"name": "Other", "full": "Other"}}


def test_cache_is_bounded_and_consistent() -> None:
    f = UseragentFilter(source="message", target="ua", lru_cache_size=2)
    events = [Event("t", 0, {"message": s[0]}) for s in SAMPLES[:4]] + [Event("t", 0, {"message": SAMPLES[0][0]})]
    f.filter(events)
    assert len(f._cache) == 2
    assert events[0].record["ua"] == events[4].record["ua"]


def test_custom_regexes_file(tmp_path: Any) -> None:
    path = tmp_path / "regexes.yaml"
    path.write_text("user_agent_parsers:\n  - regex: '(Foo)Bot/(\\d+)\\.(\\d+)'\n"
                    "os_parsers:\n  - regex: '(Plan9)'\ndevice_parsers:\n  - regex: '(Toaster)'\n")
    ev = run({"message": "FooBot/3.4 (Plan9; Toaster)"}, source="message", target="ua", regexes=str(path))
    assert ev.record["ua"]["name"] == "Foo"
    assert ev.record["ua"]["version"] == "3.4"
    assert ev.record["ua"]["os_name"] == "Plan9"
    assert ev.record["ua"]["device"] == "Toaster"


def test_version_builders() -> None:
    assert build_version("16", "24", "0", None, "MacOutlook/16.24.0.190414 (Intel") == "16.24.0.190414"
    assert build_version("1", "2", "3", "4", "") == "1.2.3.4"
    assert build_version(None, "2", None, None, "") is None
    assert build_os_version("Vista", "SP1", None, None) == "Vista SP1"
    assert build_os_version("10", "14", "4", None) == "10.14.4"
