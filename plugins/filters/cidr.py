"""Logstash's `cidr` filter: does an event's IP address fall inside one of these networks?

On a match the common success actions run (`add_tag`, `add_field`, …) — the filter changes
nothing else, as in Logstash. Addresses come from `address` (sprintf templates, e.g.
`"%{clientip}"`) or `address_field` (a field holding one address or an array); networks from
`network` (CIDR blocks or single addresses; sprintf allowed, and a comma-separated text is
several networks, so `"%{whitelist}"` of an array field works) or from `network_path` (a file,
entries split on `separator`, re-read every `refresh_interval` seconds when it changed). An
address that does not parse is skipped and counted (`logpipe_filter_cidr_invalid_addresses_total`;
a DEBUG line: an event without the field must not write a warning each), a network that does
not parse is skipped with a warning; never an error. IPv4 and
IPv6 never match each other. Host bits in a block are ignored (`192.168.1.5/24` is
`192.168.1.0/24`), as Ruby's IPAddr does.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter, compile_sprintf, has_sprintf
from logpipe.plugin import Filter, Setting

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class CidrFilter(Filter):
    name = "cidr"
    creates_events = False
    doc = "Runs add_tag/add_field when an IP address lies in one of the given networks (Logstash cidr)."
    settings: ClassVar[list[Setting]] = [
        Setting("address", "array", default=[], doc="addresses to check, sprintf templates (\"%{clientip}\")"),
        Setting("address_field", "string", doc="a field holding the address (or an array of them)"),
        Setting("network", "array", default=[], doc="CIDR blocks or addresses (sprintf; commas separate several)"),
        Setting("network_path", "path", doc="a file of networks, one per `separator`"),
        Setting("separator", "string", default="\n", doc="what separates the networks in network_path"),
        Setting("refresh_interval", "int", default=600, min=0,
                doc="seconds between checks of network_path for changes; 0 never"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        if p["network_path"] and p["network"]:
            raise ConfigError("the options 'network' and 'network_path' are mutually exclusive",
                              setting="network_path")
        if p["address_field"] and p["address"]:
            raise ConfigError("the options 'address' and 'address_field' are mutually exclusive",
                              setting="address_field")
        self._addresses = self._address_source()
        self._invalid = self.metrics.counter("cidr_invalid_addresses", "addresses that are not IP addresses")
        self._static: list[Network] | None = None
        self._dynamic: list[Callable[[Event], str]] = []
        self._path: str | None = p["network_path"]
        self._mtime = 0.0
        self._next_check = 0.0
        if self._path:
            try:
                self._load_file()
            except OSError as exc:
                raise ConfigError(f"cannot read the network list {self._path}: {exc.strerror or exc}",
                                  setting="network_path") from None
            self._next_check = time.monotonic() + p["refresh_interval"]
        elif any(has_sprintf(n) for n in p["network"]):
            self._dynamic = [compile_sprintf(str(n)) for n in p["network"]]
        else:
            self._static = self._parse_networks(str(n) for n in p["network"])

    def _address_source(self) -> Callable[[Event], list[Any]]:
        field = self.params["address_field"]
        if field:
            get = compile_getter(field)

            def from_field(ev: Event) -> list[Any]:
                value = get(ev)
                if value is MISSING or value is None:
                    return []
                return value if isinstance(value, list) else [value]
            return from_field
        templates = [compile_sprintf(str(a)) for a in self.params["address"]]
        return lambda ev: [t(ev) for t in templates]

    def _parse_networks(self, texts: Iterable[str]) -> list[Network]:
        networks = []
        for text in texts:
            for part in text.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    networks.append(ipaddress.ip_network(part, strict=False))
                except ValueError:
                    self.log.warning("cidr: invalid IP network %r, skipping", part)
        return networks

    def _load_file(self) -> None:
        assert self._path is not None
        mtime = os.stat(self._path).st_mtime
        if mtime == self._mtime:
            return
        with open(self._path, encoding="utf-8") as f:
            entries = f.read().split(self.params["separator"])
        networks = self._parse_networks(entries)
        if networks or self._static is None:
            self._static = networks
        self._mtime = mtime

    def _maybe_refresh(self) -> None:
        interval = self.params["refresh_interval"]
        if interval <= 0 or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + interval
        try:
            self._load_file()
        except OSError as exc:
            self.log.error("cidr: keeping the previous network list; cannot read %s: %s", self._path, exc)

    def filter(self, events: list[Event]) -> list[Event]:
        if self._path:
            self._maybe_refresh()
        for ev in events:
            networks = self._static if self._static is not None else \
                self._parse_networks(render(ev) for render in self._dynamic)
            if networks and self._inside(ev, networks):
                self.matched(ev)
        return events

    def _inside(self, ev: Event, networks: list[Network]) -> bool:
        for raw in self._addresses(ev):
            try:
                address: Address = ipaddress.ip_address(str(raw).strip())
            except ValueError:
                self._invalid.inc()
                self.log.debug("cidr: invalid IP address %r, skipping", raw)
                continue
            for network in networks:
                if address in network:
                    return True
        return False
