"""Run a synchronous store from async code without blocking the event loop.

Each call is handed to one dedicated worker thread (calls on one store are serialised
anyway), so the event loop only awaits a future. Used for SQLite, whose driver has no
async API.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import GeneralError
from .base import Promoted, Promotion, SessionRow, Store, StoredKey

__all__ = ["ThreadedAsyncStore"]

T = TypeVar("T")


class ThreadedAsyncStore:
    """An :class:`~sessionward.stores.base.AsyncStore` over a sync store and a worker thread."""

    def __init__(self, store: Store) -> None:
        self.sync_store = store
        self._executor: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._closed = False

    def _pool(self) -> ThreadPoolExecutor:
        if self._closed:
            # Never start a new worker thread that nothing would shut down.
            raise GeneralError("the store is closed")
        if self._executor is None or self._pid != os.getpid():
            # After a fork the parent's worker thread does not exist in the child.
            self._pid = os.getpid()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sessionward-store")
        return self._executor

    async def _call(self, name: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool(), functools.partial(getattr(self.sync_store, name), *args)
        )

    async def migrate(self) -> int:
        return int(await self._call("migrate"))

    async def check_schema(self) -> None:
        await self._call("check_schema")

    async def insert_session(self, row: SessionRow) -> None:
        await self._call("insert_session", row)

    async def get_session(self, handle: str) -> SessionRow | None:
        result: SessionRow | None = await self._call("get_session", handle)
        return result

    async def promote_returning(self, promotion: Promotion) -> Promoted:
        result: Promoted = await self._call("promote_returning", promotion)
        return result

    async def delete_sessions(self, handles: list[str]) -> list[str]:
        return list(await self._call("delete_sessions", handles))

    async def delete_sessions_for_user(self, user_id: str) -> list[str]:
        return list(await self._call("delete_sessions_for_user", user_id))

    async def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        return list(await self._call("delete_other_sessions", user_id, keep))

    async def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        return list(await self._call("get_sessions_for_user", user_id, now))

    async def update_auth_time(self, handle: str, auth_time: int) -> bool:
        return bool(await self._call("update_auth_time", handle, auth_time))

    async def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        return list(await self._call("get_handles_for_user", user_id, now))

    async def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        return bool(await self._call("update_session_data", handle, data))

    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        return bool(await self._call("update_jwt_payload", handle, payload))

    async def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        return list(await self._call("delete_expired_sessions", now))

    async def load_keys(self, prefix: str) -> list[StoredKey]:
        return list(await self._call("load_keys", prefix))

    async def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        result: StoredKey = await self._call("insert_key_if_absent", key)
        return result

    async def delete_keys(self, names: list[str]) -> None:
        await self._call("delete_keys", names)

    async def close(self) -> None:
        if self._closed:
            return
        if self._executor is not None and self._pid == os.getpid():
            try:
                await self._call("close")
            finally:
                self._closed = True
                self._executor.shutdown(wait=True)
        else:
            self._closed = True
            self.sync_store.close()
        self._executor = None
