"""The ``redis://`` / ``rediss://`` store URL, its parameters and the clients it makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff

from ...errors import ConfigError

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_PREFIX", "RedisSettings", "parse_redis_url"]

DEFAULT_PREFIX = "sessionward:"
DEFAULT_MAX_CONNECTIONS = 50
_OWN_PARAMETERS = {"prefix", "timeout", "connect_timeout", "max_connections", "pool_timeout"}


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """A parsed Redis store URL."""

    client_url: str
    prefix: str
    timeout: float
    connect_timeout: float
    max_connections: int
    pool_timeout: float

    def client_options(self, asynchronous: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``BlockingConnectionPool.from_url`` of ``redis`` or
        (``asynchronous``) ``redis.asyncio``."""
        # One quick retry on a broken connection: a pooled socket may be stale after a
        # Redis restart. Timeouts are not retried (the caller would wait twice). The asyncio
        # client needs the asyncio Retry: the sync one returns the coroutine unawaited, so
        # its retry loop never sees the error.
        retry_class = redis.asyncio.retry.Retry if asynchronous else redis.retry.Retry
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.connect_timeout,
            "retry": retry_class(
                ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(redis.ConnectionError,)
            ),
            # A blocking pool: more concurrent operations than connections wait for one
            # (redis-py's plain pool would fail at once with "Too many connections").
            "max_connections": self.max_connections,
            "timeout": self.pool_timeout,
        }
        return options

    def sync_client(self) -> redis.Redis:
        """A ``redis.Redis`` client owning a blocking pool of these settings."""
        pool = redis.BlockingConnectionPool.from_url(self.client_url, **self.client_options())
        return redis.Redis.from_pool(pool)

    def async_client(self) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` client owning a blocking pool of these settings."""
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.client_url, **self.client_options(asynchronous=True)
        )
        return redis.asyncio.Redis.from_pool(pool)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"store: redis {name} must be a number of seconds; got {value!r}") from None
    if not 0 < seconds <= 600:
        raise ConfigError(f"store: redis {name} must be between 0 and 600 seconds")
    return seconds


def parse_redis_url(url: str) -> RedisSettings:
    """Validate a ``redis://`` or ``rediss://`` URL and split off sessionward's options."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"store: invalid redis URL {_redacted(url)!r}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"store: expected redis://host[:port][/db] or rediss://…; got {_redacted(url)!r}")
    if parts.path not in ("", "/") and not parts.path[1:].isdigit():
        raise ConfigError(f"store: the redis database must be a number; got {parts.path[1:]!r}")
    prefix, timeout, connect_timeout, pool_timeout = DEFAULT_PREFIX, 5.0, 5.0, 5.0
    max_connections = DEFAULT_MAX_CONNECTIONS
    passed: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "prefix":
            if not value or len(value) > 200:
                raise ConfigError("store: the redis prefix must be 1 to 200 characters")
            prefix = value
        elif name == "timeout":
            timeout = _seconds(name, value)
        elif name == "connect_timeout":
            connect_timeout = _seconds(name, value)
        elif name == "pool_timeout":
            pool_timeout = _seconds(name, value)
        elif name == "max_connections":
            if not value.isdigit() or not 1 <= int(value) <= 100_000:
                raise ConfigError(f"store: redis max_connections must be a positive integer; got {value!r}")
            max_connections = int(value)
        elif name.startswith("ssl_") and parts.scheme == "rediss":
            passed.append((name, value))
        else:
            known = ", ".join(sorted(_OWN_PARAMETERS)) + ", ssl_* (rediss only)"
            raise ConfigError(f"store: unknown redis URL parameter {name!r} (known: {known})")
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(passed), ""))
    return RedisSettings(client_url, prefix, timeout, connect_timeout, max_connections, pool_timeout)
