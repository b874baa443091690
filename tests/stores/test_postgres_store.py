"""PostgresStore and AsyncPostgresStore: what the conformance suite does not cover.

URL parsing, errors, pools (exhaustion, event loops, fork), migrations racing, exact JSON.
Every test that needs the server uses a schema of its own (``support.backends``); the
conformance suite (``test_conformance.py``) runs every store operation and every decision-table
scenario here too, and ``tests/reliability`` cuts the server under load.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.backends import POSTGRES_URL, isolated_store_url
from support.drivers import run_in_threads
from support.rows import make_row

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.errors import ConfigError, GeneralError, StorageUnavailableError
from sessionward.stores.base import Promoted, Promotion, StoredKey
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore, parse_postgres_url
from sessionward.stores.schema import latest_version
from sessionward.stores.urls import open_async_store, open_store


@pytest.fixture
def url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A store URL selecting a fresh schema (dropped afterwards)."""
    with isolated_store_url("postgres", tmp_path) as store_url:
        yield store_url


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url)
    opened.migrate()
    yield opened
    opened.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- URLs -------------------------------------------------------------------------------------


def test_url_parsing_separates_pool_options_from_libpq_parameters() -> None:
    settings = parse_postgres_url(
        "postgresql://app:pw@db.example:6543/sessions?sslmode=require&pool_min=2&pool_max=20"
        "&pool_timeout=2.5&pool_check=false&options=-csearch_path%3Dauth"
    )
    assert (settings.pool_min, settings.pool_max, settings.pool_timeout) == (2, 20, 2.5)
    assert settings.pool_check == "never"
    assert "pool_" not in settings.conninfo
    assert "sslmode=require" in settings.conninfo
    assert settings.connect_kwargs == {"autocommit": True, "connect_timeout": 5}
    assert settings.description == "db.example:6543/sessions"


def test_url_defaults_and_the_short_scheme() -> None:
    settings = parse_postgres_url("postgres://u@h/db?connect_timeout=2")
    assert (settings.pool_min, settings.pool_max, settings.pool_timeout, settings.pool_check) == (
        1,
        10,
        5.0,
        "idle",
    )
    assert "connect_timeout" not in settings.connect_kwargs  # the URL's own value is kept
    assert settings.description == "h:5432/db"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("pool_min=x", "pool_min"),
        ("pool_max=0", "pool_max"),
        ("pool_min=5&pool_max=2", "pool_max"),
        ("pool_timeout=0", "pool_timeout"),
        ("pool_timeout=nan", "pool_timeout"),
        ("pool_check=maybe", "pool_check"),
        ("no_such_libpq_option=1", "invalid postgres URL"),
    ],
)
def test_bad_urls_are_config_errors_naming_the_parameter(query: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_postgres_url(f"postgresql://u:hunter2@h/db?{query}")


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_postgres_url("postgresql://u:hunter2@h/db?no_such_libpq_option=hunter2x")
    assert "hunter2" not in str(caught.value)
    store = PostgresStore(
        f"postgresql://u:hunter2@127.0.0.1:{closed_port()}/db?connect_timeout=1&pool_timeout=1"
    )
    assert "hunter2" not in repr(store)
    with pytest.raises(StorageUnavailableError) as unavailable:
        store.get_session("h1")
    assert "hunter2" not in str(unavailable.value)
    store.close()


def test_store_selection_by_url(url: str) -> None:
    sync_store = open_store(url)
    async_store = open_async_store(url.replace("postgresql://", "postgres://", 1))
    try:
        assert isinstance(sync_store, PostgresStore)
        assert isinstance(async_store, AsyncPostgresStore)
    finally:
        sync_store.close()
        asyncio.run(async_store.close())


# -- schema -----------------------------------------------------------------------------------


def test_concurrent_migrations_apply_each_version_once(url: str) -> None:
    stores = [PostgresStore(url) for _ in range(8)]
    try:
        versions = run_in_threads([store.migrate for store in stores])
        latest = latest_version("postgres")
        assert latest >= 2
        assert versions == [latest] * 8
        with psycopg.connect(url, autocommit=True) as connection:
            rows = connection.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert rows == [(version,) for version in range(1, latest + 1)]
    finally:
        for store in stores:
            store.close()


def test_tables_live_in_the_schema_the_url_selects(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    store.close()
    schema = url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            (schema,),
        ).fetchall()
        json_columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'session_info' AND data_type = 'json' ORDER BY column_name",
            (schema,),
        ).fetchall()
    assert [name for (name,) in tables] == ["key_value", "schema_version", "session_info"]
    assert [name for (name,) in json_columns] == ["jwt_user_payload", "session_data"]


def test_json_is_stored_exactly_as_written(store: PostgresStore) -> None:
    data = {"z": 1, "a": "nul\u0000byte", "big": 1e300, "int": 2**200, "nested": {"b": [None, True]}}
    store.insert_session(make_row("h1", data=data))
    stored = store.get_session("h1")
    assert stored is not None
    assert stored.session_data == data
    assert list(stored.session_data) == ["z", "a", "big", "int", "nested"]  # key order kept


def test_injection_shaped_values_are_plain_data(store: PostgresStore) -> None:
    hostile = "x'); DROP TABLE session_info; --"
    store.insert_session(make_row(handle=hostile, user_id=hostile))
    assert store.get_handles_for_user(hostile, 0) == [hostile]
    assert store.load_keys("%") == []  # LIKE wildcards are not special in prefixes
    store.insert_key_if_absent(StoredKey("a%b", "v", 1))
    assert [key.name for key in store.load_keys("a%")] == ["a%b"]
    assert store.load_keys("a_") == []


# -- failures and pools -----------------------------------------------------------------------

OPERATIONS: list[tuple[str, tuple[Any, ...]]] = [
    ("migrate", ()),
    ("check_schema", ()),
    ("insert_session", (make_row("h1"),)),
    ("get_session", ("h1",)),
    ("promote_returning", (Promotion("h1", "alice", "a", "b", 1, 2),)),
    ("delete_sessions", (["h1"],)),
    ("delete_sessions_for_user", ("alice",)),
    ("get_handles_for_user", ("alice", 0)),
    ("update_session_data", ("h1", {})),
    ("update_jwt_payload", ("h1", {})),
    ("delete_expired_sessions", (0,)),
    ("load_keys", ("k",)),
    ("insert_key_if_absent", (StoredKey("k", "v", 1),)),
    ("delete_keys", (["k"],)),
]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_every_operation_on_a_closed_port_is_unavailable_promptly(driver: str) -> None:
    target = f"postgresql://u@127.0.0.1:{closed_port()}/db?connect_timeout=1&pool_timeout=0.5"
    started = time.monotonic()
    if driver == "sync":
        store = PostgresStore(target)
        for name, args in OPERATIONS:
            with pytest.raises(StorageUnavailableError, match=r"127\.0\.0\.1"):
                getattr(store, name)(*args)
        store.close()
    else:

        async def main() -> None:
            async_store = AsyncPostgresStore(target)
            for name, args in OPERATIONS:
                with pytest.raises(StorageUnavailableError, match=r"127\.0\.0\.1"):
                    await getattr(async_store, name)(*args)
            await async_store.close()

        asyncio.run(main())
    assert time.monotonic() - started < 2 * len(OPERATIONS)  # bounded by pool_timeout, never a hang


def test_an_exhausted_pool_fails_after_pool_timeout_instead_of_hanging(url: str) -> None:
    store = PostgresStore(url + "&pool_min=1&pool_max=1&pool_timeout=0.5")
    store.migrate()
    store.insert_session(make_row("h1"))
    locker = psycopg.connect(url)  # holds the row lock in an open transaction
    locker.execute("SELECT 1 FROM session_info WHERE session_handle = 'h1' FOR UPDATE")
    blocked = threading.Thread(
        target=store.promote_returning, args=(Promotion("h1", "alice", "hash-a", "hash-b", 1, 2),)
    )
    blocked.start()  # takes the only connection and waits for the row lock
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        store.get_session("h1")
    assert time.monotonic() - started < 3
    locker.rollback()
    locker.close()
    blocked.join(timeout=10)
    assert not blocked.is_alive()
    row = store.get_session("h1")  # the pool serves again once the connection is back
    assert row is not None and row.refresh_token_hash_2 == "hash-b"
    store.close()


def _terminate_backends(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize(("check", "survives"), [("idle", True), ("always", True), ("never", False)])
def test_a_connection_killed_while_idle_is_replaced_when_checked(
    url: str, check: str, survives: bool
) -> None:
    name = f"sw_idle_{check}"
    store = PostgresStore(url + f"&pool_min=1&pool_max=1&pool_check={check}&application_name={name}")
    store.migrate()
    store.insert_session(make_row("h1"))
    assert _terminate_backends(url, name) == 1  # as a server restart would
    time.sleep(1.2)  # longer than the idle threshold
    if survives:
        assert store.get_session("h1") is not None  # the check found the dead connection
    else:
        with pytest.raises(StorageUnavailableError):
            store.get_session("h1")
        assert store.get_session("h1") is not None  # the broken connection was replaced
    store.close()


def test_closed_stores_refuse_work(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    store.close()
    with pytest.raises(GeneralError, match="closed"):
        store.get_session("h1")

    async def main() -> None:
        async_store = AsyncPostgresStore(url)
        await async_store.get_session("h1")
        await async_store.close()
        with pytest.raises(GeneralError, match="closed"):
            await async_store.get_session("h1")

    asyncio.run(main())


def test_async_store_survives_successive_event_loops(url: str) -> None:
    # The pool's maintenance tasks ignore cancellation; a loop ending while they connect
    # used to hang in asyncio.run's task cancellation. Many loops make that timing likely.
    store = AsyncPostgresStore(url)
    asyncio.run(store.migrate())
    asyncio.run(store.insert_session(make_row("h1")))
    for _ in range(30):
        assert asyncio.run(store.get_session("h1")) is not None  # each loop: a fresh pool
    asyncio.run(store.close())


def test_async_store_serves_concurrent_tasks_with_one_winner(url: str) -> None:
    async def main() -> list[Promoted]:
        store = AsyncPostgresStore(url + "&pool_max=4")
        await store.migrate()
        await store.insert_session(make_row("h1"))
        try:
            return await asyncio.gather(
                *(
                    store.promote_returning(Promotion("h1", "alice", "hash-a", f"n{i}", 2, 9))
                    for i in range(50)
                )
            )
        finally:
            await store.close()

    assert [promoted.changed for promoted in asyncio.run(main())].count(True) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_pool_and_leaves_the_parents_alone(store: PostgresStore) -> None:
    store.insert_session(make_row("h1"))
    assert store.get_session("h1") is not None  # the parent's pool is open
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "fork() in a multi-threaded process"
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            ok = (
                store.get_session("h1") is not None
                and store.promote_returning(Promotion("h1", "alice", "hash-a", "hash-c", 1, 2)).changed
            )
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    row = store.get_session("h1")  # the parent's connections still work
    assert row is not None and row.refresh_token_hash_2 == "hash-c"


# -- the engine on PostgreSQL -----------------------------------------------------------------


def test_engine_on_postgres_by_config(url: str) -> None:
    with SessionWard(Config(store=url, refresh_token_reuse_grace_period=0)) as ward:
        tokens = ward.create_new_session("alice", {"role": "admin"}, {"cart": [1]})
        child = ward.refresh_session(tokens.refresh_token.value)
        assert ward.get_session(child.access_token.value).new_access_token is not None  # promoted
        assert ward.get_all_session_handles_for_user("alice") == [tokens.handle]


def test_async_engine_on_postgres(url: str) -> None:
    async def main() -> None:
        async with AsyncSessionWard(Config(store=url)) as ward:
            tokens = await ward.create_new_session("bob")
            child = await ward.refresh_session(tokens.refresh_token.value)
            assert (await ward.get_session(child.access_token.value)).user_id == "bob"
            assert await ward.revoke_session(tokens.handle) is True

    asyncio.run(main())
