"""RedisStore and AsyncRedisStore on the real Redis (127.0.0.1:6379, or SESSIONWARD_TEST_REDIS_URL).

Every test uses its own key prefix in database 11 and deletes its keys afterwards. The
flush tests run ``FLUSHDB`` on database 12, which only this module uses (never ``FLUSHALL``:
other processes may share the server). Faults are injected with a TCP proxy the test can
cut, stall and restore, and with a closed port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from support.backends import REDIS_URL
from support.drivers import run_in_threads
from support.rows import make_row as shared_make_row
from support.rows import now_ms
from support.services import skip_or_fail

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.errors import (
    ConfigError,
    GeneralError,
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from sessionward.stores.base import CorruptSessionRowError, Promoted, Promotion, SessionRow, StoredKey
from sessionward.stores.redis import (
    DEFAULT_PREFIX,
    LAYOUT_VERSION,
    AsyncRedisStore,
    RedisStore,
    parse_redis_url,
)
from sessionward.stores.urls import open_async_store, open_store

_BASE = urlsplit(REDIS_URL)
SERVER = urlunsplit((_BASE.scheme, _BASE.netloc, "", "", ""))  # the database is chosen below
DB = 11
FLUSH_DB = 12


def _server_error() -> str | None:
    try:
        with redis.Redis.from_url(f"{SERVER}/{DB}", socket_connect_timeout=1, socket_timeout=1) as probe:
            probe.ping()
    except redis.RedisError as exc:
        return f"Redis not reachable at {SERVER}: {exc}"
    return None


_PROBE: list[str | None] = []


@pytest.fixture
def server(request: pytest.FixtureRequest) -> str:
    """The Redis server URL (no database), or skip/fail when it is absent."""
    if not _PROBE:
        _PROBE.append(_server_error())
    if _PROBE[0] is not None:
        skip_or_fail(_PROBE[0])
    return SERVER


@pytest.fixture
def raw(server: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(f"{server}/{DB}", decode_responses=True) as client:
        yield client


@pytest.fixture
def prefix(raw: redis.Redis) -> Iterator[str]:
    value = f"swtest:{uuid.uuid4().hex[:12]}:"
    yield value
    keys = list(raw.scan_iter(match=f"{value}*", count=1000))
    if keys:
        raw.delete(*keys)


@pytest.fixture
def url(server: str, prefix: str) -> str:
    return f"{server}/{DB}?prefix={prefix}"


class Driver:
    """Calls a sync store directly, or an async one on a private event loop."""

    def __init__(self, store: Any, runner: asyncio.Runner | None) -> None:
        self.store = store
        self.runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)
        runner = self.runner
        if runner is None:
            return method  # type: ignore[no-any-return]
        return lambda *args: runner.run(method(*args))


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest, url: str) -> Iterator[Driver]:
    if request.param == "sync":
        sync_store = RedisStore(url)
        sync_store.migrate()
        yield Driver(sync_store, None)
        sync_store.close()
        return
    with asyncio.Runner() as runner:
        async_store = AsyncRedisStore(url)
        runner.run(async_store.migrate())
        yield Driver(async_store, runner)
        runner.run(async_store.close())


def make_row(
    handle: str = "h1",
    user_id: str = "alice",
    hash2: str = "hash-a",
    created: int | None = None,
    expires: int | None = None,
) -> SessionRow:
    """A row living a minute."""
    return shared_make_row(handle, user_id, hash2, created, expires, lifetime_ms=60_000)


# -- schema -------------------------------------------------------------------------------------


def test_migrate_records_the_layout_version(url: str, raw: redis.Redis, prefix: str) -> None:
    store = RedisStore(url)
    try:
        with pytest.raises(GeneralError, match="sessionward migrate"):
            store.check_schema()
        assert store.migrate() == LAYOUT_VERSION
        assert store.migrate() == LAYOUT_VERSION
        store.check_schema()
        assert raw.get(f"{prefix}schema_version") == str(LAYOUT_VERSION)
        raw.set(f"{prefix}schema_version", "0")
        with pytest.raises(GeneralError, match="version 0"):
            store.check_schema()
    finally:
        store.close()


def test_async_check_schema_and_migrate(url: str) -> None:
    async def main() -> None:
        store = AsyncRedisStore(url)
        with pytest.raises(GeneralError, match="sessionward migrate"):
            await store.check_schema()
        assert await store.migrate() == LAYOUT_VERSION
        await store.check_schema()
        await store.close()

    asyncio.run(main())


# -- sessions -----------------------------------------------------------------------------------


def test_insert_and_get_round_trip(store: Driver) -> None:
    row = make_row()
    store.insert_session(row)
    assert store.get_session("h1") == row
    assert store.get_session("missing") is None
    rotated = SessionRow("h2", "bob", "x", "prev", 123, {}, {}, row.created_at_time, row.expires_at)
    store.insert_session(rotated)
    assert store.get_session("h2") == rotated


def test_insert_refuses_an_existing_handle_but_tolerates_a_retry(store: Driver) -> None:
    row = make_row()
    store.insert_session(row)
    store.insert_session(row)  # the same row again: a retry whose reply was lost
    with pytest.raises(GeneralError, match="already exists"):
        store.insert_session(make_row(hash2="other"))
    assert store.get_session("h1") == row


def _promotion(expected: str, new: str, now: int, expires_at: int, handle: str = "h1") -> Promotion:
    return Promotion(handle, "alice", expected, new, now, expires_at)


def test_session_hash_ttl_follows_expiry(store: Driver, raw: redis.Redis, prefix: str) -> None:
    key = f"{prefix}session:h1"
    store.insert_session(make_row(created=1_000, expires=31_000))  # fake clock: a duration
    assert 29_000 < raw.pttl(key) <= 30_000
    assert store.promote_returning(_promotion("hash-a", "hash-b", 5_000, 125_000)).changed
    assert 119_000 < raw.pttl(key) <= 120_000
    assert store.update_session_data("h1", {"k": 1})
    assert 119_000 < raw.pttl(key) <= 120_000  # updates keep the TTL
    for name in ("user:alice", "expiry", "schema_version"):
        assert raw.pttl(f"{prefix}{name}") == -1  # only session hashes can expire or be evicted


def test_session_hash_ttl_follows_the_rows_own_lifetime(store: Driver, raw: redis.Redis, prefix: str) -> None:
    key = f"{prefix}session:h1"
    row = dataclasses.replace(make_row(created=1_000, expires=11_000), refresh_validity=10_000)
    store.insert_session(row)
    assert 9_000 < raw.pttl(key) <= 10_000
    promoted = store.promote_returning(_promotion("hash-a", "hash-b", 5_000, 125_000))
    assert promoted.changed and promoted.row.expires_at == 15_000  # now + its own 10 s
    assert 9_000 < raw.pttl(key) <= 10_000
    assert raw.hget(key, "expires_at") == "15000"
    assert raw.zscore(f"{prefix}expiry", "2:h1alice") == 15_000
    assert store.update_auth_time("h1", 6_000) is True
    assert 9_000 < raw.pttl(key) <= 10_000  # the update keeps the TTL
    assert raw.hmget(key, ["auth_time", "last_active_at"]) == ["6000", "6000"]


def test_metadata_fields_in_the_hash(store: Driver, raw: redis.Redis, prefix: str) -> None:
    key = f"{prefix}session:h1"
    plain = make_row()
    store.insert_session(plain)
    # Only the fields that hold a value are written; persistent always is.
    assert raw.hget(key, "persistent") == "1"
    for name in ("last_active_at", "auth_time", "refresh_validity", "created_ip", "last_user_agent"):
        assert not raw.hexists(key, name)
    row = dataclasses.replace(
        make_row("h2"), persistent=False, created_ip="", created_user_agent="UA ü", auth_time=7
    )
    store.insert_session(row)
    assert raw.hget(f"{prefix}session:h2", "persistent") == "0"
    assert raw.hget(f"{prefix}session:h2", "created_ip") == ""
    assert store.get_session("h2") == row
    # A hash written by layout version 1 (no metadata fields) reads as the defaults.
    raw.hdel(key, "persistent")
    assert store.get_session("h1") == plain
    assert store.get_sessions_for_user("alice", 0) != []
    raw.hset(key, "persistent", "yes")
    with pytest.raises(CorruptSessionRowError):
        store.get_session("h1")
    raw.hset(key, mapping={"persistent": "1", "auth_time": "soon"})
    with pytest.raises(CorruptSessionRowError):
        store.get_session("h1")


def test_layout_1_is_migrated_to_2(url: str, raw: redis.Redis, prefix: str) -> None:
    assert LAYOUT_VERSION == 2
    raw.set(f"{prefix}schema_version", "1")
    store = RedisStore(url)
    try:
        with pytest.raises(GeneralError, match=r"version 1, sessionward needs 2.*sessionward migrate"):
            store.check_schema()
        assert store.migrate() == 2
        store.check_schema()
        assert raw.get(f"{prefix}schema_version") == "2"
    finally:
        store.close()


def test_delete_other_sessions_prunes_stale_members(store: Driver, raw: redis.Redis, prefix: str) -> None:
    for handle in ("a1", "a2", "gone"):
        store.insert_session(make_row(handle))
    raw.delete(f"{prefix}session:gone")  # evicted, or expired by Redis
    raw.sadd(f"{prefix}user:alice", "foreign")
    store.insert_session(make_row("foreign", user_id="bob"))  # a member whose hash is bob's
    assert store.delete_other_sessions("alice", "a2") == ["a1"]
    assert raw.smembers(f"{prefix}user:alice") == {"a2", "foreign"}
    assert store.get_session("foreign") is not None  # never another user's session
    assert raw.exists(f"{prefix}session:a2") and not raw.exists(f"{prefix}session:a1")


def test_promote_is_a_compare_and_set(store: Driver) -> None:
    row = make_row()
    store.insert_session(row)
    assert not store.promote_returning(_promotion("wrong", "hash-b", 2_000, 99_000)).changed
    assert store.get_session("h1") == row
    assert store.promote_returning(_promotion("hash-a", "hash-b", 2_000, 99_000)).changed
    promoted = store.get_session("h1")
    assert (promoted.refresh_token_hash_2, promoted.prev_refresh_token_hash_2) == ("hash-b", "hash-a")
    assert (promoted.rotated_at, promoted.expires_at) == (2_000, 99_000)
    assert promoted.session_data == row.session_data
    assert not store.promote_returning(_promotion("hash-a", "hash-c", 3_000, 99_000)).changed
    assert store.promote_returning(_promotion("hash-a", "hash-b", 2_000, 99_000, handle="missing")) == (
        False,
        None,
    )
    assert store.get_session("missing") is None


def test_concurrent_promotes_have_one_winner(url: str) -> None:
    store = RedisStore(url)
    try:
        store.migrate()
        store.insert_session(make_row())
        with ThreadPoolExecutor(16) as pool:
            results = list(
                pool.map(
                    lambda i: (
                        store.promote_returning(_promotion("hash-a", f"new-{i}", 2_000, 99_000)).changed
                    ),
                    range(64),
                )
            )
        assert results.count(True) == 1
        winner = results.index(True)
        row = store.get_session("h1")
        assert row is not None
        assert row.refresh_token_hash_2 == f"new-{winner}"
    finally:
        store.close()


def test_delete_sessions_returns_those_that_existed(store: Driver, raw: redis.Redis, prefix: str) -> None:
    for handle in ("h1", "h2", "h3"):
        store.insert_session(make_row(handle))
    assert store.delete_sessions([]) == []
    assert sorted(store.delete_sessions(["h1", "missing", "h2", "h1"])) == ["h1", "h2"]
    assert store.get_session("h1") is None
    assert store.get_session("h3") is not None
    assert raw.smembers(f"{prefix}user:alice") == {"h3"}
    assert raw.zcard(f"{prefix}expiry") == 1
    assert store.delete_sessions(["h1"]) == []


def test_delete_sessions_for_user(store: Driver, raw: redis.Redis, prefix: str) -> None:
    base = now_ms()
    store.insert_session(make_row("b", created=base + 2))
    store.insert_session(make_row("a", created=base + 1))
    store.insert_session(make_row("c", user_id="bob", created=base))
    assert store.delete_sessions_for_user("alice") == ["a", "b"]  # by creation time
    assert store.delete_sessions_for_user("alice") == []
    assert store.get_session("c") is not None
    assert not raw.exists(f"{prefix}user:alice")
    assert raw.zcard(f"{prefix}expiry") == 1


def test_handles_for_user_filters_expired_and_prunes_stale_members(
    store: Driver, raw: redis.Redis, prefix: str
) -> None:
    base = now_ms()
    store.insert_session(make_row("late", created=base + 5, expires=base + 90_000))
    store.insert_session(make_row("early", created=base, expires=base + 90_000))
    # Expired by the caller's clock, yet its hash lives on in Redis (TTL = expires - created).
    store.insert_session(make_row("old", created=base - 60_000, expires=base - 1))
    store.insert_session(make_row("gone", created=base, expires=base + 90_000))
    store.insert_session(make_row("other", user_id="bob"))
    raw.delete(f"{prefix}session:gone")  # evicted
    assert store.get_handles_for_user("alice", base) == ["early", "late"]
    assert store.get_handles_for_user("alice", base + 90_001) == []
    assert store.get_handles_for_user("nobody", base) == []
    assert "gone" not in raw.smembers(f"{prefix}user:alice")
    assert store.delete_sessions_for_user("alice") == ["old", "early", "late"]


def test_updates_need_an_existing_session(store: Driver) -> None:
    store.insert_session(make_row())
    assert store.update_session_data("h1", {"new": ["data", "ü"]})
    assert store.update_jwt_payload("h1", {"role": "user"})
    row = store.get_session("h1")
    assert row.session_data == {"new": ["data", "ü"]}
    assert row.jwt_user_payload == {"role": "user"}
    assert not store.update_session_data("missing", {"a": 1})
    assert not store.update_jwt_payload("missing", {"a": 1})
    assert store.get_session("missing") is None


def test_delete_expired_sessions(store: Driver, raw: redis.Redis, prefix: str) -> None:
    base = now_ms()
    store.insert_session(make_row("dead", created=base - 100_000, expires=base - 1))
    store.insert_session(make_row("edge", created=base - 100_000, expires=base))
    store.insert_session(make_row("alive", created=base - 100, expires=base + 60_000))
    # TTL = expires - created = 30 ms: Redis expires the hash itself before the sweep.
    store.insert_session(make_row("ttl-gone", user_id="bob", created=base - 60, expires=base - 30))
    store.insert_session(make_row("evicted", user_id="carol", created=base, expires=base + 60_000))
    raw.delete(f"{prefix}session:evicted")
    time.sleep(0.1)
    assert not raw.exists(f"{prefix}session:ttl-gone")
    # "dead", and "ttl-gone" whose hash Redis already took: every expired session indexed.
    assert sorted(store.delete_expired_sessions(base)) == [("dead", "alice"), ("ttl-gone", "bob")]
    assert store.get_session("dead") is None
    assert store.get_session("edge") is not None
    assert store.get_handles_for_user("alice", 0) == ["edge", "alive"]
    assert not raw.exists(f"{prefix}user:bob")  # the sweep pruned the expired hash's user set
    assert raw.smembers(f"{prefix}user:carol") == {"evicted"}  # pruned once past its expiry
    assert sorted(store.delete_expired_sessions(base + 60_001)) == [
        ("alive", "alice"),
        ("edge", "alice"),
        ("evicted", "carol"),  # its expiry reached: reported though the hash was evicted
    ]
    assert store.delete_expired_sessions(base + 60_001) == []
    assert raw.zcard(f"{prefix}expiry") == 0
    assert not raw.exists(f"{prefix}user:alice")
    assert not raw.exists(f"{prefix}user:carol")


def test_delete_expired_sessions_in_batches(url: str, raw: redis.Redis, prefix: str) -> None:
    store = RedisStore(url)
    try:
        store.migrate()
        for i in range(1_203):
            store.insert_session(make_row(f"h{i}", user_id=f"u{i % 7}", created=1_000, expires=5_000))
        store.insert_session(make_row("keep", created=1_000, expires=99_000))
        removed = store.delete_expired_sessions(6_000)
        assert sorted(removed) == sorted((f"h{i}", f"u{i % 7}") for i in range(1_203))
        assert store.get_handles_for_user("alice", 0) == ["keep"]
        assert raw.zcard(f"{prefix}expiry") == 1
    finally:
        store.close()


# -- keys ---------------------------------------------------------------------------------------


def test_keys(store: Driver, raw: redis.Redis, prefix: str) -> None:
    first = StoredKey("access/b", "v1", 10)
    assert store.insert_key_if_absent(first) == first
    assert store.insert_key_if_absent(StoredKey("access/b", "v2", 20)) == first
    store.insert_key_if_absent(StoredKey("access/a", "va", 5))
    store.insert_key_if_absent(StoredKey("refresh_token_key", "r", 1))
    store.insert_key_if_absent(StoredKey("accessory", "x", 1))
    assert [k.name for k in store.load_keys("access/")] == ["access/a", "access/b"]
    assert [k.name for k in store.load_keys("access")] == ["access/a", "access/b", "accessory"]
    assert len(store.load_keys("")) == 4
    assert store.load_keys("nothing") == []
    store.delete_keys(["access/a", "missing"])
    store.delete_keys([])
    assert store.load_keys("access/") == [first]
    raw.delete(f"{prefix}key:accessory")  # lost behind the index's back
    assert [k.name for k in store.load_keys("access")] == ["access/b"]
    assert raw.zrange(f"{prefix}keys", 0, -1) == ["access/b", "refresh_token_key"]


def test_concurrent_key_inserts_agree_on_the_winner(url: str) -> None:
    store = RedisStore(url)
    try:
        with ThreadPoolExecutor(8) as pool:
            stored = list(
                pool.map(lambda i: store.insert_key_if_absent(StoredKey("k", f"v{i}", i)), range(32))
            )
        assert len(set(stored)) == 1
        assert store.load_keys("k") == [stored[0]]
    finally:
        store.close()


def test_prefixes_isolate_stores(server: str, raw: redis.Redis) -> None:
    one, two = RedisStore(f"{server}/{DB}?prefix=swtest-a-{uuid.uuid4().hex}:"), None
    try:
        two = RedisStore(f"{server}/{DB}?prefix=swtest-b-{uuid.uuid4().hex}:")
        one.insert_session(make_row())
        one.insert_key_if_absent(StoredKey("k", "v", 1))
        assert two.get_session("h1") is None
        assert two.load_keys("") == []
        assert two.delete_sessions_for_user("alice") == []
        assert one.get_session("h1") is not None
    finally:
        for opened in (one, two):
            if opened is not None:
                keys = list(raw.scan_iter(match=f"{opened.prefix}*"))
                if keys:
                    raw.delete(*keys)
                opened.close()


def test_closed_store_refuses_work(url: str) -> None:
    store = RedisStore(url)
    store.close()
    store.close()
    with pytest.raises(GeneralError, match="closed"):
        store.get_session("h1")

    async def main() -> None:
        async_store = AsyncRedisStore(url)
        await async_store.get_session("h1")
        await async_store.close()
        with pytest.raises(GeneralError, match="closed"):
            await async_store.get_session("h1")

    asyncio.run(main())


def test_async_store_survives_successive_event_loops(url: str) -> None:
    store = AsyncRedisStore(url)
    asyncio.run(store.migrate())
    asyncio.run(store.insert_session(make_row()))
    assert asyncio.run(store.get_session("h1")) is not None
    asyncio.run(store.close())


def test_async_store_serves_concurrent_tasks(url: str) -> None:
    async def main() -> list[Promoted]:
        store = AsyncRedisStore(url)
        await store.insert_session(make_row())
        try:
            return await asyncio.gather(
                *(store.promote_returning(_promotion("hash-a", f"n{i}", 2_000, 99_000)) for i in range(50))
            )
        finally:
            await store.close()

    assert [promoted.changed for promoted in asyncio.run(main())].count(True) == 1


# -- URLs ---------------------------------------------------------------------------------------


def test_url_parsing() -> None:
    settings = parse_redis_url("redis://127.0.0.1:6379/3")
    assert (settings.prefix, settings.timeout, settings.connect_timeout) == (DEFAULT_PREFIX, 5.0, 5.0)
    assert (settings.pool_timeout, settings.max_connections) == (5.0, 50)
    assert settings.client_url == "redis://127.0.0.1:6379/3"
    custom = parse_redis_url(
        "rediss://user:pw@example.com:6380/0?prefix=myapp:&timeout=0.5&connect_timeout=2"
        "&max_connections=20&pool_timeout=0.25&ssl_cert_reqs=none"
    )
    assert (custom.prefix, custom.timeout, custom.connect_timeout) == ("myapp:", 0.5, 2.0)
    assert (custom.max_connections, custom.pool_timeout) == (20, 0.25)
    assert custom.client_url == "rediss://user:pw@example.com:6380/0?ssl_cert_reqs=none"
    assert parse_redis_url("redis://h?prefix=a%20b").prefix == "a b"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("redis://h/x", "database must be a number"),
        ("redis://h?prefix=", "prefix"),
        ("redis://h?timeout=0", "timeout"),
        ("redis://h?timeout=abc", "timeout"),
        ("redis://h?max_connections=-1", "max_connections"),
        ("redis://h?pool_timeout=0", "pool_timeout"),
        ("redis://h?pool_timeout=soon", "pool_timeout"),
        ("redis://h?pool_timeout=601", "pool_timeout"),
        ("redis://h?ssl_cert_reqs=none", "unknown redis URL parameter"),
        ("redis://h?socket_timeout=1", "unknown redis URL parameter"),
        ("redis:///0", "expected redis://"),
        ("redis://h:99999/0", "invalid redis URL"),
    ],
)
def test_bad_urls_are_config_errors(bad: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_redis_url(bad)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_url("redis://user:hunter2@h:6379/x")
    assert "hunter2" not in str(caught.value)


def test_store_selection_by_url(url: str) -> None:
    sync_store = open_store(url)
    async_store = open_async_store(url.replace("redis://", "REDIS://", 1))
    try:
        assert isinstance(sync_store, RedisStore)
        assert isinstance(async_store, AsyncRedisStore)
    finally:
        sync_store.close()
        asyncio.run(async_store.close())


# -- the engine on Redis ------------------------------------------------------------------------


def engine_config(url: str, **options: Any) -> Config:
    return Config(store=url, refresh_token_reuse_grace_period=0, **options)


def test_engine_smoke(url: str) -> None:
    with SessionWard(engine_config(url)) as ward:
        tokens = ward.create_new_session("alice", {"role": "admin"}, {"cart": [1]})
        assert ward.get_session(tokens.access_token.value).user_id == "alice"
        child = ward.refresh_session(tokens.refresh_token.value)
        again = ward.refresh_session(tokens.refresh_token.value)
        assert again.refresh_token.value == child.refresh_token.value  # idempotent successor
        verified = ward.get_session(child.access_token.value)  # promotes
        assert verified.new_access_token is not None
        assert ward.get_session_data(tokens.handle) == {"cart": [1]}
        ward.update_jwt_payload(tokens.handle, {"role": "user"})
        assert ward.get_all_session_handles_for_user("alice") == [tokens.handle]
        with pytest.raises(TokenTheftDetectedError):
            ward.refresh_session(tokens.refresh_token.value)  # a superseded token
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(child.refresh_token.value)  # the session is gone
        assert ward.get_all_session_handles_for_user("alice") == []


def test_async_engine_smoke(url: str) -> None:
    async def main() -> None:
        ward = AsyncSessionWard(engine_config(url))
        try:
            tokens = await ward.create_new_session("alice", {"role": "admin"})
            child = await ward.refresh_session(tokens.refresh_token.value)
            grandchild = await ward.refresh_session(child.refresh_token.value)  # promotes child
            assert grandchild.handle == tokens.handle
            with pytest.raises(TokenTheftDetectedError):
                await ward.refresh_session(tokens.refresh_token.value)
            with pytest.raises(UnauthorizedError):
                await ward.get_session(grandchild.access_token.value)  # promotion of a gone row
            other = await ward.create_new_session("bob")
            assert await ward.revoke_all_sessions_for_user("bob") == [other.handle]
        finally:
            await ward.aclose()

    asyncio.run(main())


def test_concurrent_refreshes_agree_on_one_successor(url: str) -> None:
    with SessionWard(engine_config(url)) as ward:
        tokens = ward.create_new_session("alice")
        current = ward.refresh_session(tokens.refresh_token.value).refresh_token.value
        for _ in range(3):
            with ThreadPoolExecutor(16) as pool:
                results = list(pool.map(ward.refresh_session, [current] * 32))
            successors = {r.refresh_token.value for r in results}
            assert len(successors) == 1
            current = successors.pop()


CROWD = 150  # concurrent operations on one engine, far more than its pooled connections


def test_more_concurrent_refreshes_than_connections_all_succeed(url: str) -> None:
    with SessionWard(engine_config(f"{url}&max_connections=4")) as ward:
        tokens = [ward.create_new_session(f"user{i}") for i in range(CROWD)]
        results = run_in_threads([partial(ward.refresh_session, t.refresh_token.value) for t in tokens])
    assert [r for r in results if isinstance(r, Exception)] == []


def test_more_concurrent_async_refreshes_than_connections_all_succeed(url: str) -> None:
    async def main() -> list[Any]:
        async with AsyncSessionWard(engine_config(f"{url}&max_connections=4")) as ward:
            tokens = [await ward.create_new_session(f"user{i}") for i in range(CROWD)]
            return await asyncio.gather(
                *(ward.refresh_session(t.refresh_token.value) for t in tokens), return_exceptions=True
            )

    assert [r for r in asyncio.run(main()) if isinstance(r, Exception)] == []


def test_missing_session_is_unauthorised_never_theft(url: str, raw: redis.Redis, prefix: str) -> None:
    with SessionWard(engine_config(url)) as ward:
        # Evicted: the hash is deleted behind the engine's back.
        evicted = ward.create_new_session("alice")
        child = ward.refresh_session(evicted.refresh_token.value)
        raw.delete(f"{prefix}session:{evicted.handle}")
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(evicted.refresh_token.value)
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(child.refresh_token.value)
        with pytest.raises(UnauthorizedError):
            ward.get_session(child.access_token.value)  # promotion finds no row
        # Expired in Redis: a short TTL runs out.
        expired = ward.create_new_session("alice")
        later = ward.refresh_session(expired.refresh_token.value)
        raw.pexpire(f"{prefix}session:{expired.handle}", 30)
        time.sleep(0.1)
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(later.refresh_token.value)
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(expired.refresh_token.value)
        assert ward.get_all_session_handles_for_user("alice") == []


# -- flush --------------------------------------------------------------------------------------


@pytest.fixture
def flush_url(server: str) -> Iterator[str]:
    with redis.Redis.from_url(f"{server}/{FLUSH_DB}") as client:
        client.flushdb()
        yield f"{server}/{FLUSH_DB}?prefix=swflush:"
        client.flushdb()


def _flush(server: str) -> None:
    with redis.Redis.from_url(f"{server}/{FLUSH_DB}") as client:
        client.flushdb()


def test_flushdb_logs_everyone_out_without_theft(server: str, flush_url: str) -> None:
    with SessionWard(engine_config(flush_url)) as ward:
        tokens = ward.create_new_session("alice")
        child = ward.refresh_session(tokens.refresh_token.value)
        plain = ward.create_new_session("bob")
        _flush(server)
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(tokens.refresh_token.value)
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(child.refresh_token.value)
        with pytest.raises(UnauthorizedError):
            ward.get_session(child.access_token.value)
        # A plain access token needs no store: valid from cached keys until the next key sync.
        assert ward.get_session(plain.access_token.value).user_id == "bob"
        ward.jwks()  # a key sync: the signing keys are gone, so new ones are created
        with pytest.raises(TryRefreshTokenError):
            ward.get_session(plain.access_token.value)
        with pytest.raises(UnauthorizedError):
            ward.refresh_session(plain.refresh_token.value)
        fresh = ward.create_new_session("carol")  # the engine keeps working
        assert ward.get_session(fresh.access_token.value).user_id == "carol"
        assert ward.refresh_session(fresh.refresh_token.value).handle == fresh.handle

    _flush(server)
    with (
        pytest.raises(GeneralError, match="sessionward migrate"),
        SessionWard(engine_config(flush_url, auto_migrate=False)) as strict,
    ):
        strict.create_new_session("dave")


def test_new_engine_after_flush_rejects_old_tokens_as_unauthorised(server: str, flush_url: str) -> None:
    with SessionWard(engine_config(flush_url)) as before:
        tokens = before.create_new_session("alice")
    _flush(server)
    with SessionWard(engine_config(flush_url)) as after:  # a new refresh-token key is made
        with pytest.raises(UnauthorizedError):
            after.refresh_session(tokens.refresh_token.value)
        with pytest.raises(TryRefreshTokenError):
            after.get_session(tokens.access_token.value)


def test_async_flushdb(server: str, flush_url: str) -> None:
    async def main() -> None:
        ward = AsyncSessionWard(engine_config(flush_url))
        try:
            tokens = await ward.create_new_session("alice")
            child = await ward.refresh_session(tokens.refresh_token.value)
            _flush(server)
            with pytest.raises(UnauthorizedError):
                await ward.refresh_session(child.refresh_token.value)
            with pytest.raises(UnauthorizedError):
                await ward.get_session(child.access_token.value)
            await ward.jwks()
            with pytest.raises(TryRefreshTokenError):
                await ward.get_session(tokens.access_token.value)
            fresh = await ward.create_new_session("carol")
            assert (await ward.refresh_session(fresh.refresh_token.value)).handle == fresh.handle
        finally:
            await ward.aclose()

    asyncio.run(main())


# -- Redis down ---------------------------------------------------------------------------------


class Proxy:
    """A TCP proxy to Redis that a test can cut (refuse), stall (black-hole) and restore."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # accept() wakes up to notice close()
        self.closed = False
        self.port: int = self.listener.getsockname()[1]
        self.mode = "open"
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.add(sock)

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self.mode == "cut":
                client.close()
                continue
            self._track(client)
            if self.mode == "stall":
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                self._drop(client)
                continue
            upstream.settimeout(None)
            self._track(upstream)
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        self._drop(source)
        self._drop(target)

    def _drop(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _drop_all(self) -> None:
        with self.lock:
            current = list(self.sockets)
        for sock in current:
            self._drop(sock)

    def cut(self) -> None:
        self.mode = "cut"
        self._drop_all()

    def stall(self) -> None:
        self.mode = "stall"
        self._drop_all()

    def restore(self) -> None:
        self.mode = "open"

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.threads[0].join(timeout=2)  # the accept loop: nothing new after this
        self._drop_all()
        for thread in self.threads:
            thread.join(timeout=2)


@pytest.fixture
def proxy(server: str) -> Iterator[Proxy]:
    parts = urlsplit(server)
    opened = Proxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    yield opened
    opened.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


ALL_OPERATIONS: list[tuple[str, tuple[Any, ...]]] = [
    ("migrate", ()),
    ("check_schema", ()),
    ("insert_session", (make_row(),)),
    ("get_session", ("h1",)),
    ("promote_returning", (Promotion("h1", "alice", "a", "b", 1, 2),)),
    ("delete_sessions", (["h1"],)),
    ("delete_sessions_for_user", ("alice",)),
    ("get_handles_for_user", ("alice", 0)),
    ("update_session_data", ("h1", {})),
    ("update_jwt_payload", ("h1", {})),
    ("delete_expired_sessions", (0,)),
    ("load_keys", ("",)),
    ("insert_key_if_absent", (StoredKey("k", "v", 1),)),
    ("delete_keys", (["k"],)),
]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_operation_on_a_closed_port_is_unavailable(kind: str) -> None:
    target = f"redis://127.0.0.1:{closed_port()}/0?connect_timeout=1"
    if kind == "sync":
        store = RedisStore(target)
        for name, args in ALL_OPERATIONS:
            with pytest.raises(StorageUnavailableError):
                getattr(store, name)(*args)
        store.close()
        return

    async def main() -> None:
        async_store = AsyncRedisStore(target)
        for name, args in ALL_OPERATIONS:
            with pytest.raises(StorageUnavailableError):
                await getattr(async_store, name)(*args)
        await async_store.close()

    asyncio.run(main())


def test_engine_survives_a_cut_and_recovers(proxy: Proxy, prefix: str) -> None:
    cut_url = f"redis://127.0.0.1:{proxy.port}/{DB}?prefix={prefix}&timeout=1&connect_timeout=1"
    # Without the change feed: a plain access token verifies from memory during the cut.
    # (With it, verification reads the store once the feed is not live: 503, the fail-safe
    # answer; tests/reliability/test_postgres_outage.py covers both.)
    with SessionWard(engine_config(cut_url, change_feed=False)) as ward:
        tokens = ward.create_new_session("alice")
        child = ward.refresh_session(tokens.refresh_token.value)
        proxy.cut()
        assert ward.get_session(tokens.access_token.value).user_id == "alice"  # cached keys
        with pytest.raises(StorageUnavailableError):
            ward.refresh_session(child.refresh_token.value)
        with pytest.raises(StorageUnavailableError):
            ward.get_session(child.access_token.value)  # promotion needs the store
        with pytest.raises(StorageUnavailableError):
            ward.create_new_session("bob")
        proxy.stall()  # connections open but never answered: the socket timeout applies
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError):
            ward.refresh_session(child.refresh_token.value)
        assert time.monotonic() - started < 3
        proxy.restore()
        grandchild = ward.refresh_session(child.refresh_token.value)  # same engine, recovered
        assert ward.get_session(grandchild.access_token.value).user_id == "alice"
        with pytest.raises(TokenTheftDetectedError):
            ward.refresh_session(tokens.refresh_token.value)  # state intact: R0 is superseded


def test_async_engine_survives_a_cut_and_recovers(proxy: Proxy, prefix: str) -> None:
    cut_url = f"redis://127.0.0.1:{proxy.port}/{DB}?prefix={prefix}&timeout=1&connect_timeout=1"

    async def main() -> None:
        ward = AsyncSessionWard(engine_config(cut_url))
        try:
            tokens = await ward.create_new_session("alice")
            proxy.cut()
            with pytest.raises(StorageUnavailableError):
                await ward.refresh_session(tokens.refresh_token.value)
            proxy.stall()
            with pytest.raises(StorageUnavailableError):
                await ward.refresh_session(tokens.refresh_token.value)
            proxy.restore()
            child = await ward.refresh_session(tokens.refresh_token.value)
            assert (await ward.get_session(child.access_token.value)).new_access_token is not None
        finally:
            await ward.aclose()

    asyncio.run(main())
