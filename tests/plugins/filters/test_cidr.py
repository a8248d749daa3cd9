"""cidr filter: the examples of logstash-filter-cidr's spec (spec/filters/cidr_spec.rb), each a
(settings, event, matched?) vector, plus the file refresh and the bounds on bad input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.metrics import REGISTRY
from logpipe.pipeline import Pipeline
from logpipe_plugins.filters.cidr import CidrFilter
from tests.support.pipeline import CollectOutput

CLIENT = {"address": ["%{clientip}"], "add_tag": ["matched"]}
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]

SPEC: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("ipv4 match", {**CLIENT, "network": ["192.168.0.0/24"]}, {"clientip": "192.168.0.30"}, True),
    ("ipv4 no match", {**CLIENT, "network": ["192.168.0.0/24"]}, {"clientip": "123.52.122.33"}, False),
    ("list of networks, first", {**CLIENT, "network": PRIVATE}, {"clientip": "192.168.0.30"}, True),
    ("list of networks, second", {**CLIENT, "network": PRIVATE}, {"clientip": "10.10.220.3"}, True),
    ("list of networks, third", {**CLIENT, "network": PRIVATE}, {"clientip": "172.16.45.50"}, True),
    ("list of networks, none", {**CLIENT, "network": PRIVATE}, {"clientip": "8.8.8.8"}, False),
    ("comma-separated text", {**CLIENT, "network": [",".join(PRIVATE)]}, {"clientip": "192.168.0.30"}, True),
    ("networks from a field reference", {**CLIENT, "network": ["%{whitelist}"]},
     {"whitelist": PRIVATE, "clientip": "192.168.0.30"}, True),
    ("ipv6 match", {**CLIENT, "network": ["fe80::/64"]}, {"clientip": "fe80:0:0:0:0:0:0:1"}, True),
    ("ipv6 no match", {**CLIENT, "network": ["fe80::/64"]}, {"clientip": "fd82:0:0:0:0:0:0:1"}, False),
    ("address_field", {"address_field": "ip", "network": ["192.168.0.0/24"], "add_tag": ["matched"]},
     {"ip": "192.168.0.1"}, True),
    ("address_field holding an array", {"address_field": "ip", "network": ["192.168.0.0/24"],
                                        "add_tag": ["matched"]}, {"ip": ["8.8.8.8", "192.168.0.1"]}, True),
    ("ipv4 against an ipv6 block", {**CLIENT, "network": ["::/0"]}, {"clientip": "192.168.0.1"}, False),
    ("host bits in the block are ignored", {**CLIENT, "network": ["192.168.1.5/24"]},
     {"clientip": "192.168.1.200"}, True),
]


@pytest.mark.parametrize(("settings", "record", "matched"), [v[1:] for v in SPEC], ids=[v[0] for v in SPEC])
def test_spec_vectors(settings: dict[str, Any], record: dict[str, Any], matched: bool) -> None:
    (ev,) = CidrFilter(**settings).filter([Event("t", 0, dict(record))])
    assert ("matched" in ev.record.get("tags", [])) is matched


def test_network_file_with_separator_and_refresh(tmp_path: Path) -> None:
    """network_path as the spec's files/network and files/network-comma; a changed file is
    read again after refresh_interval (0 here means: check on every batch is not wanted, so
    the test moves the clock by rewriting with a new mtime and expiring the check)."""
    path = tmp_path / "networks"
    path.write_text("192.168.1.0/24\n200.17.160.0/24\n")
    f = CidrFilter(network_path=str(path), address=["%{clientip}"], add_tag=["matched"], refresh_interval=1)
    hits = f.filter([Event("t", 0, {"clientip": ip}) for ip in ("192.168.1.1", "200.17.160.201", "10.1.2.1")])
    assert ["matched" in e.record.get("tags", []) for e in hits] == [True, True, False]
    path.write_text("10.0.0.0/8\n")
    os.utime(path, (1, 1))
    f._next_check = 0.0   # the refresh interval has passed
    (e,) = f.filter([Event("t", 0, {"clientip": "10.1.2.1"})])
    assert e.record["tags"] == ["matched"]
    comma = tmp_path / "comma"
    comma.write_text("192.168.1.0/24,10.0.0.0/8")
    g = CidrFilter(network_path=str(comma), separator=",", address=["%{clientip}"], add_tag=["matched"])
    out = g.filter([Event("t", 0, {"clientip": "192.168.1.25"}), Event("t", 0, {"clientip": "192.167.1.1"})])
    assert [e.record.get("tags") for e in out] == [["matched"], None]


def test_mutually_exclusive_options_and_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'network' and 'network_path' are mutually exclusive"):
        CidrFilter(network=["10.0.0.0/8"], network_path=str(tmp_path / "n"), address=["%{ip}"])
    with pytest.raises(ConfigError, match="'address' and 'address_field' are mutually exclusive"):
        CidrFilter(network=["10.0.0.0/8"], address=["%{ip}"], address_field="ip")
    with pytest.raises(ConfigError) as err:
        CidrFilter(network_path=str(tmp_path / "absent"), address=["%{ip}"])
    assert err.value.setting == "network_path"


def test_bad_addresses_and_networks_are_skipped_and_counted() -> None:
    f = CidrFilter(id="cidr-bad", network=["not-a-net", "10.0.0.0/8"], address=["%{ip}"], add_tag=["matched"])
    out = f.filter([Event("t", 0, {"ip": "nonsense"}), Event("t", 0, {}), Event("t", 0, {"ip": "10.2.3.4"})])
    assert [e.record.get("tags") for e in out] == [None, None, ["matched"]]
    assert REGISTRY.value("logpipe_filter_cidr_invalid_addresses_total", filter="cidr-bad") == 2


async def test_in_a_logstash_pipeline(tmp_path: Path) -> None:
    out = CollectOutput()
    text = """
    filter { cidr { address => [ "%{[source][ip]}" ] network => [ "10.0.0.0/8" ] add_tag => [ "private" ]
                    add_field => { "zone" => "lan" } } }
    """
    async with Pipeline.from_string(text, outputs=[out], state_dir=str(tmp_path)) as pipeline:
        await pipeline.emit_many("t", [{"source": {"ip": "10.0.0.7"}}, {"source": {"ip": "1.1.1.1"}}])
        await out.wait_for(2)
    assert [(e.record.get("tags"), e.record.get("zone")) for e in out.events] == [(["private"], "lan"), (None, None)]
