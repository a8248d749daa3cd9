"""The connection settings the Elasticsearch and OpenSearch outputs share: nodes, basic auth,
TLS and headers, in Logstash's current names (`ssl_enabled`, `ssl_certificate_authorities`,
`ssl_verification_mode`, `ssl_certificate`, `ssl_key`), its older ones as deprecated aliases
(`ssl`, `cacert`, `ssl_certificate_verification`, warned once), and fluent-plugin-elasticsearch's
and fluent-plugin-opensearch's spellings (`host`, `scheme`, `ca_file`, `client_cert`,
`client_key`, `client_key_pass`, `ssl_verify`, `request_timeout`).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any, ClassVar
from urllib.parse import urlsplit

from logpipe.base import Helper, Plugin
from logpipe.errors import ConfigError
from logpipe.helpers.tls import client_context, limit_versions
from logpipe.settings import Setting

_warned: set[str] = set()


class SearchConnection(Helper):
    settings: ClassVar[list[Setting]] = [
        Setting("hosts", "array", default=["localhost:9200"], aliases=("host",),
                doc="nodes: URLs or host:port (comma-separated lists accepted)"),
        Setting("port", "int", default=9200, min=1, max=65535, doc="port for hosts written without one"),
        Setting("scheme", "string", default="http", choices=("http", "https"),
                doc="scheme for hosts written without one"),
        Setting("user", "string", doc="basic auth user"),
        Setting("password", "string", secret=True, doc="basic auth password"),
        Setting("ssl_enabled", "bool", deprecated_alias=("ssl",),
                doc="https for hosts written without a scheme (default: as the scheme says)"),
        Setting("ssl_certificate_authorities", "array", default=[], deprecated_alias=("cacert",),
                spellings=("ca_file",), doc="CA certificate files (PEM) to verify the server with"),
        Setting("ssl_verification_mode", "string", default="full", choices=("full", "none"),
                doc="full: check the certificate and its host name; none: check nothing"),
        Setting("ssl_certificate_verification", "bool", spellings=("ssl_verify", "ssl_verification"),
                doc="deprecated (Logstash): false is ssl_verification_mode => none; Fluentd's ssl_verify"),
        Setting("ssl_certificate", "path", spellings=("client_cert",), doc="client certificate (PEM)"),
        Setting("ssl_key", "path", spellings=("client_key",), doc="its private key (PEM)"),
        Setting("ssl_key_passphrase", "string", secret=True, spellings=("client_key_pass",),
                doc="passphrase of the private key"),
        Setting("ssl_supported_protocols", "array", default=[], doc="TLS versions allowed (TLSv1.2, TLSv1.3)"),
        Setting("custom_headers", "hash", default={}, doc="headers sent with every request"),
        Setting("request_timeout", "duration", default=60.0, min=0.001, spellings=("timeout",),
                doc="timeout of one request"),
        Setting("sniffing", "bool", default=False,
                doc="accepted; nodes are not discovered: list them in hosts (the client fails over between them)"),
        Setting("sniffing_delay", "duration", default=5.0, doc="accepted with sniffing"),
    ]


def warn_deprecated(plugin: Plugin, log: logging.Logger) -> None:
    """`ssl_certificate_verification` changed type (bool → ssl_verification_mode), so it is
    not a plain alias: warned here, once per process."""
    if plugin.params["ssl_certificate_verification"] is not None \
            and plugin.setting_name("ssl_certificate_verification") == "ssl_certificate_verification" \
            and "ssl_certificate_verification" not in _warned:
        _warned.add("ssl_certificate_verification")
        log.warning("setting 'ssl_certificate_verification' is deprecated; use ssl_verification_mode "
                    "(full or none) instead")
    if plugin.params["sniffing"] and "sniffing" not in _warned:
        _warned.add("sniffing")
        log.warning("%s: sniffing is not done: the nodes listed in hosts are used", plugin.id)


def verify(plugin: Plugin) -> bool:
    p = plugin.params
    if p["ssl_certificate_verification"] is not None:
        return bool(p["ssl_certificate_verification"])
    return p["ssl_verification_mode"] != "none"


def node_urls(plugin: Plugin, product: str = "Elasticsearch") -> list[str]:
    p = plugin.params
    scheme = "https" if p["ssl_enabled"] else p["scheme"]
    return parse_hosts(p["hosts"], p["port"], scheme, product)


def ssl_context(plugin: Plugin) -> ssl.SSLContext | None:
    """A client context when any TLS file or version is set (https without them uses the
    client's defaults and the system's CAs), None otherwise."""
    p = plugin.params
    if not (p["ssl_certificate_authorities"] or p["ssl_certificate"] or p["ssl_supported_protocols"]):
        return None
    if p["ssl_key"] and not p["ssl_certificate"]:
        raise ConfigError("ssl_key needs ssl_certificate", setting=plugin.setting_name("ssl_key"))
    ctx = client_context(list(p["ssl_certificate_authorities"]) or None, verify=verify(plugin),
                         cert=p["ssl_certificate"], key=p["ssl_key"], password=p["ssl_key_passphrase"],
                         setting=plugin.setting_name("ssl_certificate_authorities"))
    limit_versions(ctx, [str(v) for v in p["ssl_supported_protocols"]],
                   plugin.setting_name("ssl_supported_protocols"))
    return ctx


def parse_hosts(entries: list[Any], default_port: int, default_scheme: str, product: str = "Elasticsearch") \
        -> list[str]:
    """Node URLs from what users write: `http://h:9200`, `h:9200` (Logstash's old `host`),
    `h` (Fluentd's host + port), `[::1]:9200`, or several joined by commas (Fluentd's hosts)."""
    urls: list[str] = []
    for entry in entries:
        for text in str(entry).split(","):
            text = text.strip()
            if not text:
                continue
            url = text if "://" in text else f"{default_scheme}://{text}"
            try:
                parts = urlsplit(url)
                port = parts.port
            except ValueError as exc:
                raise ConfigError(f"bad {product} host {text!r}: {exc}", setting="hosts") from exc
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"bad {product} host {text!r}: expected [http[s]://]host[:port]",
                                  setting="hosts")
            if port is None:
                netloc = parts.netloc + f":{default_port}"
                url = parts._replace(netloc=netloc).geturl()
            urls.append(url.rstrip("/"))
    if not urls:
        raise ConfigError(f"no {product} hosts given", setting="hosts")
    return urls
