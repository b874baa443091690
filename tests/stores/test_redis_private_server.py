"""Redis ``FLUSHALL``, real memory eviction and restarts, on a redis-server this module starts.

A private server (Debian's ``redis-server`` on a free port, no persistence) may be flushed
and squeezed without touching the shared one. Eviction is real: ``maxmemory`` a little above
the server's baseline with the ``volatile-lru`` policy the store docs recommend, so Redis
itself drops session hashes (the only keys with a TTL) while logins continue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.drivers import run_in_threads
from support.redis_server import RedisServer, private_redis_server

from sessionward import Config, SessionWard
from sessionward.errors import (
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from sessionward.stores.redis import AsyncRedisStore, RedisStore


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis_server(tmp_path) as started:
        yield started


@pytest.fixture
def private_redis(server: RedisServer) -> Iterator[redis.Redis]:
    with server.client() as client:
        yield client


def _ward(url: str) -> SessionWard:
    return SessionWard(
        Config(
            store=url,
            access_token_algorithm="HS256",
            refresh_token_reuse_grace_period=0,
            cookie_secure=False,
        )
    )


def test_flushall_logs_everyone_out_and_never_reports_theft(
    server: RedisServer, private_redis: redis.Redis
) -> None:
    with _ward(server.url) as ward:
        rotated = ward.create_new_session("alice")
        child = ward.refresh_session(rotated.refresh_token.value)
        ward.get_session(child.access_token.value)  # commits the rotation: the parent is now stale
        pending = ward.create_new_session("bob")
        pending_child = ward.refresh_session(pending.refresh_token.value)  # not yet committed
        private_redis.flushall()
        for tokens in (rotated, child, pending, pending_child):
            with pytest.raises(UnauthorizedError) as caught:
                ward.refresh_session(tokens.refresh_token.value)
            assert not isinstance(caught.value, TokenTheftDetectedError)
        with pytest.raises(UnauthorizedError):
            ward.get_session(pending_child.access_token.value)  # promotion finds no row
        ward.jwks()  # key sync: the signing keys were flushed too, new ones are written
        with pytest.raises(TryRefreshTokenError):
            ward.get_session(rotated.access_token.value)
        fresh = ward.create_new_session("carol")  # logins work at once
        renewed = ward.refresh_session(fresh.refresh_token.value)
        assert ward.get_session(renewed.access_token.value).user_id == "carol"


def test_evicted_sessions_are_unauthorised_never_theft(
    server: RedisServer, private_redis: redis.Redis
) -> None:
    with _ward(server.url) as ward:
        ward.create_new_session("warm-up")  # keys, schema version: the keys without a TTL
        baseline = int(private_redis.info("memory")["used_memory"])
        private_redis.config_set("maxmemory-policy", "volatile-lru")
        private_redis.config_set("maxmemory", str(baseline + 1_500_000))
        data = {"blob": "x" * 1_000}
        sessions = []
        for index in range(6_000):
            sessions.append(ward.create_new_session(f"user{index % 50}", {"n": index}, data))
            if index % 500 == 499 and int(private_redis.info("stats")["evicted_keys"]) > 200:
                break
        assert int(private_redis.info("stats")["evicted_keys"]) > 200, "maxmemory was never reached"

        unauthorised = refreshed = 0
        for tokens in sessions:
            try:
                child = ward.refresh_session(tokens.refresh_token.value)
            except TokenTheftDetectedError:  # pragma: no cover - the failure this test exists for
                pytest.fail("an evicted session was reported as theft")
            except UnauthorizedError:
                unauthorised += 1
                continue
            refreshed += 1
            assert child.handle == tokens.handle
        assert unauthorised > 0 and refreshed > 0
        assert unauthorised <= int(private_redis.info("stats")["evicted_keys"])  # only evicted ones
        # The keys without a TTL survived: tokens of live sessions still verify.
        alive = [t for t in sessions if private_redis.exists(f"sessionward:session:{t.handle}")]
        survivor = alive[-1]
        assert ward.get_session(survivor.access_token.value).handle == survivor.handle


# -- restart: every pooled connection is stale afterwards ------------------------------------

POOLED = 8  # connections each store holds open when Redis restarts


def _restart(server: RedisServer) -> None:
    server.stop()
    server.start()
    server.wait_ready()


def test_sync_store_restart_costs_no_failed_request(server: RedisServer) -> None:
    store = RedisStore(server.url)
    try:
        store.migrate()
        run_in_threads([lambda: store.get_session("absent")] * POOLED)  # opens POOLED connections
        _restart(server)
        results = run_in_threads([lambda: store.get_session("absent")] * POOLED)
        assert [r for r in results if r is not None] == []
    finally:
        store.close()


def test_async_store_restart_costs_no_failed_request(server: RedisServer) -> None:
    async def main() -> list[object]:
        store = AsyncRedisStore(server.url)
        try:
            await store.migrate()
            await asyncio.gather(*(store.get_session("absent") for _ in range(POOLED)))
            await asyncio.to_thread(_restart, server)
            return await asyncio.gather(
                *(store.get_session("absent") for _ in range(POOLED)), return_exceptions=True
            )
        finally:
            await store.close()

    assert [r for r in asyncio.run(main()) if r is not None] == []


# -- an exhausted pool: every connection held by an operation Redis does not answer yet -------

PAUSE_MS = 1500
POOL_TIMEOUT = 0.3


def _pool_url(server: RedisServer) -> str:
    return f"{server.url}?max_connections=1&pool_timeout={POOL_TIMEOUT}"


def _one_waited_and_failed(outcomes: list[tuple[float, object]], started: float) -> None:
    """Of two calls racing for one connection, the loser failed after ``pool_timeout``,
    naming the cause, while the winner still held the connection."""
    (failed_at, error), (succeeded_at, result) = sorted(
        outcomes, key=lambda outcome: not isinstance(outcome[1], Exception)
    )
    assert isinstance(error, StorageUnavailableError), error
    assert "pool_timeout" in str(error) and "max_connections=1" in str(error), str(error)
    assert result is None
    assert started + POOL_TIMEOUT <= failed_at < succeeded_at


def test_exhausted_pool_is_unavailable_after_pool_timeout(
    server: RedisServer, private_redis: redis.Redis
) -> None:
    store = RedisStore(_pool_url(server))
    try:
        store.migrate()

        def call() -> tuple[float, object]:
            try:
                result: object = store.get_session("absent")
            except StorageUnavailableError as exc:
                result = exc
            return time.monotonic(), result

        private_redis.client_pause(PAUSE_MS, all=False)  # scripts wait; the first call holds on
        started = time.monotonic()
        _one_waited_and_failed(run_in_threads([call, call]), started)
    finally:
        store.close()


def test_async_exhausted_pool_is_unavailable_after_pool_timeout(
    server: RedisServer, private_redis: redis.Redis
) -> None:
    async def call(store: AsyncRedisStore) -> tuple[float, object]:
        try:
            result: object = await store.get_session("absent")
        except StorageUnavailableError as exc:
            result = exc
        return time.monotonic(), result

    async def main() -> tuple[list[tuple[float, object]], float]:
        store = AsyncRedisStore(_pool_url(server))
        try:
            await store.migrate()
            private_redis.client_pause(PAUSE_MS, all=False)
            started = time.monotonic()
            return list(await asyncio.gather(call(store), call(store))), started
        finally:
            await store.close()

    outcomes, started = asyncio.run(main())
    _one_waited_and_failed(outcomes, started)
