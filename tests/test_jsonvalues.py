"""One rule for values JSON cannot hold, the same through every output: checked through the json
codec (file, stdout, http …), the forward/msgpack path and sprintf."""

from __future__ import annotations

from decimal import Decimal

import msgpack
import orjson

from logpipe.event import Event
from logpipe.fields import compile_sprintf
from logpipe.jsonvalues import json_default, msgpack_default
from logpipe_plugins.codecs.json import JsonCodec

RECORD = {"raw": b"caf\xc3\xa9 \xff", "ids": {3, 1, 2}, "mixed": frozenset({1}), "price": Decimal("9.50"),
          "inf": Decimal("Infinity"), "other": object.__new__(type("Thing", (), {"__str__": lambda s: "thing"}))}


def test_json_rule() -> None:
    doc = orjson.loads(orjson.dumps(RECORD, default=json_default))
    assert doc["raw"] == "café \ufffd" and doc["ids"] == [1, 2, 3] and doc["mixed"] == [1]
    assert doc["price"] == 9.5 and doc["inf"] == "Infinity" and doc["other"] == "thing"


def test_msgpack_keeps_bytes_binary() -> None:
    doc = msgpack.unpackb(msgpack.packb(RECORD, default=msgpack_default, use_bin_type=True), raw=False)
    assert doc["raw"] == b"caf\xc3\xa9 \xff" and doc["ids"] == [1, 2, 3] and doc["price"] == 9.5


def test_the_json_codec_and_sprintf_follow_it() -> None:
    line = JsonCodec().encode([Event("t", 0, {"raw": b"x\xff", "ids": {2, 1}})])
    doc = orjson.loads(line)
    assert doc["raw"] == "x\ufffd" and doc["ids"] == [1, 2]
    assert compile_sprintf("%{ids}")(Event("t", 0, {"ids": {"b": {2, 1}}})) == '{"b":[1,2]}'
