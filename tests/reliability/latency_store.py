"""Store wrappers that make chosen calls wait, for the latency drill (not a test module).

:class:`DelayingStore` and :class:`AsyncDelayingStore` implement the ``Store`` and
``AsyncStore`` protocols by delegation. Before each call of a method named in the
:class:`LatencyPlan` they sleep for a random time between that method's bounds (real
``time.sleep`` / ``asyncio.sleep``, real clock), then make the real call: what a slow
network, a pool wait or a lock does to a request *before* the store reads or writes, so the
row comes back later than the engine's request began. The waits are drawn from one seeded
RNG, so a run's sequence of draws is reproducible (their interleaving across threads is
not). The plan also counts the waits and the promotions (compare-and-sets that changed a
row), shared by every wrapper using it.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from support.stores import STORE_METHODS

from sessionward.stores.base import AsyncStore, Promoted, Promotion, SessionRow, Store, StoredKey

__all__ = ["STORE_METHODS", "AsyncDelayingStore", "DelayingStore", "LatencyPlan"]


class LatencyPlan:
    """Which store methods wait, for how long (seconds, uniform between ``low`` and
    ``high``), drawn from a RNG seeded with ``seed``; thread-safe."""

    def __init__(self, delays: Mapping[str, tuple[float, float]], seed: int) -> None:
        unknown = set(delays) - STORE_METHODS
        if unknown:
            raise ValueError(f"not store methods: {sorted(unknown)}")
        for method, (low, high) in delays.items():
            if not 0 <= low <= high:
                raise ValueError(f"{method}: expected 0 <= low <= high, got {low}, {high}")
        self.delays = {method: (float(low), float(high)) for method, (low, high) in delays.items()}
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.injected_seconds = 0.0
        self.promotions = 0

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> LatencyPlan:
        """A plan from ``{"delays": {method: [low, high]}, "seed": n}`` (the worker's argument)."""
        return cls({name: (low, high) for name, (low, high) in spec["delays"].items()}, int(spec["seed"]))

    def to_json(self) -> dict[str, Any]:
        return {"delays": {name: list(bounds) for name, bounds in self.delays.items()}, "seed": self.seed}

    def draw(self, method: str) -> float:
        """The wait before this call of ``method`` (0 for methods without a delay)."""
        bounds = self.delays.get(method)
        if bounds is None:
            return 0.0
        with self._lock:
            delay = self._rng.uniform(*bounds)
            self.injected[method] += 1
            self.injected_seconds += delay
        return delay

    def promoted(self, changed: bool) -> bool:
        if changed:
            with self._lock:
                self.promotions += 1
        return changed

    @property
    def injected_total(self) -> int:
        with self._lock:
            return sum(self.injected.values())


class DelayingStore:
    """A :class:`~sessionward.stores.base.Store` whose calls wait as ``plan`` says, then
    delegate to ``inner``."""

    def __init__(self, inner: Store, plan: LatencyPlan) -> None:
        self.inner = inner
        self.plan = plan

    def _wait(self, method: str) -> None:
        delay = self.plan.draw(method)
        if delay:
            time.sleep(delay)

    def migrate(self) -> int:
        self._wait("migrate")
        return self.inner.migrate()

    def check_schema(self) -> None:
        self._wait("check_schema")
        self.inner.check_schema()

    def insert_session(self, row: SessionRow) -> None:
        self._wait("insert_session")
        self.inner.insert_session(row)

    def get_session(self, handle: str) -> SessionRow | None:
        self._wait("get_session")
        return self.inner.get_session(handle)

    def promote_returning(self, promotion: Promotion) -> Promoted:
        self._wait("promote_returning")
        outcome = self.inner.promote_returning(promotion)
        self.plan.promoted(outcome.changed)
        return outcome

    def delete_sessions(self, handles: list[str]) -> list[str]:
        self._wait("delete_sessions")
        return self.inner.delete_sessions(handles)

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        self._wait("delete_sessions_for_user")
        return self.inner.delete_sessions_for_user(user_id)

    def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        self._wait("delete_other_sessions")
        return self.inner.delete_other_sessions(user_id, keep)

    def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        self._wait("get_sessions_for_user")
        return self.inner.get_sessions_for_user(user_id, now)

    def update_auth_time(self, handle: str, auth_time: int) -> bool:
        self._wait("update_auth_time")
        return self.inner.update_auth_time(handle, auth_time)

    def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        self._wait("get_handles_for_user")
        return self.inner.get_handles_for_user(user_id, now)

    def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        self._wait("update_session_data")
        return self.inner.update_session_data(handle, data)

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        self._wait("update_jwt_payload")
        return self.inner.update_jwt_payload(handle, payload)

    def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        self._wait("delete_expired_sessions")
        return self.inner.delete_expired_sessions(now)

    def load_keys(self, prefix: str) -> list[StoredKey]:
        self._wait("load_keys")
        return self.inner.load_keys(prefix)

    def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        self._wait("insert_key_if_absent")
        return self.inner.insert_key_if_absent(key)

    def delete_keys(self, names: list[str]) -> None:
        self._wait("delete_keys")
        self.inner.delete_keys(names)

    def close(self) -> None:
        self._wait("close")
        self.inner.close()


class AsyncDelayingStore:
    """An :class:`~sessionward.stores.base.AsyncStore` whose calls wait (``asyncio.sleep``)
    as ``plan`` says, then delegate to ``inner``."""

    def __init__(self, inner: AsyncStore, plan: LatencyPlan) -> None:
        self.inner = inner
        self.plan = plan

    async def _wait(self, method: str) -> None:
        delay = self.plan.draw(method)
        if delay:
            await asyncio.sleep(delay)

    async def migrate(self) -> int:
        await self._wait("migrate")
        return await self.inner.migrate()

    async def check_schema(self) -> None:
        await self._wait("check_schema")
        await self.inner.check_schema()

    async def insert_session(self, row: SessionRow) -> None:
        await self._wait("insert_session")
        await self.inner.insert_session(row)

    async def get_session(self, handle: str) -> SessionRow | None:
        await self._wait("get_session")
        return await self.inner.get_session(handle)

    async def promote_returning(self, promotion: Promotion) -> Promoted:
        await self._wait("promote_returning")
        outcome = await self.inner.promote_returning(promotion)
        self.plan.promoted(outcome.changed)
        return outcome

    async def delete_sessions(self, handles: list[str]) -> list[str]:
        await self._wait("delete_sessions")
        return await self.inner.delete_sessions(handles)

    async def delete_sessions_for_user(self, user_id: str) -> list[str]:
        await self._wait("delete_sessions_for_user")
        return await self.inner.delete_sessions_for_user(user_id)

    async def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        await self._wait("delete_other_sessions")
        return await self.inner.delete_other_sessions(user_id, keep)

    async def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        await self._wait("get_sessions_for_user")
        return await self.inner.get_sessions_for_user(user_id, now)

    async def update_auth_time(self, handle: str, auth_time: int) -> bool:
        await self._wait("update_auth_time")
        return await self.inner.update_auth_time(handle, auth_time)

    async def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        await self._wait("get_handles_for_user")
        return await self.inner.get_handles_for_user(user_id, now)

    async def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        await self._wait("update_session_data")
        return await self.inner.update_session_data(handle, data)

    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        await self._wait("update_jwt_payload")
        return await self.inner.update_jwt_payload(handle, payload)

    async def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        await self._wait("delete_expired_sessions")
        return await self.inner.delete_expired_sessions(now)

    async def load_keys(self, prefix: str) -> list[StoredKey]:
        await self._wait("load_keys")
        return await self.inner.load_keys(prefix)

    async def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        await self._wait("insert_key_if_absent")
        return await self.inner.insert_key_if_absent(key)

    async def delete_keys(self, names: list[str]) -> None:
        await self._wait("delete_keys")
        await self.inner.delete_keys(names)

    async def close(self) -> None:
        await self._wait("close")
        await self.inner.close()
