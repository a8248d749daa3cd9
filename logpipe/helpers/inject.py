"""Fluentd's `<inject>` section: the event's time, tag and host written into the record just
before an output formats it (`time_key`, `time_type` float|unixtime|string, `time_format`
(Ruby strftime, `%N`/`%L`/`%3N` fractions, `%:z`), `localtime`/`utc`/`timezone`, `tag_key`,
`hostname_key`/`hostname`, `worker_id_key`).

The record is copied, never changed in place: the same event may go to several outputs.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.timefmt import resolve_zone

NS = 1_000_000_000
KNOWN = frozenset({"time_key", "time_type", "time_format", "localtime", "utc", "timezone", "tag_key",
                   "hostname_key", "hostname", "worker_id_key", "@type", "@args"})
_FRACTION = re.compile(r"%(\d*)N|%L|%:z|%s")


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    text = str(value).strip().lower()
    return text in ("", "true", "yes", "on", "1")  # a bare `utc` line is true, as in Fluentd


def compile_strftime(fmt: str | None, zone: Any) -> Callable[[int], str]:
    """Ruby strftime of an ns time in a zone (None: local time); no format is ISO-8601 with offset,
    as Fluentd's TimeFormatter."""
    pattern = fmt or "%Y-%m-%dT%H:%M:%S%z"

    def render(ns: int) -> str:
        secs, frac = divmod(ns, NS)
        moment = datetime.fromtimestamp(secs, zone) if zone is not None else datetime.fromtimestamp(secs).astimezone()

        def special(m: re.Match[str]) -> str:
            token = m.group(0)
            if token == "%L":
                return f"{frac // 1_000_000:03d}"
            if token == "%s":
                return str(secs)
            if token == "%:z":
                off = moment.utcoffset() or timedelta(0)
                total = int(off.total_seconds())
                sign = "-" if total < 0 else "+"
                return f"{sign}{abs(total) // 3600:02d}:{abs(total) % 3600 // 60:02d}"
            width = int(m.group(1) or 9)
            return f"{frac:09d}"[:width]

        return moment.strftime(_FRACTION.sub(lambda m: special(m).replace("%", "%%"), pattern))

    return render


def _iso8601(zone: Any) -> Callable[[int], str]:
    """No time_format: Ruby's Time#iso8601, as Fluentd's TimeFormatter — `Z` in UTC, else `+09:00`."""
    if zone is UTC:
        return lambda ns: datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return compile_strftime("%Y-%m-%dT%H:%M:%S%:z", zone)


def compile_injector(conf: dict[str, Any]) -> Callable[[Event], Event] | None:
    """The injection an `<inject>` dict asks for, None when it asks for nothing."""
    unknown = sorted(set(conf) - KNOWN)
    if unknown:
        raise ConfigError(f"unknown <inject> parameter(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(KNOWN - {'@type', '@args'}))}", setting="inject")
    time_key = conf.get("time_key")
    tag_key = conf.get("tag_key")
    host_key = conf.get("hostname_key")
    worker_key = conf.get("worker_id_key")
    if not (time_key or tag_key or host_key or worker_key):
        return None
    time_type = str(conf.get("time_type", "float"))
    if time_type not in ("float", "unixtime", "string"):
        raise ConfigError(f"<inject> time_type must be float, unixtime or string, got {time_type!r}",
                          setting="inject")
    zone: Any
    if conf.get("timezone"):
        try:
            zone = resolve_zone(str(conf["timezone"])) or UTC
        except ConfigError as exc:
            raise ConfigError(f"<inject> {exc.message}", setting="inject") from None
    elif _bool(conf.get("utc"), False) or not _bool(conf.get("localtime"), True):
        zone = UTC
    else:
        zone = None
    render = compile_strftime(conf["time_format"], zone) if conf.get("time_format") else _iso8601(zone)
    hostname = str(conf.get("hostname") or socket.gethostname())
    worker = os.environ.get("LOGPIPE_WORKER_ID", "0")

    def time_value(ns: int) -> Any:
        if time_type == "float":
            return ns / NS
        if time_type == "unixtime":
            return ns // NS
        return render(ns)

    def inject(ev: Event) -> Event:
        record = dict(ev.record)
        # Fluentd's inject_values_to_record order: hostname, worker id, tag, time.
        if host_key:
            record[str(host_key)] = hostname
        if worker_key:
            record[str(worker_key)] = worker
        if tag_key:
            record[str(tag_key)] = ev.tag
        if time_key:
            record[str(time_key)] = time_value(ev.time)
        return Event(ev.tag, ev.time, record, ev.meta)

    return inject
