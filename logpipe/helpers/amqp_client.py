"""The connection settings the RabbitMQ input and output share, and the connection they open.

Settings carry Logstash's names (its rabbitmq mixin: `host`, `port`, `vhost`, `user`,
`password`, `heartbeat`, `connection_timeout`, `connect_retry_interval`, `ssl`…) with
fluent-plugin-rabbitmq's spellings (`hosts`, `pass`, `tls`, `tls_ca_certificates`,
`tls_cert`, `tls_key`, `verify_peer`). TLS is the shared `TlsClient` helper.

The connection is aio-pika's plain `connect` — not `connect_robust`: its silent recovery
would hide an outage from the buffer engine (outputs retry and count it) and would
re-open an input's channel with the old delivery tags gone. Each plugin reconnects in
its own loop, where the failure is logged and backed off.
"""

from __future__ import annotations

import dataclasses
import random
import ssl
from typing import Any, ClassVar

import aio_pika
import aiormq.exceptions
from yarl import URL

from logpipe.errors import ConfigError
from logpipe.helpers.tls import TlsClient
from logpipe.plugin import Helper, Plugin, Setting

#: Failures that may pass (the broker restarted, the network dropped, the channel was closed
#: under us): the output retries the chunk, the input reconnects.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError, aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.AMQPChannelError, ConnectionError, OSError, TimeoutError,
)

#: fluent-plugin-rabbitmq's names for the TlsClient settings.
_TLS_SPELLINGS = {
    "ssl_certificate_authorities": ("tls_ca_certificates",),
    "ssl_certificate": ("tls_cert",),
    "ssl_key": ("tls_key",),
    "ssl_supported_protocols": ("ssl_version",),
}


class AmqpConnection(Helper):
    settings: ClassVar[list[Setting]] = [
        Setting("host", "array", default=["127.0.0.1"], spellings=("hosts",),
                doc='broker "host" or "host:port" entries; a connection tries them in a shuffled order'),
        Setting("port", "int", default=5672, min=1, max=65535, doc="AMQP port (when a host names none)"),
        Setting("vhost", "string", default="/", doc="virtual host"),
        Setting("user", "string", default="guest", doc="user name"),
        Setting("password", "string", default="guest", secret=True, spellings=("pass",), doc="password"),
        Setting("heartbeat", "int", min=0, doc="heartbeat seconds to ask for (unset: the broker's, 0: none)"),
        Setting("connection_timeout", "duration", default=10.0, min=0.001, doc="how long a connect may take"),
        Setting("connect_retry_interval", "duration", default=1.0, min=0.001,
                spellings=("network_recovery_interval",), doc="wait between reconnection attempts"),
        Setting("automatic_recovery", "bool", default=True, spellings=("automatically_recover",),
                doc="reconnect after a connection loss (false: the plugin stops with an error)"),
        Setting("passive", "bool", default=False, spellings=("exchange_no_declare",),
                doc="only check that the exchange (and the input's queue) exist; never declare them"),
        Setting("verify_peer", "bool", default=True, doc="fluent-plugin-rabbitmq: verify the broker's certificate"),
    ]

    @classmethod
    def settings_for(cls, plugin: type[Plugin]) -> list[Setting]:
        tls = [dataclasses.replace(s, spellings=s.spellings + _TLS_SPELLINGS.get(s.name, ()))
               for s in TlsClient.settings]
        # `ssl` is the current name in Logstash's rabbitmq plugins and `tls` in Fluentd's: not deprecated here.
        tls = [dataclasses.replace(s, deprecated_alias=(), spellings=("ssl", "tls")) if s.name == "ssl_enabled" else s
               for s in tls]
        return tls + list(cls.settings)

    @staticmethod
    def hosts(plugin: Plugin) -> list[tuple[str, int]]:
        p = plugin.params
        hosts = [_host_port(h, p["port"]) for h in p["host"]]
        if not hosts:
            raise ConfigError("'host' is empty", setting="host")
        return hosts

    @staticmethod
    async def connect(plugin: Plugin) -> aio_pika.abc.AbstractConnection:
        """A connection to the first broker host that answers (shuffled, as Logstash's
        March Hare spreads clients over a cluster)."""
        p = plugin.params
        hosts = AmqpConnection.hosts(plugin)
        random.shuffle(hosts)
        context = _tls_context(plugin)
        errors: list[str] = []
        for host, port in hosts:
            url = URL.build(scheme="amqps" if context else "amqp", host=host, port=port,
                            user=p["user"], password=p["password"], path="/" + p["vhost"])
            query: dict[str, str] = {"name": f"logpipe {plugin.kind} {plugin.id}"}
            if p["heartbeat"] is not None:
                query["heartbeat"] = str(p["heartbeat"])
            try:
                return await aio_pika.connect(url.with_query(query), ssl_context=context,
                                              timeout=p["connection_timeout"])
            except TRANSIENT_ERRORS as exc:
                errors.append(f"{host}:{port}: {exc!r}")
        raise ConnectionError("no rabbitmq host answered: " + "; ".join(errors))


def _tls_context(plugin: Plugin) -> ssl.SSLContext | None:
    context = TlsClient.context(plugin)
    if context is not None and not plugin.params["verify_peer"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _host_port(spec: Any, default_port: int) -> tuple[str, int]:
    text = str(spec).strip()
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        return text.strip("[]"), default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ConfigError(f"bad rabbitmq host {text!r}: expected \"host\" or \"host:port\"", setting="host") from None
