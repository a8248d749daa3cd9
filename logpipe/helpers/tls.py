"""TLS for plugins: the settings, declared once, and the contexts built from them.

A listening plugin lists `TlsServer` among its helpers, a connecting one `TlsClient`;
each brings its settings in both front-ends' spellings and a `context(plugin)` that
builds the `ssl.SSLContext` (or None when TLS is off) from the plugin's attributes:

    class SyslogInput(ServerInput):          # ServerInput already lists Server, TlsServer
        name = "syslog"
        default_port = 514

    class HttpOutput(Output):
        helpers = [TlsClient]
        async def start(self) -> None:
            self._ssl = TlsClient.context(self)

Server spellings: Logstash's `ssl_enabled`, `ssl_certificate`, `ssl_key`,
`ssl_key_passphrase`, `ssl_certificate_authorities`, `ssl_client_authentication`,
`ssl_supported_protocols` (older names — `ssl`, `ssl_cert`, `ssl_verify_mode`, logpipe's
`tls_*` — still work, with a warning) and Fluentd's `<transport tls>` section with
`cert_path`, `private_key_path`, `private_key_passphrase`, `ca_path`,
`client_cert_auth`, `min_version`, `max_version`. Client spellings: Logstash's
`ssl_enabled`, `ssl_certificate_authorities`, `ssl_verification_mode`,
`ssl_certificate`, `ssl_key`, `ssl_supported_protocols`, and Fluentd out_forward's
`transport tls`, `tls_ca_cert_path`, `tls_verify_hostname`, `tls_insecure_mode`,
`tls_client_cert_path`, `tls_client_private_key_path`, `tls_version`.

Every context makes the same choices: TLS 1.2 minimum, the system's default ciphers,
and a ConfigError naming the setting when a file is wrong.
"""

from __future__ import annotations

import ssl
from typing import Any

from logpipe.base import Helper, Plugin
from logpipe.errors import ConfigError
from logpipe.settings import Section, SectionValue, Setting

#: Protocol names as both front-ends write them → the ssl module's versions.
_VERSIONS = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLS1_2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3, "TLS1_3": ssl.TLSVersion.TLSv1_3,
}
_PROTOCOL_DOC = "TLS versions allowed: TLSv1.2, TLSv1.3 (older ones are refused)"

TRANSPORT_SECTION = Section("transport", [
    Setting("cert_path", "path", doc="server certificate (PEM, chain allowed)"),
    Setting("private_key_path", "path", doc="server private key (PEM)"),
    Setting("private_key_passphrase", "string", secret=True, doc="passphrase of the private key"),
    Setting("ca_path", "path", doc="CA used to verify client certificates"),
    Setting("client_cert_auth", "bool", default=False, doc="require a client certificate"),
    Setting("min_version", "string", choices=("TLS1_2", "TLS1_3"), doc="lowest TLS version"),
    Setting("max_version", "string", choices=("TLS1_2", "TLS1_3"), doc="highest TLS version"),
], doc="Fluentd <transport tls>: TLS settings of a listening plugin", example="<transport tls> cert_path …")


class TlsServer(Helper):
    """TLS settings of a listening plugin and the server context built from them."""

    settings = [
        Setting("ssl_enabled", "bool", default=False, deprecated_alias=("ssl", "ssl_enable", "tls"),
                doc="serve TLS"),
        Setting("ssl_certificate", "path", deprecated_alias=("ssl_cert", "tls_cert_path"),
                doc="server certificate (PEM, chain allowed)", example="/etc/logpipe/server.crt"),
        Setting("ssl_key", "path", deprecated_alias=("tls_private_key_path",), doc="server private key (PEM)"),
        Setting("ssl_key_passphrase", "string", secret=True, deprecated_alias=("ssl_passphrase",),
                doc="passphrase of ssl_key"),
        Setting("ssl_certificate_authorities", "array", default=[], deprecated_alias=("tls_ca_path",),
                doc="CAs that sign client certificates"),
        Setting("ssl_client_authentication", "string", default="none", choices=("none", "optional", "required"),
                doc="ask clients for a certificate"),
        Setting("ssl_verify_mode", "string", choices=("none", "peer", "force_peer"),
                doc="deprecated: use ssl_client_authentication (peer = optional, force_peer = required)"),
        Setting("tls_client_cert_auth", "bool", default=False,
                doc="deprecated: use ssl_client_authentication => required"),
        Setting("ssl_supported_protocols", "array", default=[], doc=_PROTOCOL_DOC, example=["TLSv1.3"]),
        TRANSPORT_SECTION,
    ]

    @staticmethod
    def enabled(plugin: Plugin) -> bool:
        return bool(getattr(plugin, "ssl_enabled", False)) or _transport(plugin).arg == "tls"

    @staticmethod
    def context(plugin: Plugin) -> ssl.SSLContext | None:
        """The server context the plugin's settings ask for, or None when TLS is off."""
        if not TlsServer.enabled(plugin):
            return None
        p: Any = plugin
        section = _transport(plugin)
        fluentd = section.arg == "tls"
        auth = p.ssl_client_authentication
        if p.ssl_verify_mode is not None and auth == "none":
            auth = {"none": "none", "peer": "optional", "force_peer": "required"}[p.ssl_verify_mode]
        if p.tls_client_cert_auth or (fluentd and section.client_cert_auth):
            auth = "required"
        cas = list(p.ssl_certificate_authorities) or ([section.ca_path] if fluentd and section.ca_path else [])
        cert_setting = plugin.setting_name("ssl_certificate") if p.ssl_certificate or not fluentd \
            else "transport.cert_path"
        ca_setting = plugin.setting_name("ssl_certificate_authorities") if p.ssl_certificate_authorities \
            or not fluentd else "transport.ca_path"
        ctx = server_context(
            p.ssl_certificate or (section.cert_path if fluentd else None),
            p.ssl_key or (section.private_key_path if fluentd else None),
            cas or None, auth, cert_setting=cert_setting, ca_setting=ca_setting,
            password=p.ssl_key_passphrase or (section.private_key_passphrase if fluentd else None),
        )
        protocols = list(p.ssl_supported_protocols)
        if fluentd:
            protocols += [v for v in (section.min_version, section.max_version) if v]
        limit_versions(ctx, protocols, plugin.setting_name("ssl_supported_protocols"))
        return ctx


class TlsClient(Helper):
    """TLS settings of a connecting plugin and the client context built from them."""

    settings = [
        Setting("ssl_enabled", "bool", default=False, deprecated_alias=("ssl", "tls"), doc="connect with TLS"),
        Setting("transport", "string", choices=("tcp", "tls"), doc="Fluentd's `transport tls` (same as ssl_enabled)"),
        Setting("ssl_certificate_authorities", "array", default=[], spellings=("tls_ca_cert_path",),
                doc="CAs that sign the servers' certificates (default: the system store)"),
        Setting("ssl_verification_mode", "string", default="full", choices=("full", "none"),
                doc="none skips certificate verification (testing only)"),
        Setting("tls_insecure_mode", "bool", default=False, doc="Fluentd spelling of ssl_verification_mode => none"),
        Setting("tls_verify_hostname", "bool", default=True, doc="check the certificate names the server"),
        Setting("ssl_certificate", "path", spellings=("tls_client_cert_path",),
                doc="client certificate for servers that require one"),
        Setting("ssl_key", "path", spellings=("tls_client_private_key_path",), doc="its private key"),
        Setting("ssl_key_passphrase", "string", secret=True, spellings=("tls_client_private_key_passphrase",),
                doc="passphrase of ssl_key"),
        Setting("ssl_supported_protocols", "array", default=[], spellings=("tls_version",), doc=_PROTOCOL_DOC),
    ]

    @staticmethod
    def enabled(plugin: Plugin) -> bool:
        p: Any = plugin
        return bool(p.ssl_enabled) or p.transport == "tls"

    @staticmethod
    def context(plugin: Plugin) -> ssl.SSLContext | None:
        """The client context the plugin's settings ask for, or None when TLS is off."""
        if not TlsClient.enabled(plugin):
            return None
        p: Any = plugin
        verify = p.ssl_verification_mode != "none" and not p.tls_insecure_mode
        ctx = client_context(
            p.ssl_certificate_authorities or None, verify=verify, verify_hostname=p.tls_verify_hostname,
            cert=p.ssl_certificate, key=p.ssl_key, setting=plugin.setting_name("ssl_certificate_authorities"),
            password=p.ssl_key_passphrase,
        )
        limit_versions(ctx, list(p.ssl_supported_protocols), plugin.setting_name("ssl_supported_protocols"))
        return ctx


def _transport(plugin: Plugin) -> Any:
    value = getattr(plugin, "transport", None)
    return value if isinstance(value, SectionValue) else SectionValue()


def limit_versions(ctx: ssl.SSLContext, names: list[str], setting: str) -> None:
    """Restrict the context to the named TLS versions (none named: TLS 1.2 and up)."""
    if not names:
        return
    versions = []
    for name in names:
        version = _VERSIONS.get(str(name))
        if version is None:
            raise ConfigError(f"unsupported TLS version {name!r}; use TLSv1.2 or TLSv1.3", setting=setting)
        versions.append(version)
    ctx.minimum_version = min(versions)
    ctx.maximum_version = max(versions)


def server_context(
    cert: str | None, key: str | None, ca: str | list[str] | None = None, client_auth: str = "none",
    cert_setting: str = "tls_cert_path", ca_setting: str = "tls_ca_path", password: str | None = None,
) -> ssl.SSLContext:
    """A server context; `client_auth` is none | optional | required (client certificates
    checked against `ca`). The setting names are the caller's, so an error points at the
    setting the user has to fix."""
    if not cert:
        raise ConfigError("TLS needs a server certificate", setting=cert_setting)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key or None, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate/key {cert!r}: {exc}", setting=cert_setting) from exc
    if client_auth != "none":
        if not ca:
            raise ConfigError("client certificate verification needs a CA file", setting=ca_setting)
        _load_ca(ctx, ca, ca_setting)
        ctx.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca: str | list[str] | None, verify: bool = True, verify_hostname: bool = True,
    cert: str | None = None, key: str | None = None, setting: str = "tls_ca_cert_path", password: str | None = None,
) -> ssl.SSLContext:
    """A client context: verify the server against `ca` (or the system store), or not at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        if ca:
            _load_ca(ctx, ca, setting)
        else:
            ctx.load_default_certs()
        ctx.check_hostname = verify_hostname
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        try:
            ctx.load_cert_chain(cert, key or None, password=password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load TLS client certificate {cert!r}: {exc}", setting=setting) from exc
    return ctx


def _load_ca(ctx: ssl.SSLContext, ca: str | list[str], setting: str) -> None:
    for path in [ca] if isinstance(ca, str) else ca:
        try:
            ctx.load_verify_locations(path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {path!r}: {exc}", setting=setting) from exc
