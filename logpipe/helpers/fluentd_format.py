"""Fluentd's text forms of an event: out_stdout / filter_stdout
(`2015-05-17 10:05:03.000000000 +0000 web.access: {"k":"v"}`) and out_file's default
(`2015-05-17T10:05:03+00:00<TAB>web.access<TAB>{"k":"v"}`). Times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from logpipe.event import Event
from logpipe.jsonvalues import json_default

NS = 1_000_000_000


def stdout_line(ev: Event) -> bytes:
    secs, frac = divmod(ev.time, NS)
    stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d %H:%M:%S")
    body = orjson.dumps(ev.record, default=json_default)
    return f"{stamp}.{frac:09d} +0000 {ev.tag}: ".encode() + body + b"\n"


def out_file_line(ev: Event) -> bytes:
    stamp = datetime.fromtimestamp(ev.time // NS, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"{stamp}\t{ev.tag}\t".encode() + orjson.dumps(ev.record, default=json_default) + b"\n"
