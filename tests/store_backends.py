"""Isolated store URLs for the conformance and reliability suites, one per backend.

Every test gets a namespace of its own, removed afterwards: a fresh SQLite file under
``tmp_path``, a fresh PostgreSQL schema (selected through ``search_path`` in the URL) or a
fresh Redis key prefix. A test is skipped (or failed, under
``SESSIONWARD_REQUIRE_SERVICES=1``) only when the *service* cannot be reached; a missing
store implementation or driver makes it fail loudly.

The services default to PostgreSQL at ``postgresql://postgres@127.0.0.1:5432/test`` and
Redis at ``redis://127.0.0.1:6379/0``; ``SESSIONWARD_TEST_POSTGRES_URL`` and
``SESSIONWARD_TEST_REDIS_URL`` override them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.stores.base import SessionRow
from sessionward.stores.urls import open_async_store, open_store

BACKENDS = ("sqlite", "postgres", "redis")
DRIVERS = ("sync", "async")
POSTGRES_URL = os.environ.get("SESSIONWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SESSIONWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_REACHABLE: dict[tuple[str, int], bool] = {}


def skip_or_fail(config: pytest.Config, reason: str) -> None:
    """Call ``skip_or_fail`` of the top-level ``tests/conftest.py`` (skip, or fail in CI).

    Conftest modules all share the module name ``conftest``, so the function is looked up
    through the plugin manager rather than imported.
    """
    path = str(Path(__file__).with_name("conftest.py"))
    root = config.pluginmanager.get_plugin(path)
    if root is None:
        root = next(p for p in config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == path)
    root.skip_or_fail(reason)


def reachable(url: str) -> bool:
    """Whether a TCP connection to the URL's host and port succeeds (cached per run)."""
    parts = urlsplit(url)
    default = 5432 if parts.scheme.startswith("postgres") else 6379
    address = (parts.hostname or "127.0.0.1", parts.port or default)
    if address not in _REACHABLE:
        try:
            socket.create_connection(address, timeout=2).close()
            _REACHABLE[address] = True
        except OSError:
            _REACHABLE[address] = False
    return _REACHABLE[address]


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added (values percent-encoded)."""
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@contextmanager
def postgres_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """A new schema; yields a store URL whose ``search_path`` selects it; drops it after."""
    import psycopg  # a missing driver must fail, not skip

    schema = unique_name("sw_test")
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_query(base_url, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(base_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def redis_prefix(base_url: str = REDIS_URL) -> Iterator[str]:
    """A new key prefix; yields a store URL using it; deletes its keys after."""
    import redis  # a missing driver must fail, not skip

    prefix = unique_name("swtest") + ":"
    try:
        yield with_query(base_url, prefix=prefix)
    finally:
        client = redis.Redis.from_url(base_url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def isolated_store_url(backend: str, tmp_path: Path, config: pytest.Config) -> Iterator[str]:
    """A store URL of ``backend`` that no other test uses, cleaned up afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / unique_name('store')}.db"
        return
    base = POSTGRES_URL if backend == "postgres" else REDIS_URL
    if not reachable(base):
        skip_or_fail(config, f"{backend} is not reachable at {base}")
    opener = postgres_schema if backend == "postgres" else redis_prefix
    with opener(base) as url:
        yield url


def now_ms() -> int:
    """The current time in ms since the epoch, as the stores keep it."""
    return int(time.time() * 1000)


def make_row(
    handle: str,
    user_id: str = "alice",
    hash2: str = "hash-a",
    created: int | None = None,
    expires: int | None = None,
    data: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
) -> SessionRow:
    """A session row for store-level tests (data with nesting and non-ASCII text)."""
    created = now_ms() if created is None else created
    return SessionRow(
        session_handle=handle,
        user_id=user_id,
        refresh_token_hash_2=hash2,
        prev_refresh_token_hash_2=None,
        rotated_at=None,
        session_data={"secret": [1, 2, {"x": None}], "ü": "ß"} if data is None else data,
        jwt_user_payload={"role": "admin", "n": 1.5, "ok": True} if payload is None else payload,
        created_at_time=created,
        expires_at=created + 3_600_000 if expires is None else expires,
    )


class AsyncBridge:
    """Presents an async object's coroutine methods as plain calls on one event loop.

    Lets one test body exercise the sync and the async driver alike; :meth:`gather` runs
    several calls concurrently as tasks of that loop.
    """

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(method(*args, **kwargs))

        return call

    def gather(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Run ``(method, args)`` calls as concurrent tasks; results or exceptions, in order."""

        async def run_all() -> list[Any]:
            return list(
                await asyncio.gather(
                    *(getattr(self._target, name)(*args) for name, args in calls), return_exceptions=True
                )
            )

        return self._runner.run(run_all())


def run_in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # asserted on by the caller
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a racing call hung"
    return results


class Subject:
    """The store under test: ``subject.promote(...)`` etc. for either driver, and
    :meth:`race` for concurrent calls (threads for sync stores, tasks for async ones)."""

    def __init__(self, url: str, runner: asyncio.Runner | None) -> None:
        self.url = url
        self.driver = "sync" if runner is None else "async"
        self._sync = open_store(url) if runner is None else None
        self._bridge = None if runner is None else AsyncBridge(open_async_store(url), runner)

    def __getattr__(self, name: str) -> Any:
        target: Any = self._sync if self._sync is not None else self._bridge
        return getattr(target, name)

    def race(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Run ``(method, args)`` calls concurrently; results or exceptions, in order."""
        if self._bridge is not None:
            return self._bridge.gather(calls)
        store = self._sync
        return run_in_threads([lambda n=name, a=args: getattr(store, n)(*a) for name, args in calls])


class Ward:
    """An engine of either driver behind plain calls (``close`` closes it and its store)."""

    def __init__(self, config: Config, url: str, runner: asyncio.Runner | None, clock: Any) -> None:
        self.config = config
        if runner is None:
            self.engine: Any = SessionWard(config, store=url, clock=clock)
        else:
            self.engine = AsyncBridge(AsyncSessionWard(config, store=url, clock=clock), runner)
        self._async = runner is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def race(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        if self._async:
            return list(self.engine.gather(calls))
        engine = self.engine
        return run_in_threads([lambda n=name, a=args: getattr(engine, n)(*a) for name, args in calls])

    def close(self) -> None:
        if self._async:
            self.engine.aclose()
        else:
            self.engine.close()
