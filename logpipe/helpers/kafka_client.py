"""The connection settings the Kafka input and output share, in Logstash's names with
fluent-plugin-kafka's spellings (`brokers`, `username`, `password`, `scram_mechanism`,
`sasl_over_ssl`, `ssl_ca_cert`, `ssl_client_cert`, `ssl_client_cert_key`), and the
aiokafka client options built from them.

Security as both anchors write it: Logstash's `security_protocol` (PLAINTEXT, SSL,
SASL_PLAINTEXT, SASL_SSL) with `sasl_mechanism` and `sasl_jaas_config` (the username and
password are read from a PlainLoginModule / ScramLoginModule line), or Fluentd's
`username` + `password` (PLAIN, or SCRAM with `scram_mechanism`) over TLS unless
`sasl_over_ssl false`. Certificates are PEM files: Java key stores (JKS, PKCS12) are
refused with the command that converts them.
"""

from __future__ import annotations

import re
import ssl
from typing import Any, ClassVar

from logpipe.base import Helper, Plugin
from logpipe.errors import ConfigError
from logpipe.helpers.tls import client_context
from logpipe.settings import Setting

_JAAS_VALUE = re.compile(r"""\b(username|password)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaConnection(Helper):
    settings: ClassVar[list[Setting]] = [
        Setting("bootstrap_servers", "string", default="localhost:9092", spellings=("brokers",),
                doc="comma-separated host:port list of brokers to bootstrap from"),
        Setting("client_id", "string", default="logpipe", doc="the client name brokers log and quota by"),
        Setting("request_timeout_ms", "int", default=40_000, min=1, doc="how long a request waits for its answer"),
        Setting("retry_backoff_ms", "int", default=100, min=0, doc="wait before retrying a failed request"),
        Setting("metadata_max_age_ms", "int", default=300_000, min=1,
                doc="refresh cluster metadata at least this often (new partitions, topics_pattern matches)"),
        Setting("connections_max_idle_ms", "int", default=540_000, min=1, doc="close connections idle this long"),
        Setting("security_protocol", "string", choices=_PROTOCOLS,
                doc="PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL (default SASL_SSL when a SASL user is set)"),
        Setting("sasl_mechanism", "string", choices=_MECHANISMS,
                doc="GSSAPI (Logstash's default; needs the gssapi package), PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        Setting("sasl_jaas_config", "string", secret=True,
                doc="a JAAS line; its username= and password= are used for PLAIN and SCRAM"),
        Setting("sasl_username", "string", spellings=("username",), doc="SASL user (PLAIN or SCRAM)"),
        Setting("sasl_password", "string", secret=True, spellings=("password",), doc="SASL password"),
        Setting("scram_mechanism", "string", choices=("sha256", "sha512"),
                doc="Fluentd: SCRAM-SHA-256 or -512 instead of PLAIN for username/password"),
        Setting("sasl_over_ssl", "bool", default=True, doc="Fluentd: SASL over TLS (false: SASL_PLAINTEXT)"),
        Setting("sasl_kerberos_service_name", "string", default="kafka", doc="GSSAPI: the brokers' service name"),
        Setting("ssl_truststore_location", "path", spellings=("ssl_ca_cert",),
                doc="PEM file of the CAs that sign the brokers' certificates (default: the system store)"),
        Setting("ssl_truststore_type", "string", default="PEM", choices=("PEM", "JKS", "PKCS12"),
                doc="PEM only: convert a Java store with keytool -importkeystore and openssl"),
        Setting("ssl_keystore_location", "path", spellings=("ssl_client_cert",),
                doc="PEM client certificate (with its key, or the key in ssl_client_cert_key)"),
        Setting("ssl_keystore_type", "string", default="PEM", choices=("PEM", "JKS", "PKCS12"),
                doc="PEM only, as ssl_truststore_type"),
        Setting("ssl_client_cert_key", "path", doc="PEM private key of the client certificate, if apart"),
        Setting("ssl_key_password", "string", secret=True, spellings=("ssl_client_cert_key_password",),
                doc="passphrase of the client key"),
        Setting("ssl_endpoint_identification_algorithm", "string", default="https",
                doc='"https" checks the certificate names the broker; "" does not'),
        Setting("ssl_verify_hostname", "bool", default=True, doc="Fluentd: false skips the host name check"),
    ]

    @staticmethod
    def options(plugin: Plugin) -> dict[str, Any]:
        """aiokafka client keyword arguments from the plugin's settings (ConfigError, placed
        at the setting, for what cannot work)."""
        p = plugin.params
        servers = [s.strip() for s in str(p["bootstrap_servers"]).split(",") if s.strip()]
        if not servers:
            raise ConfigError("no broker address: expected host:port[,host:port…]",
                              setting=plugin.setting_name("bootstrap_servers"))
        username, password = _credentials(p)
        protocol = p["security_protocol"] or (
            ("SASL_SSL" if p["sasl_over_ssl"] else "SASL_PLAINTEXT") if username else "PLAINTEXT")
        options: dict[str, Any] = {
            "bootstrap_servers": servers, "client_id": p["client_id"],
            "request_timeout_ms": p["request_timeout_ms"], "retry_backoff_ms": p["retry_backoff_ms"],
            "metadata_max_age_ms": p["metadata_max_age_ms"], "connections_max_idle_ms": p["connections_max_idle_ms"],
            "security_protocol": protocol,
        }
        if protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = _ssl_context(plugin)
        if protocol.startswith("SASL"):
            options.update(_sasl(plugin, username, password))
        return options


def _credentials(p: dict[str, Any]) -> tuple[str | None, str | None]:
    username, password = p["sasl_username"], p["sasl_password"]
    if p["sasl_jaas_config"]:
        found = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
                 for m in _JAAS_VALUE.finditer(p["sasl_jaas_config"])}
        username = username or found.get("username")
        password = password or found.get("password")
    return username, password


def _sasl(plugin: Plugin, username: str | None, password: str | None) -> dict[str, Any]:
    p = plugin.params
    mechanism = p["sasl_mechanism"]
    if mechanism is None:
        scram = p["scram_mechanism"]
        mechanism = f"SCRAM-SHA-{scram[3:]}" if scram else ("PLAIN" if username else "GSSAPI")
    if mechanism == "GSSAPI":
        try:
            import gssapi  # noqa: F401
        except ImportError:
            raise ConfigError("SASL GSSAPI (Kerberos) needs the gssapi package (pip install gssapi)",
                              setting=plugin.setting_name("sasl_mechanism")) from None
        return {"sasl_mechanism": "GSSAPI", "sasl_kerberos_service_name": p["sasl_kerberos_service_name"]}
    if not username or password is None:
        raise ConfigError(f"SASL {mechanism} needs sasl_username and sasl_password (or a sasl_jaas_config "
                          "with username= and password=)", setting=plugin.setting_name("sasl_username"))
    return {"sasl_mechanism": mechanism, "sasl_plain_username": username, "sasl_plain_password": password}


def _ssl_context(plugin: Plugin) -> ssl.SSLContext:
    p = plugin.params
    for setting in ("ssl_truststore_type", "ssl_keystore_type"):
        if p[setting] != "PEM":
            raise ConfigError(f"{p[setting]} stores are Java's: give PEM files (keytool -importkeystore "
                              "-deststoretype PKCS12, then openssl pkcs12 -nodes)",
                              setting=plugin.setting_name(setting))
    verify_name = p["ssl_verify_hostname"] and bool(p["ssl_endpoint_identification_algorithm"])
    return client_context(
        p["ssl_truststore_location"], verify=True, verify_hostname=verify_name,
        cert=p["ssl_keystore_location"], key=p["ssl_client_cert_key"],
        setting=plugin.setting_name("ssl_truststore_location"), password=p["ssl_key_password"],
    )
