"""geoip filter: vectors derived from logstash-filter-geoip's spec (geoip_ecs_spec, geoip_offline_spec),
run against test databases built in tests/support/mmdb.py with the records the spec expects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, get_field
from logpipe_plugins.filters.geoip import EXPIRED_TAG, GeoipFilter
from tests.support.mmdb import build_databases


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_databases(str(tmp_path_factory.mktemp("geoip")))


def run(record: dict[str, Any], **settings: Any) -> tuple[Event, GeoipFilter]:
    f = GeoipFilter(**settings)
    asyncio.run(f.start())
    ev = Event("t", 0, record)
    (out,) = f.filter([ev])
    return out, f


LEGACY_CITY = {
    "[server][ip]": "93.184.216.34", "[server][country_code2]": "US", "[server][country_name]": "United States",
    "[server][continent_code]": "NA", "[server][location][lat]": 42.1596, "[server][location][lon]": -70.8217,
    "[server][city_name]": "Norwell", "[server][dma_code]": 506, "[server][region_name]": "Massachusetts",
    "[server][country_code3]": "US", "[server][region_code]": "MA", "[server][region_iso_code]": None,
    "[server][latitude]": 42.1596, "[server][postal_code]": "02061", "[server][timezone]": "America/New_York",
}
ECS_CITY = {
    "[server][ip]": "93.184.216.34", "[server][geo][country_iso_code]": "US",
    "[server][geo][country_name]": "United States", "[server][geo][continent_code]": "NA",
    "[server][geo][location][lat]": 42.1596, "[server][geo][location][lon]": -70.8217,
    "[server][geo][city_name]": "Norwell", "[server][mmdb][dma_code]": 506,
    "[server][geo][region_name]": "Massachusetts", "[server][geo][country_code3]": None,
    "[server][country_code3]": None, "[server][geo][region_iso_code]": "US-MA", "[server][region_code]": None,
}


@pytest.mark.parametrize(("ecs", "expected"), [("disabled", LEGACY_CITY), ("v1", ECS_CITY), ("v8", ECS_CITY)])
def test_city_fields_in_target(dbs: dict[str, str], ecs: str, expected: dict[str, Any]) -> None:
    ev, _ = run({"message": "93.184.216.34"}, source="message", database=dbs["City"], target="server",
                ecs_compatibility=ecs)
    for ref, value in expected.items():
        assert get_field(ev, ref) == (MISSING if value is None else value), ref
    assert "tags" not in ev.record


@pytest.mark.parametrize(("ecs", "asn", "org"), [("disabled", "[server][asn]", "[server][as_org]"),
                                                 ("v1", "[server][as][number]", "[server][as][organization][name]")])
def test_asn_database(dbs: dict[str, str], ecs: str, asn: str, org: str) -> None:
    ev, _ = run({"message": "8.8.8.8"}, source="message", database=dbs["ASN"], target="server", ecs_compatibility=ecs)
    assert get_field(ev, "[server][ip]") == "8.8.8.8"
    assert get_field(ev, asn) == 15169
    assert get_field(ev, org) == "Google LLC"
    only, _ = run({"message": "8.8.8.8"}, source="message", database=dbs["ASN"], target="server",
                  ecs_compatibility=ecs, fields=["AUTONOMOUS_SYSTEM_NUMBER"])
    assert only.record["server"] == ({"asn": 15169} if ecs == "disabled" else {"as": {"number": 15169}})


@pytest.mark.parametrize("ecs", ["disabled", "v1"])
def test_custom_fields_continent_name_and_timezone(dbs: dict[str, str], ecs: str) -> None:
    ev, _ = run({"message": "8.8.8.8"}, source="message", database=dbs["City"], target="server",
                ecs_compatibility=ecs, fields=["continent_name", "timezone"])
    server = ev.record["server"]
    assert (server if ecs == "disabled" else server["geo"]) == {"continent_name": "North America",
                                                                 "timezone": "America/Chicago"}


@pytest.mark.parametrize("fields", [["location", "longitude"], ["location", "latitude"]])
def test_location_fields(dbs: dict[str, str], fields: list[str]) -> None:
    ev, _ = run({"message": "8.8.8.8"}, source="message", database=dbs["City"], target="server",
                ecs_compatibility="v1", fields=fields)
    assert set(ev.record["server"]) == {"geo"}
    assert set(ev.record["server"]["geo"]["location"]) == {"lat", "lon"}


def test_ipv6_written_as_logstash_writes_it(dbs: dict[str, str]) -> None:
    ev, _ = run({"message": "2607:f0d0:1002:51::4"}, source="message", database=dbs["City"], target="server",
                ecs_compatibility="v1", fields=["continent_code", "ip"])
    assert ev.record["server"] == {"ip": "2607:f0d0:1002:51:0:0:0:4", "geo": {"continent_code": "NA"}}


def test_default_targets(dbs: dict[str, str]) -> None:
    legacy, _ = run({"message": "8.8.8.8"}, source="message", database=dbs["City"], ecs_compatibility="disabled")
    assert legacy.record["geoip"]["ip"] == "8.8.8.8"
    ecs, _ = run({"host": {"ip": "8.8.8.8"}}, source="[host][ip]", database=dbs["City"], ecs_compatibility="v1")
    assert ecs.record["host"]["geo"]["country_iso_code"] == "US"
    assert ecs.record["host"]["ip"] == "8.8.8.8"


@pytest.mark.parametrize("source", ["[ip]", "host_ip"])
def test_ecs_without_target_needs_an_ip_subfield(source: str) -> None:
    with pytest.raises(ConfigError, match="requires a `target`"):
        GeoipFilter(source=source, ecs_compatibility="v1")


def test_ecs_target_outside_the_ecs_names_warns(dbs: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    ev, _ = run({"hostname": {"ip": "8.8.8.8"}}, source="[hostname][ip]", database=dbs["City"],
                ecs_compatibility="v1", target="hostname")
    assert "ECS expects" in caplog.text
    assert ev.record["hostname"]["geo"]["country_iso_code"] == "US"


@pytest.mark.parametrize("ip", ["", "      "])
def test_empty_ip_tags_without_target(dbs: dict[str, str], ip: str) -> None:
    ev, f = run({"client": {"ip": ip}}, source="[client][ip]", database=dbs["City"], target="server")
    assert "server" not in ev.record
    assert ev.record["tags"] == ["_geoip_lookup_failure"]
    assert f.failures == 1


@pytest.mark.parametrize("ip", ["-", "N/A", "123.45.67.89,61.160.232.222", "0.0.0.0", "::1", "173.9.34.107",
                                "127.0.0.1", "2.2.2.2"])
def test_invalid_or_unknown_ip_gives_empty_target(dbs: dict[str, str], ip: str) -> None:
    ev, _ = run({"client": {"ip": ip}}, source="[client][ip]", database=dbs["City"], target="server")
    assert ev.record["server"] == {}
    assert ev.record["tags"] == ["_geoip_lookup_failure"]


def test_missing_source_is_a_failure_and_custom_tags(dbs: dict[str, str]) -> None:
    ev, _ = run({"other": 1}, source="message", database=dbs["City"], tag_on_failure=["nogeo", "x"])
    assert ev.record == {"other": 1, "tags": ["nogeo", "x"]}


def test_array_source_uses_first_element_and_add_tag(dbs: dict[str, str]) -> None:
    ev, _ = run({"ips": ["8.8.8.8", "93.184.216.34"]}, source="ips", database=dbs["Country"], add_tag=["geo"])
    assert ev.record["geoip"] == {"ip": "8.8.8.8", "country_code2": "US", "country_name": "United States",
                                  "continent_name": "North America"}
    assert ev.record["tags"] == ["geo"]


def test_no_database_anywhere_tags_expired(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("logpipe_plugins.filters.geoip.database_dirs", lambda: [str(tmp_path)])
    ev, _ = run({"message": "8.8.8.8"}, source="message", target="server")
    assert ev.record["tags"] == [EXPIRED_TAG]


def test_implicit_database_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGPIPE_HOME", str(tmp_path))
    build_databases(str(tmp_path / "geoip"))
    ev, _ = run({"message": "8.8.8.8"}, source="message", default_database_type="ASN")
    assert ev.record["geoip"]["asn"] == 15169


def test_invalid_database_file_fails_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    f = GeoipFilter(source="message", database=str(bad))
    with pytest.raises(ConfigError, match="invalid or corrupted"):
        asyncio.run(f.start())
    with pytest.raises(ConfigError, match="was not found"):
        asyncio.run(GeoipFilter(source="message", database=str(tmp_path / "none.mmdb")).start())


def test_unknown_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown field 'cty_name'") as err:
        GeoipFilter(source="message", fields=["cty_name"])
    assert err.value.setting == "fields"


def test_cache_returns_independent_values(dbs: dict[str, str]) -> None:
    f = GeoipFilter(source="message", database=dbs["City"], cache_size=1)
    asyncio.run(f.start())
    a, b, c = (Event("t", 0, {"message": ip}) for ip in ("8.8.8.8", "8.8.8.8", "93.184.216.34"))
    f.filter([a, b, c])
    a.record["geoip"]["location"]["lat"] = 0
    assert b.record["geoip"]["location"]["lat"] == 37.751
    assert len(f._cache) == 1
