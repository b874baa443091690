"""Connection pools and checking a connection out of them.

Each connection is checked before use (see ``pool_check``): one found dead is replaced and
the next tried at once, so only statements in flight when a backend dies fail; the pool
reconnects in the background about once a second while the server is away, so the same
store object recovers by itself once the server is back.
"""

from __future__ import annotations

import asyncio
import select
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from .settings import PostgresSettings

__all__ = [
    "ABANDONED",
    "AnyConnection",
    "AsyncPool",
    "Pool",
    "checked_out",
    "checked_out_async",
    "close_when_cancelled",
    "discard_async_pool",
    "pool_options",
]

_IDLE_BEFORE_CHECK = 1.0
# Pools of a forked parent or of a closed event loop: kept referenced so that garbage
# collection never runs their finalisers (which would warn or touch foreign sockets).
ABANDONED: list[object] = []


class _SteadyAttempt(AttemptWithBackoff):
    """Reconnect about once a second instead of backing off exponentially, so recovery
    follows the server's return within a second or two however long it was away."""

    DELAY_BACKOFF = 1.0


class Pool(ConnectionPool[psycopg.Connection[Any]]):
    """psycopg's ``ConnectionPool`` reconnecting at a steady pace."""

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing)


class AsyncPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """psycopg's ``AsyncConnectionPool`` reconnecting at a steady pace."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing)


# When each pooled connection was last handed back (weak keys: closed connections vanish).
_LAST_USED: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()

AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]


def _has_unread_input(connection: AnyConnection) -> bool:
    """Whether the server sent something to this idle connection: typically a terminated
    backend's farewell (``FATAL: terminating connection``) and end of stream, or a reset.
    One non-blocking poll of the socket, no round trip."""
    if connection.closed:
        return True
    fileno = connection.fileno()
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fileno], [], [], 0)[0])


def _needs_test(connection: AnyConnection, mode: str) -> bool:
    """Whether ``pool_check`` asks for a round trip before ``connection`` is used."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    idle = time.monotonic() - _LAST_USED.get(connection, 0.0) > _IDLE_BEFORE_CHECK
    return idle or _has_unread_input(connection)


def _usable(connection: psycopg.Connection[Any], mode: str) -> bool:
    if not _needs_test(connection, mode):
        return True
    try:
        ConnectionPool.check_connection(connection)
    except psycopg.Error:
        return False
    return True


async def _usable_async(connection: psycopg.AsyncConnection[Any], mode: str) -> bool:
    if not _needs_test(connection, mode):
        return True
    try:
        await AsyncConnectionPool.check_connection(connection)
    except psycopg.Error:
        return False
    return True


# Checking out: a connection found dead is closed and handed back (the pool opens a
# replacement) and the next one is tried at once. Nothing was sent on it, so skipping it is
# safe for every operation, unlike retrying a statement that failed in flight: its outcome
# is unknown (a backend may be terminated after its commit, before the reply), and a
# repeated compare-and-set or DELETE … RETURNING would change the answer. This loop, not
# the pool's ``check`` callback, does the checking: after a failed check the pool sleeps a
# second or more before trying the next connection, which made each connection killed
# while idle cost a request a 503, one by one.


@contextmanager
def checked_out(pool: Pool, settings: PostgresSettings) -> Iterator[psycopg.Connection[Any]]:
    """A live connection of ``pool`` for the ``with`` block, within ``pool_timeout``."""
    deadline = time.monotonic() + settings.pool_timeout
    while True:
        connection = pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
        if _usable(connection, settings.pool_check):
            break
        connection.close()
        pool.putconn(connection)
    try:
        yield connection
    finally:
        _LAST_USED[connection] = time.monotonic()
        pool.putconn(connection)


@asynccontextmanager
async def checked_out_async(
    pool: AsyncPool, settings: PostgresSettings
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """:func:`checked_out` for an async pool."""
    deadline = time.monotonic() + settings.pool_timeout
    while True:
        connection = await pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
        if await _usable_async(connection, settings.pool_check):
            break
        await connection.close()
        await pool.putconn(connection)
    try:
        yield connection
    finally:
        _LAST_USED[connection] = time.monotonic()
        await pool.putconn(connection)


def pool_options(settings: PostgresSettings) -> dict[str, Any]:
    """Keyword arguments of :class:`Pool` and :class:`AsyncPool` for ``settings``."""
    return {
        "kwargs": settings.connect_kwargs,
        "min_size": settings.pool_min,
        "max_size": settings.pool_max,
        "timeout": settings.pool_timeout,
        "name": "sessionward",
        "open": False,
    }


async def close_when_cancelled(pool: AsyncPool) -> None:
    """Wait until cancelled, then close ``pool``.

    The pool's maintenance tasks swallow cancellation, so a loop shut down while they run
    (``asyncio.run`` cancels every task on exit) would wait for them forever. This task is
    cancelled in the same sweep and closes the pool, which stops them.
    """
    try:
        await asyncio.Event().wait()
    finally:
        await pool.close(timeout=1)


def discard_async_pool(pool: AsyncPool) -> None:
    """Drop a pool whose event loop is gone: close its idle sockets without the loop."""
    for connection in list(getattr(pool, "_pool", ())):
        connection.pgconn.finish()
    ABANDONED.append(pool)
