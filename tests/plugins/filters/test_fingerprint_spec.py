"""Vectors derived from logstash-filter-fingerprint's own spec (spec/filters/fingerprint_spec.rb):
the same configs and events, the same expected fingerprints, in both ECS modes where the spec
runs both (the target moves to [event][hash])."""

from __future__ import annotations

from typing import Any

import pytest

from logpipe.event import Event
from logpipe.fields import get_field
from logpipe.timefmt import parse_iso8601
from logpipe_plugins.filters.fingerprint import FingerprintFilter

IP = {"clientip": "123.123.123.123"}
KEY = "longencryptionkey"
T0 = 0

VECTORS: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = [
    ("IPV4_NETWORK", {"source": ["clientip"], "method": "IPV4_NETWORK", "key": "24"}, IP, "123.123.123.0"),
    ("MURMUR3 string", {"source": ["clientip"], "method": "MURMUR3"}, IP, 4013733395),
    ("MURMUR3 number", {"source": ["clientip"], "method": "MURMUR3"}, {"clientip": 123}, 823512154),
    ("MURMUR3_128 hex", {"source": ["clientip"], "method": "MURMUR3_128"}, IP, "41cbc4056eed401d091dfbeabf7ea9e0"),
    ("MURMUR3_128 b64", {"source": ["clientip"], "method": "MURMUR3_128", "base64encode": True}, IP,
     "QcvEBW7tQB0JHfvqv36p4A=="),
    ("MURMUR3_128 int32", {"source": ["clientip"], "method": "MURMUR3_128"}, {"clientip": 123},
     "286816c693ac410ed63e1430dcd6f6fe"),
    ("MURMUR3_128 int32 b64", {"source": ["clientip"], "method": "MURMUR3_128", "base64encode": True},
     {"clientip": 123}, "KGgWxpOsQQ7WPhQw3Nb2/g=="),
    ("MURMUR3_128 int64", {"source": ["clientip"], "method": "MURMUR3_128"}, {"clientip": 2148483647},
     "fdc7699a82556c8c584131f0133ee989"),
    ("MURMUR3_128 int64 b64", {"source": ["clientip"], "method": "MURMUR3_128", "base64encode": True},
     {"clientip": 2148483647}, "/cdpmoJVbIxYQTHwEz7piQ=="),
    ("SHA1", {"source": ["clientip"]}, IP, "3a5076c520b4b463f43806896ea0b3978d09dcae"),
    ("SHA1 HMAC", {"source": ["clientip"], "key": KEY}, IP, "fdc60acc4773dc5ac569ffb78fcb93c9630797f4"),
    ("SHA1 HMAC b64", {"source": ["clientip"], "key": KEY, "base64encode": True}, IP, "/cYKzEdz3FrFaf+3j8uTyWMHl/Q="),
    ("SHA1 b64", {"source": ["clientip"], "base64encode": True}, IP, "OlB2xSC0tGP0OAaJbqCzl40J3K4="),
    ("SHA256", {"source": ["clientip"], "method": "SHA256"}, IP,
     "4dabcab210766e35f03e77120e6986d6e6d4752b2a9ff22980b9253d026080d8"),
    ("SHA256 HMAC", {"source": ["clientip"], "method": "SHA256", "key": KEY}, IP,
     "345bec3eff242d53b568916c2610b3e393d885d6b96d643f38494fd74bf4a9ca"),
    ("SHA256 HMAC b64", {"source": ["clientip"], "method": "SHA256", "key": KEY, "base64encode": True}, IP,
     "NFvsPv8kLVO1aJFsJhCz45PYhda5bWQ/OElP10v0qco="),
    ("SHA384", {"source": ["clientip"], "method": "SHA384"}, IP,
     "fd605b0a3af3e04ce0d7a0b0d9c48d67a12dab811f60072e6eae84e35d567793ffb68a1807536f11c90874065c2a4392"),
    ("SHA384 HMAC", {"source": ["clientip"], "method": "SHA384", "key": KEY}, IP,
     "22d4c0e8c4fbcdc4887d2038fca7650f0e2e0e2457ff41c06eb2a980dded6749561c814fe182aff93e2538d18593947a"),
    ("SHA384 HMAC b64", {"source": ["clientip"], "method": "SHA384", "key": KEY, "base64encode": True}, IP,
     "ItTA6MT7zcSIfSA4/KdlDw4uDiRX/0HAbrKpgN3tZ0lWHIFP4YKv+T4lONGFk5R6"),
    ("SHA512", {"source": ["clientip"], "method": "SHA512"}, IP,
     "5468e2dc64ea92b617782aae884b35af60041ac9e168a283615b6a462c54c13d"
     "42fa9542cce9b7d76a8124ac6616818905e3e5dd35d6e519f77c3b517558639a"),
    ("SHA512 HMAC", {"source": ["clientip"], "method": "SHA512", "key": KEY}, IP,
     "11c19b326936c08d6c50a3c847d883e5a1362e6a64dd55201a25f2c1ac1b673f"
     "7d8bf15b8f112a4978276d573275e3b14166e17246f670c2a539401c5bfdace8"),
    ("SHA512 HMAC b64", {"source": ["clientip"], "method": "SHA512", "key": KEY, "base64encode": True}, IP,
     "EcGbMmk2wI1sUKPIR9iD5aE2Lmpk3VUgGiXywawbZz99i/FbjxEqSXgnbVcydeOxQWbhckb2cMKlOUAcW/2s6A=="),
    ("MD5", {"source": ["clientip"], "method": "MD5"}, IP, "ccdd8d3d940a01b2fb3258c059924c0d"),
    ("MD5 HMAC", {"source": ["clientip"], "method": "MD5", "key": KEY}, IP, "9336c879e305c9604a3843fc3e75948f"),
    ("MD5 HMAC b64", {"source": ["clientip"], "method": "MD5", "key": KEY, "base64encode": True}, IP,
     "kzbIeeMFyWBKOEP8PnWUjw=="),
    ("array source", {"source": ["clientip"]}, {"clientip": ["123.123.123.123", "223.223.223.223"]},
     ["3a5076c520b4b463f43806896ea0b3978d09dcae", "47bbc4e06edebbace047fed35abeceec64968b81"]),
    # Logstash's Event.new adds "@version" => "1"; the record carries it here explicitly.
    ("concatenate_all_fields", {"concatenate_all_fields": True},
     {"@timestamp": "2017-07-26T14:44:27.064Z", "clientip": "123.123.123.123", "message": "This is a test message",
      "log_level": "INFO", "offset": 123456789, "type": "test", "@version": "1"},
     "cbf022518e97860403160ed8a41847c0db104e63"),
    ("several sources: last wins", {"source": ["field1", "field2"]}, {"field1": "test1", "field2": "test2"},
     "109f4b3c50d7b0df729d299bc6f8e9ef9066971f"),
    ("concatenate_sources", {"source": ["field1", "field2"], "concatenate_sources": True},
     {"field1": "test1", "field2": "test2"}, "e3b6b71eedc656f1d29408264e8a75535db985cb"),
    ("utf-8, last wins", {"source": ["field1", "field2"]},
     {"field1": [{"inner_key": "🂡"}, {"1": "2"}], "field2": "🂡"}, "58fa9e0e60c9f0d24b51d84cddb26732a39eeb3d"),
    ("utf-8 concatenate_sources", {"source": ["field1", "field2"], "concatenate_sources": True},
     {"field1": [{"inner_key": "🂡"}, {"1": "2"}], "field2": "🂡"}, "d2a1c14e0c9ef137d67114db23b3f2fdbcc90d08"),
    ("PUNCTUATION", {"source": ["field1"], "method": "PUNCTUATION"},
     {"field1": "PHP Warning:  json_encode() [<a href='function.json-encode'>function.json-encode</a>]: "
                "Invalid UTF-8 sequence in argument in /var/www/htdocs/test.php on line 233"},
     ":_()[<='.-'>.-</>]:-////."),
    ("timestamp SHA1 HMAC", {"source": ["@timestamp"], "key": "0123"}, {"@timestamp": "1970-01-01T00:00:00Z"},
     "1d5379ec92d86a67cfc642d55aa050ca312d3b9a"),
    ("timestamp MURMUR3", {"source": ["@timestamp"], "method": "MURMUR3"}, {"@timestamp": "1970-01-01T00:00:00Z"},
     743372282),
    ("timestamp MURMUR3_128", {"source": ["@timestamp"], "method": "MURMUR3_128"},
     {"@timestamp": "1970-01-01T00:00:00Z"}, "37785b62a8cae473acc315d39b66d86e"),
    ("timestamp ms", {"source": ["@timestamp"], "method": "MURMUR3"}, {"@timestamp": "2000-01-01T05:00:00.12Z"},
     4263087275),
    ("timestamp µs", {"source": ["@timestamp"], "method": "MURMUR3"},
     {"@timestamp": "2000-01-01T05:00:00.123456Z"}, 4188855160),
    ("timestamp ns", {"source": ["@timestamp"], "method": "MURMUR3"},
     {"@timestamp": "2000-01-01T05:00:00.123456789Z"}, 3520111535),
]


def _event(data: dict[str, Any]) -> Event:
    record = dict(data)
    stamp = record.pop("@timestamp", None)
    time = parse_iso8601(stamp) if stamp else T0
    return Event("t", time, record)


@pytest.mark.parametrize("ecs", ["disabled", "v1", "v8"])
@pytest.mark.parametrize(("name", "config", "data", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_spec_vector(name: str, config: dict[str, Any], data: dict[str, Any], expected: Any, ecs: str) -> None:
    ev = _event(data)
    FingerprintFilter(**config, ecs_compatibility=ecs).filter([ev])
    target = "fingerprint" if ecs == "disabled" else "[event][hash]"
    assert get_field(ev, target) == expected


def test_post_fingerprint_triggers() -> None:
    ev = Event("t", T0, {"field1": "Hello, World!"})
    FingerprintFilter(source=["field1"], method="PUNCTUATION", add_field={"myfield": "myvalue"},
                      add_tag=["mytag"]).filter([ev])
    assert ev.record["myfield"] == "myvalue" and "mytag" in ev.record["tags"]
    assert ev.record["fingerprint"] == ",!"


@pytest.mark.parametrize("config", [{"source": ["a"]}, {"source": ["a", "b"], "concatenate_sources": True},
                                    {"concatenate_all_fields": True}])
def test_tolerance_to_hash_order(config: dict[str, Any]) -> None:
    one = Event("t", T0, {"a": {"a0": 0, "a1": 1}, "b": {"b0": 0, "b1": 1}})
    two = Event("t", T0, {"b": {"b1": 1, "b0": 0}, "a": {"a1": 1, "a0": 0}})
    f = FingerprintFilter(**config)
    f.filter([one, two])
    assert one.record["fingerprint"] == two.record["fingerprint"]
