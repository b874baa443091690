"""Open a store from its URL (``sqlite:///…``; PostgreSQL and Redis arrive later)."""

from __future__ import annotations

from types import ModuleType

from ..errors import ConfigError
from .base import AsyncStore, Store
from .sqlite import SQLiteStore
from .threaded import ThreadedAsyncStore

__all__ = ["open_async_store", "open_store"]


def _scheme(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"store: expected a store URL such as sqlite:///sessionward.db; got {url!r}")
    return url.split("://", 1)[0].lower()


def _redis_stores() -> ModuleType:
    """``stores.redis``, imported on demand: redis-py is an optional extra."""
    try:
        from . import redis as redis_stores
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "redis":
            raise
        raise ConfigError(
            "store: redis:// needs the redis package: pip install 'sessionward[redis]'"
        ) from exc
    return redis_stores


def open_store(url: str) -> Store:
    """A synchronous store for ``url``."""
    scheme = _scheme(url)
    if scheme == "sqlite":
        return SQLiteStore(url)
    if scheme in ("redis", "rediss"):
        return _redis_stores().RedisStore(url)  # type: ignore[no-any-return]
    raise ConfigError(f"store: the {scheme!r} store is not available in this version")


def open_async_store(url: str) -> AsyncStore:
    """An async store for ``url``."""
    scheme = _scheme(url)
    if scheme == "sqlite":
        return ThreadedAsyncStore(SQLiteStore(url))
    if scheme in ("redis", "rediss"):
        return _redis_stores().AsyncRedisStore(url)  # type: ignore[no-any-return]
    raise ConfigError(f"store: the {scheme!r} store is not available in this version")
