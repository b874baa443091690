"""What a redis-py error means to the caller: the sessionward error to raise for it."""

from __future__ import annotations

import queue

import redis

from ...errors import GeneralError, StorageUnavailableError
from .settings import RedisSettings

__all__ = ["CLOSED", "translate"]

CLOSED = "the Redis store is closed"
_UNAVAILABLE_REPLIES = ("OOM ", "LOADING ", "READONLY ", "MASTERDOWN ", "TRYAGAIN ", "BUSY ")


def _pool_exhausted(exc: Exception) -> bool:
    """Whether ``exc`` is a blocking pool giving up waiting for a free connection (redis-py
    raises a plain ``ConnectionError`` from the ``queue.Empty`` or asyncio timeout)."""
    return isinstance(exc, redis.ConnectionError) and isinstance(exc.__context__, queue.Empty | TimeoutError)


def translate(exc: Exception, settings: RedisSettings) -> Exception:
    """The sessionward error for a redis-py exception (``exc`` itself if not one)."""
    if _pool_exhausted(exc):
        return StorageUnavailableError(
            f"Redis store unavailable: no free connection within pool_timeout={settings.pool_timeout:g} s "
            f"(all max_connections={settings.max_connections} in use)"
        )
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return GeneralError(f"Redis refused the credentials: {exc}")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.exceptions.ReadOnlyError | OSError):
        return StorageUnavailableError(f"Redis store unavailable: {exc}")
    if isinstance(exc, redis.ResponseError) and str(exc).startswith(_UNAVAILABLE_REPLIES):
        return StorageUnavailableError(f"Redis store unavailable: {exc}")
    if isinstance(exc, redis.RedisError):
        return GeneralError(f"Redis error: {exc}")
    return exc
