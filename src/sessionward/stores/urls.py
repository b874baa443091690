"""Open a store from its URL: ``sqlite:///…``, ``postgresql://…`` or ``redis://…``."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ..errors import ConfigError
from .base import AsyncStore, Store
from .sqlite import SQLiteStore
from .threaded import ThreadedAsyncStore

__all__ = ["open_async_store", "open_store"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss")


def _scheme(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"store: expected a store URL such as sqlite:///sessionward.db; got {url!r}")
    return url.split("://", 1)[0].lower()


def _optional_store_module(module: str, driver: str, extra: str) -> ModuleType:
    """``sessionward.stores.<module>``, imported on demand: its driver is an optional extra."""
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in driver.split():
            raise
        raise ConfigError(
            f"store: {module} URLs need the {exc.name.split('.')[0]} package: "
            f"pip install 'sessionward[{extra}]'"
        ) from exc


def open_store(url: str) -> Store:
    """A synchronous store for ``url``."""
    store: Store = _open(url, asynchronous=False)
    return store


def open_async_store(url: str) -> AsyncStore:
    """An async store for ``url``."""
    store: AsyncStore = _open(url, asynchronous=True)
    return store


def _open(url: str, *, asynchronous: bool) -> Any:
    scheme = _scheme(url)
    if scheme == "sqlite":
        return ThreadedAsyncStore(SQLiteStore(url)) if asynchronous else SQLiteStore(url)
    if scheme in POSTGRES_SCHEMES:
        module = _optional_store_module("postgres", "psycopg psycopg_pool", "postgres")
        return (module.AsyncPostgresStore if asynchronous else module.PostgresStore)(url)
    if scheme in REDIS_SCHEMES:
        module = _optional_store_module("redis", "redis", "redis")
        return (module.AsyncRedisStore if asynchronous else module.RedisStore)(url)
    raise ConfigError(f"store: unknown URL scheme {scheme!r}; use sqlite://, postgresql:// or redis://")
