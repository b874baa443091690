"""The asyncio Redis store: one ``redis.asyncio`` client per event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio

from ...errors import GeneralError
from ..base import Promoted, Promotion, SessionRow, StoredKey
from ..change_operations import AsyncOperationsChangeFeed
from . import operations as ops
from .changes import CHANGE_OPERATIONS, RedisChangeListener
from .errors import CLOSED, translate
from .scripts import SCRIPTS
from .settings import parse_redis_url

__all__ = ["AsyncRedisStore"]

T = TypeVar("T")


@dataclass(slots=True)
class _LoopClient:
    """The client of one event loop (asyncio connections belong to the loop that made them)."""

    client: redis.asyncio.Redis
    scripts: dict[str, Any]
    guard: AsyncGenerator[None, None]
    armed: bool = False


class AsyncRedisStore(AsyncOperationsChangeFeed[RedisChangeListener]):
    """An :class:`~sessionward.stores.base.AsyncStore` on ``redis.asyncio``, with the change
    feed (its listener is the thread-based one of the sync store).

    Connections are made per event loop: an engine may outlive a loop (successive
    ``asyncio.run`` calls in tests and CLIs). A loop's client is closed when that loop
    shuts down its async generators (as ``asyncio.run`` does) or by :meth:`close`.
    """

    change_operations = CHANGE_OPERATIONS

    def __init__(self, url: str = "redis://127.0.0.1:6379/0") -> None:
        self.url = url
        self.settings = parse_redis_url(url)
        self.prefix = self.settings.prefix
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._abandoned: list[_LoopClient] = []  # of loops closed without shutting down
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._pid = os.getpid()
                self._abandoned.extend(self._clients.values())
                self._clients = {}
            entry = self._clients.get(loop)
            if entry is None:
                if self._closed:
                    raise GeneralError(CLOSED)
                for old_loop in [old for old in self._clients if old.is_closed()]:
                    self._abandoned.append(self._clients.pop(old_loop))
                client = self.settings.async_client()
                scripts = {name: client.register_script(text) for name, text in SCRIPTS.items()}
                entry = self._clients[loop] = _LoopClient(client, scripts, self._guard(loop))
        return entry

    async def _guard(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        """Suspended for the loop's lifetime; the loop's shutdown closes its client."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._clients.pop(loop, None)
            if entry is not None:
                await entry.client.aclose()

    async def _run(self, op: ops.Op[T]) -> T:
        entry = self._loop_client()
        if not entry.armed:
            entry.armed = True
            await anext(entry.guard)  # registers the generator with the running loop
        if op.script is None:
            return op.decode(None)
        try:
            reply = await entry.scripts[op.script](keys=[], args=[self.prefix, *op.args])
        except Exception as exc:
            raise translate(exc, self.settings) from exc
        return op.decode(reply)

    # -- AsyncStore methods (see sessionward.stores.base.AsyncStore) ---------------------

    async def migrate(self) -> int:
        """Record the key layout version; return it."""
        return await self._run(ops.migrate())

    async def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` unless the layout is current."""
        await self._run(ops.check_schema())

    async def insert_session(self, row: SessionRow) -> None:
        """Insert a new session."""
        await self._run(ops.insert_session(row))

    async def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        return await self._run(ops.get_session(handle))

    async def promote_returning(self, promotion: Promotion) -> Promoted:
        """The compare-and-set of ``promotion`` and the resulting row (one script)."""
        return await self._run(ops.promote_returning(promotion))

    async def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        return await self._run(ops.delete_sessions(handles))

    async def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        return await self._run(ops.delete_sessions_for_user(user_id))

    async def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """Delete every session of ``user_id`` except ``keep`` (one script); their handles."""
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
        """Delete sessions with ``expires_at < now``; return ``(handle, user_id)`` of each
        expired session still indexed, including those whose hash Redis already expired."""
        removed: list[tuple[str, str]] = []
        more = True
        while more:  # in batches, so no single script blocks Redis for long
            batch, more = await self._run(ops.sweep(now))
            removed += batch
        return removed

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
        """Close this loop's client (and forget those of other, finished loops)."""
        with self._lock:
            self._closed = True
            entries = self._clients
            self._clients = {}
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, entry in entries.items():
            if loop is current:
                await entry.client.aclose()
                await entry.guard.aclose()
            elif not loop.is_closed():
                asyncio.run_coroutine_threadsafe(entry.client.aclose(), loop)
            else:
                self._abandoned.append(entry)
