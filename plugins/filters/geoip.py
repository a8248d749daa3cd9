"""Logstash's `geoip` filter: where an IP address is, from a MaxMind DB file (GeoLite2, GeoIP2, DB-IP).

The reader is `maxminddb` (MaxMind's own, with its C extension when installed). What lands in
the event follows the Logstash plugin (8.x):

- the database type comes from the file's metadata (City, Country, ASN, ISP, Domain,
  Anonymous-IP, Enterprise); `fields` picks fields by their Logstash names (`city_name`,
  `AUTONOMOUS_SYSTEM_NUMBER` …, any case), otherwise each type's default set;
- `ecs_compatibility => disabled` writes the legacy layout under `target` (default `geoip`:
  `[geoip][country_code2]`, `[geoip][location] = {lat, lon}`, `[geoip][latitude]` …); v1/v8 write
  ECS names (`[client][geo][country_iso_code]`, `[client][as][number]`, `[client][mmdb][dma_code]`)
  and, without `target`, take it from a `source` that ends in `[ip]` (`[client][ip]` → `client`);
- an address the database does not know, or text that is not an address (`-`, `N/A`), gives an
  empty hash at `target` and the `tag_on_failure` tags; an empty or missing source only the tags;
- without `database`, the filter looks for `GeoLite2-City.mmdb` (or `-ASN`, per
  `default_database_type`) in the implicit folders below; if there is none it logs an error and
  tags every event `_geoip_expired_database`, as Logstash does when it has no usable database.

Lookups are cached per filter (`cache_size` addresses), so repeated clients cost a dict hit.
"""

from __future__ import annotations

import ipaddress
import os
from collections import OrderedDict
from typing import Any, ClassVar

import maxminddb

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter, parse_ref
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.plugin import Filter, Setting

EXPIRED_TAG = "_geoip_expired_database"
ECS_TARGETS = ("client", "destination", "host", "observer", "server", "source")

#: Field name → (ECS path, legacy path), Logstash's field table; an empty ECS path has no ECS form.
FIELDS: dict[str, tuple[str, str]] = {
    "AUTONOMOUS_SYSTEM_NUMBER": ("as.number", "asn"),
    "AUTONOMOUS_SYSTEM_ORGANIZATION": ("as.organization.name", "as_org"),
    "CITY_NAME": ("geo.city_name", "city_name"),
    "COUNTRY_NAME": ("geo.country_name", "country_name"),
    "CONTINENT_CODE": ("geo.continent_code", "continent_code"),
    "CONTINENT_NAME": ("geo.continent_name", "continent_name"),
    "COUNTRY_CODE2": ("geo.country_iso_code", "country_code2"),
    "COUNTRY_CODE3": ("", "country_code3"),
    "DOMAIN": ("domain", "domain"),
    "IP": ("ip", "ip"),
    "ISP": ("mmdb.isp", "isp"),
    "POSTAL_CODE": ("geo.postal_code", "postal_code"),
    "DMA_CODE": ("mmdb.dma_code", "dma_code"),
    "REGION_NAME": ("geo.region_name", "region_name"),
    "REGION_CODE": ("geo.region_code", "region_code"),
    "REGION_ISO_CODE": ("geo.region_iso_code", "region_iso_code"),
    "TIMEZONE": ("geo.timezone", "timezone"),
    "LOCATION": ("geo.location", "location"),
    "LATITUDE": ("geo.location.lat", "latitude"),
    "LONGITUDE": ("geo.location.lon", "longitude"),
    "ORGANIZATION": ("mmdb.organization", "organization"),
    "NETWORK": ("ip_traits.network", "network"),
    "HOSTING_PROVIDER": ("ip_traits.hosting_provider", "hosting_provider"),
    "TOR_EXIT_NODE": ("ip_traits.tor_exit_node", "tor_exit_node"),
    "ANONYMOUS_VPN": ("ip_traits.anonymous_vpn", "anonymous_vpn"),
    "ANONYMOUS": ("ip_traits.anonymous", "anonymous"),
    "PUBLIC_PROXY": ("ip_traits.public_proxy", "public_proxy"),
    "RESIDENTIAL_PROXY": ("ip_traits.residential_proxy", "residential_proxy"),
}

_CITY = ("IP", "CITY_NAME", "CONTINENT_CODE", "COUNTRY_NAME", "COUNTRY_CODE2", "COUNTRY_CODE3", "POSTAL_CODE",
         "DMA_CODE", "REGION_NAME", "REGION_ISO_CODE", "TIMEZONE", "LOCATION", "LATITUDE", "LONGITUDE")
#: Database kind (matched against the file's database_type) → its default fields, in Logstash's order.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "City": _CITY,
    "Country": ("IP", "COUNTRY_CODE2", "COUNTRY_NAME", "CONTINENT_NAME"),
    "Domain": ("DOMAIN",),
    "ASN": ("IP", "AUTONOMOUS_SYSTEM_NUMBER", "AUTONOMOUS_SYSTEM_ORGANIZATION"),
    "ISP": ("IP", "AUTONOMOUS_SYSTEM_NUMBER", "AUTONOMOUS_SYSTEM_ORGANIZATION", "ISP", "ORGANIZATION"),
    "Anonymous-IP": ("HOSTING_PROVIDER", "TOR_EXIT_NODE", "ANONYMOUS_VPN", "ANONYMOUS", "PUBLIC_PROXY",
                     "RESIDENTIAL_PROXY"),
    "Enterprise": ("IP", "COUNTRY_CODE2", "COUNTRY_NAME", "CONTINENT_NAME", "REGION_ISO_CODE", "REGION_NAME",
                   "CITY_NAME", "LOCATION"),
}
#: Checked in this order: "GeoIP2-Enterprise" mentions no other kind, "GeoLite2-City" only City.
_KINDS = ("Anonymous-IP", "Enterprise", "Domain", "ISP", "ASN", "Country", "City")

_ANON_KEYS = {"HOSTING_PROVIDER": "is_hosting_provider", "TOR_EXIT_NODE": "is_tor_exit_node",
              "ANONYMOUS_VPN": "is_anonymous_vpn", "ANONYMOUS": "is_anonymous", "PUBLIC_PROXY": "is_public_proxy",
              "RESIDENTIAL_PROXY": "is_residential_proxy"}


def database_dirs() -> list[str]:
    """Where a `database`-less filter looks, first match wins: $LOGPIPE_HOME/geoip, /etc/logpipe/geoip,
    then the folders geoipupdate fills on Debian and elsewhere."""
    dirs = []
    home = os.environ.get("LOGPIPE_HOME")
    if home:
        dirs.append(os.path.join(home, "geoip"))
    return dirs + ["/etc/logpipe/geoip", "/var/lib/GeoIP", "/usr/share/GeoIP", "/usr/local/share/GeoIP"]


def find_default_database(kind: str) -> str | None:
    """The first GeoLite2 (or DB-IP lite) file of the kind in the implicit folders."""
    names = [f"GeoLite2-{kind}.mmdb", f"GeoIP2-{kind}.mmdb", f"dbip-{kind.lower()}-lite.mmdb"]
    for folder in database_dirs():
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def database_kind(database_type: str) -> str | None:
    """The Logstash database kind of a file's `database_type` metadata (None: unsupported)."""
    for kind in _KINDS:
        if kind.lower() in database_type.lower():
            return kind
    return None


def java_host_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as Logstash writes it (Java's getHostAddress): IPv6 as eight groups, no `::`."""
    if ip.version == 4:
        return str(ip)
    return ":".join(f"{int(group, 16):x}" for group in ip.exploded.split(":"))


def _name(section: Any) -> Any:
    return section.get("names", {}).get("en") if isinstance(section, dict) else None


def extract(record: dict[str, Any], field: str, ip_text: str, network: str | None) -> Any:
    """One Logstash field from a raw MaxMind record (None when the record lacks it)."""
    if field == "IP":
        return ip_text
    location = record.get("location") or {}
    country = record.get("country") or {}
    continent = record.get("continent") or {}
    subdivisions = record.get("subdivisions") or [{}]
    subdivision = subdivisions[-1]
    if field == "CITY_NAME":
        return _name(record.get("city"))
    if field == "CONTINENT_CODE":
        return continent.get("code")
    if field == "CONTINENT_NAME":
        return _name(continent)
    if field == "COUNTRY_NAME":
        return _name(country)
    if field in ("COUNTRY_CODE2", "COUNTRY_CODE3"):
        return country.get("iso_code")
    if field == "POSTAL_CODE":
        return (record.get("postal") or {}).get("code")
    if field == "DMA_CODE":
        return location.get("metro_code")
    if field == "REGION_NAME":
        return _name(subdivision)
    if field == "REGION_CODE":
        return subdivision.get("iso_code")
    if field == "REGION_ISO_CODE":
        if country.get("iso_code") and subdivision.get("iso_code"):
            return f"{country['iso_code']}-{subdivision['iso_code']}"
        return None
    if field == "TIMEZONE":
        return location.get("time_zone")
    if field == "LOCATION":
        if location.get("latitude") is None or location.get("longitude") is None:
            return None
        return {"lat": location["latitude"], "lon": location["longitude"]}
    if field == "LATITUDE":
        return location.get("latitude")
    if field == "LONGITUDE":
        return location.get("longitude")
    if field == "AUTONOMOUS_SYSTEM_NUMBER":
        return record.get("autonomous_system_number")
    if field == "AUTONOMOUS_SYSTEM_ORGANIZATION":
        return record.get("autonomous_system_organization")
    if field == "ISP":
        return record.get("isp")
    if field == "ORGANIZATION":
        return record.get("organization")
    if field == "DOMAIN":
        return record.get("domain")
    if field == "NETWORK":
        return network
    if field in _ANON_KEYS:
        return bool(record.get(_ANON_KEYS[field], False))
    return None


class GeoipFilter(Filter):
    name = "geoip"
    creates_events = False
    doc = "Adds where an IP address is (country, city, location, AS) from a MaxMind DB file."
    settings: ClassVar[list[Setting]] = [
        Setting("source", "string", required=True, doc="the field holding the IP address"),
        Setting("target", "string", doc="where the fields go (legacy default: geoip; ECS: the source's parent)"),
        Setting("database", "path", doc="a .mmdb file (GeoLite2/GeoIP2/DB-IP); default: found in implicit folders"),
        Setting("default_database_type", "string", default="City", choices=("City", "ASN"),
                doc="which implicit database to use when `database` is not set"),
        Setting("fields", "array", default=[], doc="only these fields (Logstash names, e.g. city_name, location)"),
        Setting("cache_size", "int", default=1000, doc="addresses whose lookup result is kept"),
        Setting("tag_on_failure", "array", default=["_geoip_lookup_failure"],
                doc="tags added when the address is missing, invalid or unknown"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        self._ecs = ecs_enabled(p)
        self._fields = [self._field_name(f) for f in p["fields"]]
        if p["cache_size"] < 0:
            raise ConfigError("setting 'cache_size' must be 0 or more", setting="cache_size")
        target = p["target"]
        if target is None:
            target = self._auto_target(p["source"]) if self._ecs else "geoip"
        elif self._ecs:
            single = target.startswith("[") and target.endswith("]") and target.count("[") == 1
            bare = target[1:-1] if single else target
            if bare not in ECS_TARGETS:
                self.log.warning("ECS expects geoip `target` to be one of %s, got %r", ", ".join(ECS_TARGETS), target)
        self.target = target
        self._target_path = parse_ref(target)
        self._get_source = compile_getter(p["source"])
        self._get_target = compile_getter(target)
        self._set_target = compile_setter(target)
        self._failure_tags = list(p["tag_on_failure"])
        if p["database"] is not None and not os.path.isfile(p["database"]):
            self.log.warning("geoip database %s does not exist (yet); the filter will not start without it",
                             p["database"])
        self._reader: maxminddb.Reader | None = None
        self._kind: str | None = None
        self._plan: list[tuple[str, tuple[str, ...]]] = []
        self._cache: OrderedDict[str, list[tuple[tuple[str, ...], Any]] | None] = OrderedDict()
        self.failures = 0

    @staticmethod
    def _field_name(name: Any) -> str:
        upper = str(name).upper()
        if upper not in FIELDS:
            raise ConfigError(f"geoip: unknown field {name!r}; valid fields: {', '.join(f.lower() for f in FIELDS)}",
                              setting="fields")
        return upper

    @staticmethod
    def _auto_target(source: str) -> str:
        if source.endswith("[ip]") and len(source) > 4:
            return source[:-4]
        raise ConfigError("geoip in ECS compatibility mode requires a `target` when `source` is not an `ip` "
                          "sub-field, e.g. [client][ip]", setting="source")

    async def start(self) -> None:
        self.open_database()

    def open_database(self) -> None:
        """Open the file and decide the fields; called at start (not at build: `check` needs no database)."""
        path = self.params["database"] or find_default_database(self.params["default_database_type"])
        if path is None:
            self.log.error("geoip: no database given and none found in %s (see README: GeoLite2 / DB-IP); "
                           "events are tagged %s", ", ".join(database_dirs()), EXPIRED_TAG)
            return
        try:
            reader = maxminddb.open_database(path)
        except FileNotFoundError:
            raise ConfigError(f"geoip database {path} was not found", setting="database") from None
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            raise ConfigError(f"geoip database {path} is invalid or corrupted: {exc}", setting="database") from None
        kind = database_kind(reader.metadata().database_type)
        if kind is None:
            self.log.warning("geoip: database type %r of %s is not supported", reader.metadata().database_type, path)
        fields = self._fields
        if not fields:
            fields = list(DEFAULT_FIELDS.get(kind or "", ()))
            if kind == "City" and not self._ecs:  # Logstash's legacy City default: region_code, not region_iso_code
                fields = [("REGION_CODE" if f == "REGION_ISO_CODE" else f) for f in fields]
        ecs = self._ecs
        self._plan = []
        for f in fields:
            sub = FIELDS[f][0] if ecs else FIELDS[f][1]
            if sub:
                self._plan.append((f, tuple(sub.split("."))))
        self._reader = reader
        self._kind = kind
        self._cache.clear()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def lookup(self, ip_text: str) -> list[tuple[tuple[str, ...], Any]] | None:
        """Sub-path/value pairs for an address ([] if unknown or invalid), cached; None: no database."""
        cache = self._cache
        hit = cache.get(ip_text, MISSING)
        if hit is not MISSING:
            cache.move_to_end(ip_text)
            return hit  # type: ignore[return-value]
        result = self._resolve(ip_text)
        if self.params["cache_size"]:
            cache[ip_text] = result
            if len(cache) > self.params["cache_size"]:
                cache.popitem(last=False)
        return result

    def _resolve(self, ip_text: str) -> list[tuple[tuple[str, ...], Any]]:
        assert self._reader is not None
        try:
            ip = ipaddress.ip_address(ip_text.strip())
        except ValueError:
            return []
        try:
            record, prefix = self._reader.get_with_prefix_len(ip)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return []
        if not isinstance(record, dict):
            return []
        if self._kind == "City":
            location = record.get("location")
            if not isinstance(location, dict) or location.get("latitude") is None and location.get("longitude") is None:
                return []  # Logstash: a City record without a location carries nothing worth writing
        network = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
        text = java_host_address(ip)
        out = []
        for field, sub in self._plan:
            value = extract(record, field, text, network)
            if value is not None:
                out.append((sub, value))
        return out

    def filter(self, events: list[Event]) -> list[Event]:
        if self._reader is None:
            for ev in events:
                add_tag(ev, EXPIRED_TAG)
            return events
        get_source, get_target, set_target = self._get_source, self._get_target, self._set_target
        for ev in events:
            value = get_source(ev)
            if isinstance(value, list):
                value = value[0] if value else MISSING
            if value.__class__ is not str or not value.strip():
                self._fail(ev)
                continue
            geo = self.lookup(value)
            if geo is None:
                add_tag(ev, EXPIRED_TAG)
                continue
            target = get_target(ev)
            if target is MISSING or target is None:
                target = {}
                set_target(ev, target)
            if not geo:
                self._fail(ev)
                continue
            if not isinstance(target, dict):
                self._fail(ev)
                continue
            for sub, val in geo:
                _put(target, sub, dict(val) if val.__class__ is dict else val)
            self.matched(ev)
        return events

    def _fail(self, ev: Event) -> None:
        self.failures += 1
        for tag in self._failure_tags:
            add_tag(ev, tag)


def _put(container: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        nxt = container.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            container[key] = nxt
        container = nxt
    container[path[-1]] = value
