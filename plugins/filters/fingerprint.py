"""Logstash's `fingerprint` filter: a stable hash of fields, typically a deterministic document
`_id` so that replayed duplicates (at-least-once delivery) overwrite instead of multiplying.

Methods: SHA1 (default), SHA256, SHA384, SHA512, MD5 (HMAC when `key` is set; hex, or base64
with `base64encode`), MURMUR3 (x86 32-bit, seed 0, an integer), MURMUR3_128 (x64 128-bit,
seed 2, hex or base64), IPV4_NETWORK (`key` is the prefix length), PUNCTUATION (only the
Unicode punctuation and symbols of the text), UUID (random, ignores the source).

Values are hashed as Logstash's plugin does (measured against its RSpec vectors): integers
hash their 8 little-endian bytes for MURMUR3 and 4 or 8 for MURMUR3_128, everything else its
text; a hash becomes `k|v|k2|v2` in sorted key order and an array `a|b`, so equal content
always gives the same fingerprint; an array source gives an array of digests; `@timestamp`
is its ISO-8601 text with 3, 6 or 9 fraction digits (as Logstash 8 prints it). With several
sources each present one is hashed in turn and the last wins; `concatenate_sources` hashes
`|name|value|name2|value2|` for the sources in sorted order, `concatenate_all_fields` the
same for every field of the event (Logstash's events carry `@version`; logpipe's only when
an input set it).

MurmurHash comes from `mmh3`, the maintained C implementation of both variants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import struct
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import mmh3
import regex

from logpipe.fields import MISSING, TIMESTAMP, add_tag, compile_getter, compile_setter, parse_ref, render_value
from logpipe.helpers import ecs
from logpipe.plugin import ConfigError, Event, Filter, Setting
from logpipe.timefmt import format_iso_precise

_HASHES = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512", "MD5": "md5"}
METHODS = (*_HASHES, "MURMUR3", "MURMUR3_128", "IPV4_NETWORK", "PUNCTUATION", "UUID")
_INT32 = range(-(2**31), 2**31)
_NOT_PUNCT = regex.compile(r"[^\p{P}\p{S}]")


class Timestamp(str):
    """The text of `@timestamp` (a str subclass so that it hashes as text, never as a number)."""


def murmur3_32(data: bytes | str, seed: int = 0) -> int:
    """MurmurHash3, x86 32-bit variant, unsigned result."""
    return int(mmh3.hash(data, seed, signed=False))


def _murmur3_value(value: Any) -> int:
    """As the murmurhash3 gem's V32: integers hash their 8 little-endian bytes, the rest their text."""
    if value.__class__ is int:
        return murmur3_32(struct.pack("<q", _wrap64(value)))
    return murmur3_32(serialize(value).encode())


def _murmur3_128(b64: bool) -> Callable[[Any], str]:
    def digest(value: Any) -> str:
        if value.__class__ is int:
            data = struct.pack("<i", value) if value in _INT32 else struct.pack("<q", _wrap64(value))
        else:
            data = serialize(value).encode()
        raw = mmh3.hash_bytes(data, 2, x64arch=True)
        return base64.b64encode(raw).decode() if b64 else raw.hex()

    return digest


def _wrap64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def serialize(value: Any) -> str:
    """Logstash's canonical text of a value: hashes `k|v` in sorted key order, arrays `a|b`."""
    if value.__class__ is str or isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return "|".join(f"{serialize(k)}|{serialize(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    if isinstance(value, list):
        return "|".join(serialize(v) for v in value)
    if value is None:
        return ""
    return render_value(value)


def _hasher(method: str, key: str | None, b64: bool) -> Callable[[Any], Any]:
    algo = _HASHES[method]
    encode: Callable[[bytes], str] = (lambda d: base64.b64encode(d).decode()) if b64 else bytes.hex
    if key:
        template = hmac.new(key.encode(), digestmod=algo)

        def keyed(value: Any) -> str:
            mac = template.copy()
            mac.update(serialize(value).encode())
            return encode(mac.digest())

        return keyed
    new = getattr(hashlib, algo)
    return lambda value: encode(new(serialize(value).encode()).digest())


def _ipv4_network(prefix: int) -> Callable[[Any], Any]:
    def network(value: Any) -> Any:
        try:
            return str(ipaddress.IPv4Network(f"{serialize(value).strip()}/{prefix}", strict=False).network_address)
        except ValueError:
            return MISSING

    return network


def _punctuation(value: Any) -> Any:
    """Only strings have punctuation to keep (Logstash gsubs the field's string)."""
    return _NOT_PUNCT.sub("", value) if isinstance(value, str) else MISSING


class FingerprintFilter(Filter):
    name = "fingerprint"
    creates_events = False
    doc = "Hashes fields into a fingerprint (deterministic ids for idempotent outputs)."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "array", default=["message"], doc="fields to hash"),
        Setting("target", "string", doc="where the fingerprint goes (default fingerprint; [event][hash] with ECS)"),
        Setting("method", "string", default="SHA1", doc=" | ".join(METHODS)),
        Setting("key", "string", doc="HMAC key for SHA*/MD5; prefix length for IPV4_NETWORK"),
        Setting("base64encode", "bool", default=False, doc="base64 instead of hex for SHA*/MD5/MURMUR3_128"),
        Setting("concatenate_sources", "bool", default=False, doc="hash all sources together"),
        Setting("concatenate_all_fields", "bool", default=False, doc="hash every field of the event"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="v1/v8: the default target is [event][hash]"),
        Setting("tag_on_failure", "array", default=["_fingerprintfailure"],
                doc="tags added when a value cannot be fingerprinted (IPV4_NETWORK of a non-address)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self.failures = 0
        self._failure_tags = [str(t) for t in p["tag_on_failure"]]
        method = str(p["method"]).strip().upper()
        key: str | None = p["key"]
        if method in _HASHES:
            self._hash: Callable[[Any], Any] = _hasher(method, key, p["base64encode"])
        elif method == "MURMUR3":
            self._hash = _murmur3_value
        elif method == "MURMUR3_128":
            self._hash = _murmur3_128(p["base64encode"])
        elif method == "IPV4_NETWORK":
            if key is None or not str(key).strip().isdigit() or not 0 <= int(key) <= 32:
                raise ConfigError("IPV4_NETWORK needs `key` set to a prefix length between 0 and 32",
                                  setting="key")
            self._hash = _ipv4_network(int(key))
        elif method == "PUNCTUATION":
            self._hash = _punctuation
        elif method == "UUID":
            self._hash = lambda value: str(uuid.uuid4())
        else:
            raise ConfigError(f"unknown fingerprint method {p['method']!r}; allowed: {', '.join(METHODS)}",
                              setting="method")
        self._method = method
        self._sources = [str(s) for s in p["source"]]
        if method == "PUNCTUATION":
            self._sources.sort()  # Logstash walks the sources sorted for this method
        self._getters = [_source_getter(s) for s in self._sources]
        self._sorted = sorted(zip(self._sources, self._getters, strict=True), key=lambda pair: pair[0])
        target = p["target"] or ("fingerprint" if p["ecs_compatibility"] == "disabled" else "[event][hash]")
        self._put = compile_setter(target)
        self._concat: bool = p["concatenate_sources"]
        self._all: bool = p["concatenate_all_fields"]

    def _value(self, ev: Event) -> Any:
        """What gets hashed for this event when fields are concatenated."""
        if self._all:
            items = [*ev.record.items(), (TIMESTAMP, Timestamp(format_iso_precise(ev.time)))]
            items.sort(key=lambda kv: kv[0])
            pairs = items
        else:
            pairs = [(name, get(ev)) for name, get in self._sorted]
        return "".join(f"|{k}|{_text(v)}" for k, v in pairs) + "|"

    def filter(self, events: list[Event]) -> list[Event]:
        put, hash_, decorate = self._put, self._hash, self._decorate
        combined = (self._all or self._concat) and self._method not in ("UUID", "PUNCTUATION")
        uuid_only = self._method == "UUID"
        for ev in events:
            done = False
            failed = False
            if uuid_only:
                put(ev, hash_(None))
                done = True
            elif combined:
                put(ev, hash_(self._value(ev)))
                done = True
            else:
                for get in self._getters:
                    value = get(ev)
                    if value is MISSING:
                        continue
                    if isinstance(value, list) and self._method != "PUNCTUATION":
                        result: Any = [hash_(v) for v in value]
                        if MISSING in result:
                            failed = True
                            continue
                    else:
                        result = hash_(value)
                        if result is MISSING:
                            failed = self._method != "PUNCTUATION"
                            continue
                    put(ev, result)
                    done = True
            if failed:
                self.failures += 1
                for tag in self._failure_tags:
                    add_tag(ev, tag)
            elif done and decorate is not None:
                decorate(ev)
        return events


def _source_getter(source: str) -> Callable[[Event], Any]:
    """A field getter; `@timestamp` reads as Logstash 8 prints it (3, 6 or 9 fraction digits)."""
    if parse_ref(source) == (TIMESTAMP,):
        return lambda ev: Timestamp(format_iso_precise(ev.time))
    return compile_getter(source)


def _text(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    return serialize(value)
