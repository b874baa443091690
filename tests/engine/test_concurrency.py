"""Concurrency of refresh and promotion on a real SQLite file (docs/design/decision-tables.md, "Why
concurrency is safe"): 50 threads or 50 tasks present the same token at once.

- the same current refresh token: every call returns one and the same successor (same
  refresh token, same anti-CSRF token), none is taken for theft;
- the same not-yet-committed child: exactly one compare-and-set commits it, every call
  succeeds with the same successor;
- the same first-use access token: exactly one compare-and-set, every call succeeds with
  a replacement access token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward import (
    AsyncSessionWard,
    Config,
    SessionTokens,
    SessionWard,
    TokenTheftDetectedError,
    VerifiedSession,
)
from sessionward.stores.base import Promoted, Promotion
from sessionward.stores.sqlite import SQLiteStore
from sessionward.stores.threaded import ThreadedAsyncStore

N = 50
T0 = 1_700_000_000.0
GRACE = 10


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Delegates to a real store; counts calls and successful compare-and-sets."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.promoted = 0
        self._lock = threading.Lock()

    def promote_returning(self, promotion: Promotion) -> Promoted:
        outcome = self.inner.promote_returning(promotion)
        with self._lock:
            self.calls["promote_returning"] += 1
            self.promoted += outcome.changed
        return outcome

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return attribute(*args, **kwargs)

        return call


def make_config(path: Path) -> Config:
    return Config(
        store=f"sqlite:///{path}",
        access_token_algorithm="HS256",
        access_token_validity=60,
        refresh_token_validity=600,
        refresh_token_reuse_grace_period=GRACE,
        enable_anti_csrf=True,
        cookie_secure=False,
    )


class Cluster:
    """``engines`` engines (each with its own connection) on one SQLite file."""

    def __init__(self, path: Path, engines: int) -> None:
        self.clock = FakeClock()
        self.config = make_config(path)
        self.stores = [CountingStore(SQLiteStore(f"sqlite:///{path}")) for _ in range(engines)]
        self.engines = [
            SessionWard(self.config, store=store, clock=self.clock)  # type: ignore[arg-type]
            for store in self.stores
        ]

    @property
    def promoted(self) -> int:
        return sum(store.promoted for store in self.stores)

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
        for store in self.stores:
            store.inner.close()


@pytest.fixture(params=[1, 5], ids=["one-engine", "five-engines"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path / "sessions.db", request.param)
    try:
        # Start every engine (migrations, keys) before the race.
        for engine in made.engines:
            engine.jwks()
        yield made
    finally:
        made.close()


def run_at_once(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action(index)
        except BaseException as exc:  # collected and asserted on by the test
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return results


def assert_one_successor(results: list[Any]) -> SessionTokens:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert all(isinstance(r, SessionTokens) for r in results)
    assert len({r.refresh_token.value for r in results}) == 1
    assert len({r.anti_csrf_token for r in results}) == 1
    assert len({r.handle for r in results}) == 1
    first: SessionTokens = results[0]
    assert first.anti_csrf_token is not None
    return first


def test_threads_refresh_the_same_current_token(cluster: Cluster) -> None:
    tokens = cluster.engines[0].create_new_session("alice")
    original = tokens.refresh_token.value
    results = run_at_once(N, lambda i: cluster.engines[i % len(cluster.engines)].refresh_session(original))
    successor = assert_one_successor(results)
    assert cluster.promoted == 0  # R2 writes nothing
    assert successor.refresh_token.value != original
    # The successor works: its first access token commits it, its refresh token refreshes.
    verified = cluster.engines[-1].get_session(
        successor.access_token.value, successor.anti_csrf_token, do_anti_csrf_check=True
    )
    assert verified.new_access_token is not None
    assert cluster.promoted == 1
    assert cluster.engines[0].refresh_session(successor.refresh_token.value).handle == tokens.handle
    # Within the grace window the original still gets the successor back ...
    cluster.clock.now += GRACE
    assert cluster.engines[0].refresh_session(original).refresh_token.value == successor.refresh_token.value
    # ... after it, the original is a stolen token.
    cluster.clock.now += 1
    with pytest.raises(TokenTheftDetectedError):
        cluster.engines[0].refresh_session(original)


def test_threads_refresh_the_same_uncommitted_child(cluster: Cluster) -> None:
    tokens = cluster.engines[0].create_new_session("alice")
    child = cluster.engines[0].refresh_session(tokens.refresh_token.value)
    results = run_at_once(
        N, lambda i: cluster.engines[i % len(cluster.engines)].refresh_session(child.refresh_token.value)
    )
    successor = assert_one_successor(results)
    assert cluster.promoted == 1  # exactly one compare-and-set committed the child
    assert successor.refresh_token.value not in (tokens.refresh_token.value, child.refresh_token.value)
    cluster.clock.now += GRACE + 1
    # The child is current: refreshing with it again still answers the same successor.
    again = cluster.engines[0].refresh_session(child.refresh_token.value)
    assert again.refresh_token.value == successor.refresh_token.value
    with pytest.raises(TokenTheftDetectedError):
        cluster.engines[0].refresh_session(tokens.refresh_token.value)


def test_threads_first_use_of_the_same_child_access_token(cluster: Cluster) -> None:
    tokens = cluster.engines[0].create_new_session("alice", {"p": 1})
    refreshed = cluster.engines[0].refresh_session(tokens.refresh_token.value)
    access = refreshed.access_token.value
    results = run_at_once(
        N,
        lambda i: cluster.engines[i % len(cluster.engines)].get_session(
            access, refreshed.anti_csrf_token, do_anti_csrf_check=True
        ),
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert all(isinstance(r, VerifiedSession) for r in results)
    assert all(r.new_access_token is not None and r.jwt_payload == {"p": 1} for r in results)
    assert cluster.promoted == 1
    # Everyone's replacement is an ordinary token of the same session.
    for result in results[:5]:
        again = cluster.engines[0].get_session(result.new_access_token.value)
        assert again.handle == tokens.handle
        assert again.new_access_token is None
    cluster.clock.now += GRACE + 1
    with pytest.raises(TokenTheftDetectedError):
        cluster.engines[0].refresh_session(tokens.refresh_token.value)


def test_threads_across_many_sessions_do_not_interfere(tmp_path: Path) -> None:
    made = Cluster(tmp_path / "sessions.db", 2)
    try:
        sessions = [made.engines[0].create_new_session(f"user{i}") for i in range(10)]

        def action(index: int) -> SessionTokens:
            engine = made.engines[index % 2]
            session = sessions[index % len(sessions)]
            refreshed = engine.refresh_session(session.refresh_token.value)
            engine.get_session(refreshed.access_token.value)
            return engine.refresh_session(refreshed.refresh_token.value)

        results = run_at_once(N, action)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:3]
        by_handle: dict[str, set[str]] = {}
        for result in results:
            by_handle.setdefault(result.handle, set()).add(result.refresh_token.value)
        assert len(by_handle) == len(sessions)
        assert all(len(values) == 1 for values in by_handle.values())
        assert made.promoted == len(sessions)
    finally:
        made.close()


# -- asyncio -------------------------------------------------------------------------------


class AsyncCluster:
    def __init__(self, path: Path) -> None:
        self.clock = FakeClock()
        self.sync_store = CountingStore(SQLiteStore(f"sqlite:///{path}"))
        self.store = ThreadedAsyncStore(self.sync_store)  # type: ignore[arg-type]
        self.engine = AsyncSessionWard(make_config(path), store=self.store, clock=self.clock)

    async def close(self) -> None:
        await self.engine.aclose()
        await self.store.close()


def test_tasks_refresh_the_same_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = AsyncCluster(tmp_path / "sessions.db")
        try:
            engine = cluster.engine
            tokens = await engine.create_new_session("alice")
            original = tokens.refresh_token.value
            results = await asyncio.gather(
                *(engine.refresh_session(original) for _ in range(N)), return_exceptions=True
            )
            successor = assert_one_successor(list(results))
            assert cluster.sync_store.promoted == 0
            # 50 tasks commit the same uncommitted child: one compare-and-set.
            results = await asyncio.gather(
                *(engine.refresh_session(successor.refresh_token.value) for _ in range(N)),
                return_exceptions=True,
            )
            grandchild = assert_one_successor(list(results))
            assert cluster.sync_store.promoted == 1
            cluster.clock.now += GRACE + 1
            with pytest.raises(TokenTheftDetectedError):
                await engine.refresh_session(original)
            assert grandchild.handle == tokens.handle
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_tasks_first_use_of_the_same_child_access_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = AsyncCluster(tmp_path / "sessions.db")
        try:
            engine = cluster.engine
            tokens = await engine.create_new_session("alice")
            refreshed = await engine.refresh_session(tokens.refresh_token.value)
            results = await asyncio.gather(
                *(
                    engine.get_session(
                        refreshed.access_token.value, refreshed.anti_csrf_token, do_anti_csrf_check=True
                    )
                    for _ in range(N)
                ),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            assert not errors, errors[:3]
            assert all(isinstance(r, VerifiedSession) and r.new_access_token for r in results)
            assert cluster.sync_store.promoted == 1
            # The successor works afterwards.
            again = await engine.refresh_session(refreshed.refresh_token.value)
            assert again.handle == tokens.handle
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_real_wait_grace_one_second(tmp_path: Path) -> None:
    """The same race without a fake clock: grace=1 s, then a real wait."""
    config = Config(
        store=f"sqlite:///{tmp_path / 'real.db'}",
        access_token_algorithm="HS256",
        refresh_token_reuse_grace_period=1,
    )
    with SessionWard(config) as engine:
        tokens = engine.create_new_session("alice")
        results = run_at_once(N, lambda _: engine.refresh_session(tokens.refresh_token.value))
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:3]
        successors = {r.refresh_token.value for r in results}
        assert len(successors) == 1
        assert engine.get_session(results[0].access_token.value).new_access_token is not None
        time.sleep(1.1)
        with pytest.raises(TokenTheftDetectedError):
            engine.refresh_session(tokens.refresh_token.value)
