"""fingerprint filter."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe_plugins.filters.fingerprint import FingerprintFilter, murmur3_32


def run(record: dict[str, Any], **settings: Any) -> tuple[Event, FingerprintFilter]:
    f = FingerprintFilter(**settings)
    ev = Event("t", 1706004000 * 10**9, record)
    f.filter([ev])
    return ev, f


@pytest.mark.parametrize(
    "data, seed, expected",
    [(b"", 0, 0), (b"", 1, 0x514E28B7), (b"\0\0\0\0", 0, 0x2362F9DE), (b"abc", 0, 0xB3DD93FA),
     (b"Hello, world!", 0x9747B28C, 0x24884CBA),
     (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD)],
)
def test_murmur3_reference_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_32(data, seed) == expected


def test_default_sha1_of_message() -> None:
    ev, _ = run({"message": "hello"}, add_tag=["fp"])
    assert ev.record["fingerprint"] == hashlib.sha1(b"hello").hexdigest()
    assert ev.record["tags"] == ["fp"]


@pytest.mark.parametrize("method", ["SHA1", "SHA256", "SHA384", "SHA512", "MD5"])
def test_hmac_and_base64(method: str) -> None:
    algo = method.lower()
    ev, _ = run({"message": "hello"}, method=method, key="secret", target="[@metadata][id]")
    assert ev.meta["id"] == hmac.new(b"secret", b"hello", algo).hexdigest()
    b64, _ = run({"message": "hello"}, method=method, base64encode=True)
    assert b64.record["fingerprint"] == base64.b64encode(hashlib.new(algo, b"hello").digest()).decode()


def test_murmur3_values() -> None:
    ev, _ = run({"message": "hello"}, method="murmur3")
    assert ev.record["fingerprint"] == 613153351
    num, _ = run({"n": 5}, method="MURMUR3", source=["n"])
    assert num.record["fingerprint"] == murmur3_32((5).to_bytes(8, "little"))  # int64_hash, as Logstash


def test_concatenate_sources_is_sorted_and_stable() -> None:
    a, _ = run({"b": 2, "a": "x"}, source=["b", "a", "missing"], concatenate_sources=True, method="SHA256")
    assert a.record["fingerprint"] == hashlib.sha256(b"|a|x|b|2|missing||").hexdigest()
    b, _ = run({"a": "x", "b": 2}, source=["a", "missing", "b"], concatenate_sources=True, method="SHA256")
    assert a.record["fingerprint"] == b.record["fingerprint"]


def test_concatenate_all_fields() -> None:
    ev, _ = run({"b": {"y": 1, "x": 2}, "a": 1}, concatenate_all_fields=True, method="MD5")
    text = "|@timestamp|2024-01-23T10:00:00.000Z|a|1|b|x|2|y|1|"
    assert ev.record["fingerprint"] == hashlib.md5(text.encode()).hexdigest()


def test_several_sources_last_wins() -> None:
    ev, _ = run({"a": "1", "b": "2"}, source=["a", "b", "missing"])
    assert ev.record["fingerprint"] == hashlib.sha1(b"2").hexdigest()


def test_missing_source_sets_nothing() -> None:
    ev, _ = run({"other": 1}, add_tag=["fp"])
    assert ev.record == {"other": 1}


def test_ipv4_network_punctuation_uuid() -> None:
    ev, _ = run({"ip": "192.168.17.42"}, method="IPV4_NETWORK", key="16", source=["ip"])
    assert ev.record["fingerprint"] == "192.168.0.0"
    bad, f = run({"ip": "not-an-ip"}, method="IPV4_NETWORK", key="16", source=["ip"])
    assert bad.record["tags"] == ["_fingerprintfailure"] and f.failures == 1
    p, _ = run({"message": "GET /a?b=1 HTTP/1.1"}, method="PUNCTUATION")
    assert p.record["fingerprint"] == "/?=/."
    u1, _ = run({}, method="UUID")
    u2, _ = run({}, method="UUID")
    assert len(u1.record["fingerprint"]) == 36 and u1.record["fingerprint"] != u2.record["fingerprint"]


@pytest.mark.parametrize("settings, setting", [({"method": "CRC32"}, "method"),
                                               ({"method": "IPV4_NETWORK"}, "key"),
                                               ({"method": "IPV4_NETWORK", "key": "40"}, "key")])
def test_bad_settings(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        FingerprintFilter(**settings)
    assert info.value.setting == setting
