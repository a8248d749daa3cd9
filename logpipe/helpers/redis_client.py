"""The connection settings the Redis input and output share (Logstash's names, Fluentd's
`db_number` spelling), and the client they make. Both plugins open a `redis.asyncio`
client per host; redis-py keeps a connection pool behind it, so pipelined writes and a
blocking read can run at once."""

from __future__ import annotations

from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from logpipe.plugin import Helper, Plugin, Setting

#: What a Redis failure looks like when it may pass: the server went away, a read timed out.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    aioredis.ConnectionError, aioredis.TimeoutError, OSError,
)


class RedisConnection(Helper):
    settings: ClassVar[list[Setting]] = [
        Setting("port", "int", default=6379, min=1, max=65535, doc="Redis port (when `host` names no port)"),
        Setting("path", "string", doc="unix socket path instead of host/port"),
        Setting("db", "int", default=0, min=0, spellings=("db_number",), doc="database number"),
        Setting("password", "string", secret=True, doc="AUTH password"),
        Setting("user", "string", spellings=("username",), doc="ACL user name (Redis 6+), with `password`"),
        Setting("ssl", "bool", default=False, spellings=("ssl_enabled",), doc="connect with TLS"),
        Setting("ssl_verification_mode", "string", default="full", choices=("full", "none"),
                doc="check the server certificate (none: accept any)"),
        Setting("ssl_certificate_authorities", "array", default=[], doc="CA file that signs the server certificate"),
        Setting("timeout", "duration", default=5.0, min=0.001,
                doc="connect timeout, and how long one blocking read waits for data"),
    ]

    @staticmethod
    def client(plugin: Plugin, host: str, port: int | None = None) -> aioredis.Redis:
        """A client for `host` (port from the plugin unless given) with the plugin's settings."""
        p = plugin.params
        kwargs: dict[str, Any] = {
            "db": p["db"], "password": p["password"], "username": p["user"],
            "socket_connect_timeout": p["timeout"], "decode_responses": False,
            "health_check_interval": 30,
            # No silent retries inside the client: the buffer engine (outputs) and the input's
            # reconnect loop own retrying, so a failure is counted and backed off where it shows.
            "retry": Retry(NoBackoff(), 0),
        }
        if p["path"]:
            return aioredis.Redis(unix_socket_path=p["path"], **kwargs)
        if p["ssl"]:
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = "required" if p["ssl_verification_mode"] == "full" else "none"
            if p["ssl_certificate_authorities"]:
                kwargs["ssl_ca_certs"] = p["ssl_certificate_authorities"][0]
        return aioredis.Redis(host=host, port=port or p["port"], **kwargs)
