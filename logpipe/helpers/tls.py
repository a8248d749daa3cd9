"""TLS contexts for the network inputs (forward, beats) and the forward output.

One place builds them so every plugin makes the same choices: TLS 1.2 minimum, the
system's default ciphers, and a ConfigError naming the setting when a file is wrong.
"""

from __future__ import annotations

import ssl

from logpipe.errors import ConfigError


def server_context(
    cert: str | None, key: str | None, ca: str | list[str] | None = None, client_auth: str = "none",
    cert_setting: str = "tls_cert_path", ca_setting: str = "tls_ca_path",
) -> ssl.SSLContext:
    """A server context; `client_auth` is none | optional | required (client certificates
    checked against `ca`). The setting names are the caller's, so an error points at the
    setting the user has to fix."""
    if not cert:
        raise ConfigError("TLS needs a server certificate", setting=cert_setting)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate/key {cert!r}: {exc}", setting=cert_setting) from exc
    if client_auth != "none":
        if not ca:
            raise ConfigError("client certificate verification needs a CA file", setting=ca_setting)
        _load_ca(ctx, ca, ca_setting)
        ctx.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca: str | None, verify: bool = True, verify_hostname: bool = True,
    cert: str | None = None, key: str | None = None, setting: str = "tls_ca_cert_path",
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
            ctx.load_cert_chain(cert, key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load TLS client certificate {cert!r}: {exc}", setting=setting) from exc
    return ctx


def _load_ca(ctx: ssl.SSLContext, ca: str | list[str], setting: str) -> None:
    for path in [ca] if isinstance(ca, str) else ca:
        try:
            ctx.load_verify_locations(path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {path!r}: {exc}", setting=setting) from exc
