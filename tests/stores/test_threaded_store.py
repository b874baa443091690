"""ThreadedAsyncStore: a sync store driven from asyncio through one worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.rows import make_row as shared_make_row
from support.stores import STORE_METHODS, RecordingStore

from sessionward.errors import ConfigError, GeneralError, StorageUnavailableError
from sessionward.stores.base import Promotion, SessionRow, StoredKey
from sessionward.stores.schema import latest_version
from sessionward.stores.sqlite import SQLiteStore
from sessionward.stores.threaded import ThreadedAsyncStore
from sessionward.stores.urls import open_async_store

WORKER_PREFIX = "sessionward-store"


def make_row(handle: str = "h1", user_id: str = "alice", expires: int = 10_000) -> SessionRow:
    """``support.rows.make_row`` created at 1 ms."""
    return shared_make_row(handle, user_id, created=1, expires=expires)


_preexisting: set[threading.Thread] = set()


def worker_threads() -> list[threading.Thread]:
    """Live store worker threads started during the current test."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(WORKER_PREFIX) and t.is_alive() and t not in _preexisting
    ]


@pytest.fixture(autouse=True)
def _ignore_workers_of_other_tests() -> None:
    # Only threads this test starts count, whatever other test modules left behind.
    _preexisting.clear()
    _preexisting.update(t for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/async.db"


@pytest.fixture
def recording(db_url: str) -> Iterator[RecordingStore]:
    inner = SQLiteStore(db_url)
    yield RecordingStore(inner)
    inner.close()


async def exercise(store: Any) -> None:
    """Every AsyncStore method once, checking results."""
    assert await store.migrate() == latest_version("sqlite")
    await store.check_schema()
    await store.insert_session(make_row("h1"))
    await store.insert_session(make_row("h2", expires=5))
    assert await store.get_session("h1") == make_row("h1")
    assert await store.get_session("missing") is None
    assert (
        await store.promote_returning(Promotion("h1", "alice", "wrong", "hash-b", 2, 20_000))
    ).changed is False
    assert (
        await store.promote_returning(Promotion("h1", "alice", "hash-a", "hash-b", 2, 20_000))
    ).changed is True
    promoted = await store.get_session("h1")
    assert promoted.refresh_token_hash_2 == "hash-b"
    assert promoted.prev_refresh_token_hash_2 == "hash-a"
    assert (promoted.rotated_at, promoted.expires_at) == (2, 20_000)
    refused = await store.promote_returning(Promotion("h1", "alice", "wrong", "hash-c", 3, 20_000))
    assert refused.changed is False
    assert refused.row is not None and refused.row.refresh_token_hash_2 == "hash-b"
    assert await store.get_handles_for_user("alice", 100) == ["h1"]
    assert await store.update_session_data("h1", {"x": 1}) is True
    assert await store.update_jwt_payload("h1", {"y": 2}) is True
    assert await store.update_session_data("missing", {}) is False
    assert await store.update_jwt_payload("missing", {}) is False
    row = await store.get_session("h1")
    assert (row.session_data, row.jwt_user_payload) == ({"x": 1}, {"y": 2})
    assert await store.update_auth_time("h1", 50) is True
    assert await store.update_auth_time("missing", 50) is False
    listed = await store.get_sessions_for_user("alice", 100)
    assert [(r.session_handle, r.auth_time, r.last_active_at) for r in listed] == [("h1", 50, 50)]
    assert await store.delete_expired_sessions(100) == [("h2", "alice")]
    assert await store.delete_sessions(["h1", "missing"]) == ["h1"]
    await store.insert_session(make_row("u1", user_id="bob"))
    await store.insert_session(make_row("u2", user_id="bob"))
    await store.insert_session(make_row("u3", user_id="bob"))
    assert sorted(await store.delete_other_sessions("bob", "u3")) == ["u1", "u2"]
    assert await store.delete_sessions_for_user("bob") == ["u3"]
    first = StoredKey("sk:1", "one", 1)
    assert await store.insert_key_if_absent(first) == first
    assert await store.insert_key_if_absent(StoredKey("sk:1", "two", 2)) == first
    await store.insert_key_if_absent(StoredKey("other", "v", 1))
    assert await store.load_keys("sk:") == [first]
    await store.delete_keys(["sk:1"])
    assert await store.load_keys("sk:") == []


def test_every_method_works(db_url: str) -> None:
    store = ThreadedAsyncStore(SQLiteStore(db_url))

    async def main() -> None:
        try:
            await exercise(store)
        finally:
            await store.close()

    asyncio.run(main())
    assert not worker_threads()


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_open_async_store_by_url(kind: str, db_url: str) -> None:
    store = open_async_store(db_url if kind == "file" else "sqlite:///:memory:")
    assert isinstance(store, ThreadedAsyncStore)
    assert isinstance(store.sync_store, SQLiteStore)

    async def main() -> None:
        try:
            await exercise(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_open_async_store_bad_urls() -> None:
    for url in ("nothing", "mysql://x/y", "sqlite://host/x.db", "sqlite:///x.db?mode=ro"):
        with pytest.raises(ConfigError, match=r"^store:"):
            open_async_store(url)


def test_calls_run_on_the_worker_thread(recording: RecordingStore) -> None:
    store = ThreadedAsyncStore(recording)
    loop_thread: list[int] = []

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        try:
            await exercise(store)
        finally:
            await store.close()

    asyncio.run(main())
    names = set(recording.calls)
    assert names >= STORE_METHODS
    threads = {thread.ident for _, thread in recording.threads}
    assert len(threads) == 1  # one dedicated worker, every call serialised on it
    assert loop_thread[0] not in threads
    assert threading.get_ident() not in threads


def test_event_loop_is_not_blocked(db_url: str, tmp_path: Path) -> None:
    """While the worker waits on a locked database, other tasks keep running."""
    store = ThreadedAsyncStore(SQLiteStore(db_url + "?timeout=0.5"))
    path = str(tmp_path / "async.db")

    async def main() -> int:
        try:
            await store.migrate()
            locker = sqlite3.connect(path, isolation_level=None, timeout=0)
            try:
                locker.execute("BEGIN EXCLUSIVE")
                ticks = 0

                async def ticker() -> None:
                    nonlocal ticks
                    while True:
                        await asyncio.sleep(0.01)
                        ticks += 1

                task = asyncio.create_task(ticker())
                with pytest.raises(StorageUnavailableError):
                    await store.insert_session(make_row())
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                locker.execute("ROLLBACK")
            finally:
                locker.close()
            await store.insert_session(make_row())  # works again once released
            assert await store.get_session("h1") == make_row()
            return ticks
        finally:
            await store.close()

    assert asyncio.run(main()) >= 10


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda s: s.check_schema(), GeneralError),
        (lambda s: s.get_session("h1"), StorageUnavailableError),
    ],
)
def test_errors_propagate_with_their_type(
    tmp_path: Path, action: Callable[[ThreadedAsyncStore], Any], error: type[Exception]
) -> None:
    if error is StorageUnavailableError:
        (tmp_path / "async.db").write_bytes(b"not a database at all" * 300)
    store = ThreadedAsyncStore(SQLiteStore(f"sqlite:///{tmp_path}/async.db"))

    async def main() -> None:
        try:
            with pytest.raises(error) as info:
                await action(store)
            if error is GeneralError:
                assert not isinstance(info.value, StorageUnavailableError)
                assert "sessionward migrate" in str(info.value)
        finally:
            await store.close()

    asyncio.run(main())


def test_integrity_error_propagates_as_general_error(db_url: str) -> None:
    store = ThreadedAsyncStore(SQLiteStore(db_url))

    async def main() -> None:
        try:
            await store.migrate()
            await store.insert_session(make_row())
            with pytest.raises(GeneralError) as info:
                await store.insert_session(make_row())
            assert type(info.value) is GeneralError
        finally:
            await store.close()

    asyncio.run(main())


def test_locked_database_propagates_storage_unavailable(db_url: str, tmp_path: Path) -> None:
    store = ThreadedAsyncStore(SQLiteStore(db_url + "?timeout=0.1"))

    async def main() -> None:
        try:
            await store.migrate()
            locker = sqlite3.connect(str(tmp_path / "async.db"), isolation_level=None, timeout=0)
            try:
                locker.execute("BEGIN EXCLUSIVE")
                with pytest.raises(StorageUnavailableError, match="locked"):
                    await store.promote_returning(Promotion("h1", "alice", "a", "b", 1, 2))
                locker.execute("ROLLBACK")
            finally:
                locker.close()
            assert await store.promote_returning(Promotion("h1", "alice", "a", "b", 1, 2)) == (False, None)
        finally:
            await store.close()

    asyncio.run(main())


def test_close_shuts_the_worker_down(recording: RecordingStore) -> None:
    store = ThreadedAsyncStore(recording)

    async def main() -> None:
        await store.migrate()
        assert len(worker_threads()) == 1
        await store.close()
        assert not worker_threads()
        with pytest.raises(GeneralError, match="closed"):
            await store.get_session("h1")
        assert not worker_threads()  # a call after close starts no new worker
        await store.close()  # idempotent

    asyncio.run(main())
    assert recording.calls["close"] == 1
    with pytest.raises(GeneralError, match="closed"):
        recording.inner.get_session("h1")


def test_close_before_any_call(db_url: str) -> None:
    inner = SQLiteStore(db_url)
    store = ThreadedAsyncStore(inner)
    asyncio.run(store.close())
    assert not worker_threads()
    with pytest.raises(GeneralError, match="closed"):
        inner.migrate()


def test_store_outlives_event_loops(db_url: str) -> None:
    """One store used from successive asyncio.run calls (CLIs, tests)."""
    store = ThreadedAsyncStore(SQLiteStore(db_url))
    try:
        asyncio.run(store.migrate())
        asyncio.run(store.insert_session(make_row()))
        assert asyncio.run(store.get_session("h1")) == make_row()
    finally:
        asyncio.run(store.close())
    assert not worker_threads()


def test_concurrent_tasks_share_one_worker(recording: RecordingStore) -> None:
    store = ThreadedAsyncStore(recording)

    async def main() -> None:
        try:
            await store.migrate()
            await asyncio.gather(*(store.insert_session(make_row(f"h{i}")) for i in range(20)))
            results = await asyncio.gather(*(store.get_session(f"h{i}") for i in range(20)))
            assert [None if r is None else r.session_handle for r in results] == [f"h{i}" for i in range(20)]
            assert len(worker_threads()) == 1
        finally:
            await store.close()

    asyncio.run(main())
    assert len({thread.ident for _, thread in recording.threads}) == 1
