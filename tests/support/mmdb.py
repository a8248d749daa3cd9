"""Small MaxMind DB files built for the tests (City, Country, ASN), with records shaped like
GeoLite2's. The addresses and values are those the Logstash geoip spec asserts against its
GeoLite2 files (8.8.8.8 → Google/US, 93.184.216.34 → Norwell MA), so the derived vectors read
the same; nothing of MaxMind's data is shipped."""

from __future__ import annotations

import os
from typing import Any

from mmdb_writer import MmdbF64, MmdbU16, MmdbU32, MMDBWriter
from netaddr import IPSet


def _names(en: str) -> dict[str, Any]:
    return {"en": en, "de": en}


NORWELL = {
    "city": {"geoname_id": MmdbU32(4945283), "names": _names("Norwell")},
    "continent": {"code": "NA", "geoname_id": MmdbU32(6255149), "names": _names("North America")},
    "country": {"geoname_id": MmdbU32(6252001), "iso_code": "US", "names": _names("United States")},
    "location": {"accuracy_radius": MmdbU16(1000), "latitude": MmdbF64(42.1596), "longitude": MmdbF64(-70.8217),
                 "metro_code": MmdbU16(506), "time_zone": "America/New_York"},
    "postal": {"code": "02061"},
    "subdivisions": [{"geoname_id": MmdbU32(6254926), "iso_code": "MA", "names": _names("Massachusetts")}],
}
GOOGLE_CITY = {
    "continent": {"code": "NA", "geoname_id": MmdbU32(6255149), "names": _names("North America")},
    "country": {"geoname_id": MmdbU32(6252001), "iso_code": "US", "names": _names("United States")},
    "location": {"accuracy_radius": MmdbU16(1000), "latitude": MmdbF64(37.751), "longitude": MmdbF64(-97.822),
                 "time_zone": "America/Chicago"},
}
#: A City record without a location: Logstash treats it as not found.
NO_LOCATION = {"country": {"iso_code": "FR", "names": _names("France")}}
IPV6_RECORD = {
    "continent": {"code": "NA", "names": _names("North America")},
    "country": {"iso_code": "US", "names": _names("United States")},
    "location": {"latitude": MmdbF64(34.0544), "longitude": MmdbF64(-118.244), "time_zone": "America/Los_Angeles"},
}
GOOGLE_ASN = {"autonomous_system_number": MmdbU32(15169), "autonomous_system_organization": "Google LLC"}


def _writer(database_type: str) -> MMDBWriter:
    return MMDBWriter(ip_version=6, database_type=database_type, languages=["en", "de"],
                      description=f"logpipe test {database_type}", ipv4_compatible=True)


def build_databases(folder: str) -> dict[str, str]:
    """Write City, Country and ASN test databases into folder; returns kind → path."""
    os.makedirs(folder, exist_ok=True)
    city = _writer("GeoLite2-City")
    city.insert_network(IPSet(["93.184.216.0/24"]), NORWELL)
    city.insert_network(IPSet(["8.8.8.0/24"]), GOOGLE_CITY)
    city.insert_network(IPSet(["2.2.2.0/24"]), NO_LOCATION)
    city.insert_network(IPSet(["2607:f0d0::/32"]), IPV6_RECORD)
    country = _writer("GeoLite2-Country")
    for net, rec in (("93.184.216.0/24", NORWELL), ("8.8.8.0/24", GOOGLE_CITY)):
        country.insert_network(IPSet([net]), {k: rec[k] for k in ("continent", "country")})
    asn = _writer("GeoLite2-ASN")
    asn.insert_network(IPSet(["8.8.8.0/24"]), GOOGLE_ASN)
    paths = {}
    for kind, writer in (("City", city), ("Country", country), ("ASN", asn)):
        path = os.path.join(folder, f"GeoLite2-{kind}.mmdb")
        writer.to_db_file(path)
        paths[kind] = path
    return paths
