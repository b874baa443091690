"""The asyncio PostgreSQL store: a psycopg ``AsyncConnectionPool`` per process and event loop."""

from __future__ import annotations

import asyncio
import os
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

import psycopg

from ...errors import GeneralError
from ..base import Promoted, Promotion, SessionRow, StoredKey
from ..change_operations import AsyncOperationsChangeFeed
from . import operations as ops
from .changes import CHANGE_OPERATIONS, PostgresChangeListener
from .drivers import drive_async
from .errors import CLOSED, translate
from .pool import (
    ABANDONED,
    AsyncPool,
    checked_out_async,
    close_when_cancelled,
    discard_async_pool,
    pool_options,
)
from .settings import parse_postgres_url
from .startup import check_connection_async

__all__ = ["AsyncPostgresStore"]

T = TypeVar("T")


class AsyncPostgresStore(AsyncOperationsChangeFeed[PostgresChangeListener]):
    """An :class:`~sessionward.stores.base.AsyncStore` on psycopg's async connection pool,
    with the change feed (its listener is the thread-based one of the sync store).

    One pool per event loop (a pool cannot outlive or cross its loop); pools of loops that
    have been closed are discarded when the next pool is made.
    """

    change_operations = CHANGE_OPERATIONS

    def __init__(self, url: str) -> None:
        self.settings = parse_postgres_url(url)
        self._pools: dict[asyncio.AbstractEventLoop, AsyncPool] = {}
        self._closers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._pid = os.getpid()
        self._closed = False
        self._connection_checked = False

    def __repr__(self) -> str:
        return f"AsyncPostgresStore({self.settings.description!r})"

    async def _get_pool(self) -> AsyncPool:
        if os.getpid() != self._pid:
            ABANDONED.append(self._pools)
            self._pid, self._pools, self._closers = os.getpid(), {}, {}
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for other in [other for other in self._pools if other.is_closed()]:
                discard_async_pool(self._pools.pop(other))
                self._closers.pop(other, None)
            pool = self._pools[loop] = AsyncPool(self.settings.conninfo, **pool_options(self.settings))
            self._closers[loop] = loop.create_task(close_when_cancelled(pool), name="sessionward-closer")
        if pool.closed:
            await pool.open(wait=False)  # idempotent and locked: concurrent first users are fine
        return pool

    async def _check_connection(self) -> None:
        """Before the first start-up call, tell a refused configuration from an outage."""
        if not self._connection_checked and not self._closed:
            await check_connection_async(self.settings)
            self._connection_checked = True

    async def _run(self, operation: ops.Operation[T], transaction: bool = False) -> T:
        if self._closed:
            raise GeneralError(CLOSED)
        try:
            pool = await self._get_pool()
            async with checked_out_async(pool, self.settings) as connection:
                scope: AbstractAsyncContextManager[Any] = (
                    connection.transaction() if transaction else nullcontext()
                )
                async with scope:
                    return await drive_async(connection, operation)
        except psycopg.Error as exc:
            raise translate(exc, self.settings.description, self._closed) from exc
        finally:
            operation.close()

    # -- AsyncStore methods (see sessionward.stores.base.AsyncStore) ---------------------

    async def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in place."""
        await self._check_connection()
        return await self._run(ops.migrate(), transaction=True)

    async def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` if the schema is not current."""
        await self._check_connection()
        await self._run(ops.check_schema())

    async def insert_session(self, row: SessionRow) -> None:
        """Insert a new session row."""
        await self._run(ops.insert_session(row))

    async def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        return await self._run(ops.get_session(handle))

    async def promote_returning(self, promotion: Promotion) -> Promoted:
        """The compare-and-set of ``promotion`` and the resulting row (one statement)."""
        return await self._run(ops.promote_returning(promotion))

    async def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        return await self._run(ops.delete_sessions(handles))

    async def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        return await self._run(ops.delete_sessions_for_user(user_id))

    async def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """Delete every session of ``user_id`` except ``keep`` (one statement); their handles."""
        return await self._run(ops.delete_other_sessions(user_id, keep))

    async def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        """The rows of ``user_id``'s sessions that have not expired at ``now``."""
        return await self._run(ops.get_sessions_for_user(user_id, now))

    async def update_auth_time(self, handle: str, auth_time: int) -> bool:
        """Set ``auth_time`` and ``last_active_at``; return whether the session exists."""
        return await self._run(ops.update_auth_time(handle, auth_time))

    async def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        """Handles of ``user_id``'s sessions that have not expired at ``now``."""
        return await self._run(ops.get_handles_for_user(user_id, now))

    async def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        """Overwrite session data; return whether the session exists."""
        return await self._run(ops.update_json("session_data", handle, data))

    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        """Overwrite the JWT payload; return whether the session exists."""
        return await self._run(ops.update_json("jwt_user_payload", handle, payload))

    async def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        """Delete rows with ``expires_at < now``; return ``(handle, user_id)`` of each."""
        return await self._run(ops.delete_expired(now))

    async def load_keys(self, prefix: str) -> list[StoredKey]:
        """All key-value entries whose name starts with ``prefix``."""
        return await self._run(ops.load_keys(prefix))

    async def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        """Insert ``key`` unless its name exists; return the entry now stored."""
        return await self._run(ops.insert_key_if_absent(key))

    async def delete_keys(self, names: list[str]) -> None:
        """Delete key-value entries by name."""
        await self._run(ops.delete_keys(names))

    async def close(self) -> None:
        """Close this loop's pool; discard pools of closed loops; schedule the closing of
        pools on other running loops."""
        self._closed = True
        pools, self._pools = self._pools, {}
        closers, self._closers = self._closers, {}
        if os.getpid() != self._pid:
            return
        current = asyncio.get_running_loop()
        for loop, pool in pools.items():
            closer = closers.get(loop)
            if loop is current:
                if closer is not None:
                    closer.cancel()
                await pool.close()
            elif loop.is_closed():
                discard_async_pool(pool)
            elif closer is not None:
                loop.call_soon_threadsafe(closer.cancel)
