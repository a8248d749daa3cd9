"""Logstash's `fingerprint` filter: a stable hash of fields, typically a deterministic document
`_id` so that replayed duplicates (at-least-once delivery) overwrite instead of multiplying.

Methods: SHA1 (default), SHA256, SHA384, SHA512, MD5 (HMAC when `key` is set; hex, or base64
with `base64encode`), MURMUR3 (32-bit, seed 0, an integer, as Logstash), IPV4_NETWORK (`key`
is the prefix length), PUNCTUATION (the text minus letters, digits, space and tab), UUID
(random, ignores the source).

With several `source` fields each present one is hashed in turn and the last wins (Logstash);
`concatenate_sources` hashes `|name|value|` for every source in sorted order, and
`concatenate_all_fields` does that for every field of the event. Hashes and arrays are
serialised as sorted-key JSON so equal content always gives the same fingerprint.

MURMUR3 is implemented here in pure Python (the x86 32-bit variant) rather than pulling in the
`mmh3` C extension: it is a small, fixed algorithm, verified against the reference vectors.
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

import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter, render_value
from logpipe.plugin import Filter, Setting
from logpipe.timefmt import format_iso_ms

_M32 = 0xFFFFFFFF
_HASHES = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512", "MD5": "md5"}
METHODS = (*_HASHES, "MURMUR3", "IPV4_NETWORK", "PUNCTUATION", "UUID")


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3, x86 32-bit variant, unsigned result."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & _M32
    length = len(data)
    body = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:body]):
        k = (k * c1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        h ^= (k * c2) & _M32
        h = ((h << 13) | (h >> 19)) & _M32
        h = (h * 5 + 0xE6546B64) & _M32
    tail = data[body:]
    if tail:
        k = 0
        for i, byte in enumerate(tail):
            k |= byte << (8 * i)
        k = (k * c1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        h ^= (k * c2) & _M32
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def _murmur3_value(value: Any) -> int:
    """As Logstash's murmurhash3 gem: integers hash their little-endian bytes, the rest their text."""
    if value.__class__ is int:
        if abs(value) < 2**32:
            return murmur3_32(struct.pack("<I", value & _M32))
        return murmur3_32(struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF))
    return murmur3_32(serialize(value).encode())


def serialize(value: Any) -> str:
    """Deterministic text of a value: strings as they are, containers as sorted-key JSON."""
    if value.__class__ is str:
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
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


def _punctuation(value: Any) -> str:
    return serialize(value).translate(_PUNCT_TABLE)


_PUNCT_TABLE = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 \t")


class FingerprintFilter(Filter):
    name = "fingerprint"
    doc = "Hashes fields into a fingerprint (deterministic ids for idempotent outputs)."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "array", default=["message"], doc="fields to hash"),
        Setting("target", "string", default="fingerprint", doc="where the fingerprint goes"),
        Setting("method", "string", default="SHA1", doc=" | ".join(METHODS)),
        Setting("key", "string", doc="HMAC key for SHA*/MD5; prefix length for IPV4_NETWORK"),
        Setting("base64encode", "bool", default=False, doc="base64 instead of hex for SHA*/MD5"),
        Setting("concatenate_sources", "bool", default=False, doc="hash all sources together"),
        Setting("concatenate_all_fields", "bool", default=False, doc="hash every field of the event"),
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
        self._getters = [compile_getter(s) for s in self._sources]
        self._sorted = sorted(zip(self._sources, self._getters, strict=True), key=lambda pair: pair[0])
        self._put = compile_setter(p["target"])
        self._concat: bool = p["concatenate_sources"]
        self._all: bool = p["concatenate_all_fields"]

    def _value(self, ev: Event) -> Any:
        """What gets hashed for this event, or MISSING when no source is present."""
        if self._all:
            items = [*ev.record.items(), ("@timestamp", format_iso_ms(ev.time))]
            items.sort(key=lambda kv: kv[0])
            return "".join(f"|{k}|{_text(v)}|" for k, v in items)
        if self._concat:
            return "".join(f"|{name}|{_text(get(ev))}|" for name, get in self._sorted)
        return MISSING

    def filter(self, events: list[Event]) -> list[Event]:
        put, hash_, decorate = self._put, self._hash, self._decorate
        combined = self._all or self._concat
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
                    result = hash_(value)
                    if result is MISSING:
                        failed = True
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


def _text(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    return serialize(value)
