"""The change feed of every store: the log (SQL triggers, Redis scripts) and the listeners
that follow it.

Every test runs on a real store (a fresh SQLite file, PostgreSQL schema or Redis prefix):
which writes are logged (and which are not), the sequence, pruning, listeners seeing another
process's revocations (latency printed), reconnection after the server drops the listener's
connection, fork and thread hygiene.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql
from support.backends import POSTGRES_URL, REDIS_URL, isolated_store_url
from support.rows import make_row, now_ms

from sessionward.stores.base import Promotion, StoredKey
from sessionward.stores.changes import CHANGE_KINDS, AsyncChangeFeed, Change, ChangeFeed, ChangeListener
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore
from sessionward.stores.postgres.changes import PostgresChangeListener
from sessionward.stores.redis import AsyncRedisStore, RedisStore
from sessionward.stores.redis.changes import RedisChangeListener
from sessionward.stores.sqlite import SQLiteStore
from sessionward.stores.threaded import ThreadedAsyncStore

SQL_BACKENDS = ("sqlite", "postgres")
BACKENDS = (*SQL_BACKENDS, "redis")
SIGNING = "access_token_signing_key/HS256/"
SRC = str(Path(__file__).resolve().parents[2] / "src")

AnyStore = SQLiteStore | PostgresStore | RedisStore


def open_sync(url: str) -> AnyStore:
    if url.startswith("sqlite"):
        return SQLiteStore(url)
    return RedisStore(url) if url.startswith("redis") else PostgresStore(url)


def backend_of(url: str) -> str:
    return url.split(":", 1)[0].replace("postgresql", "postgres")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_store_url(str(request.param), tmp_path) as store_url:
        yield store_url


@pytest.fixture
def store(url: str) -> Iterator[AnyStore]:
    opened = open_sync(url)
    opened.migrate()
    yield opened
    opened.close()


class Collector:
    """A listener callback that records each change and when it arrived."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.arrived: dict[str, float] = {}
        self.batches = 0
        self._condition = threading.Condition()

    def __call__(self, batch: list[Change]) -> None:
        now = time.time()
        with self._condition:
            self.batches += 1
            self.changes.extend(batch)
            for change in batch:
                self.arrived.setdefault(change.subject, now)
            self._condition.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Change]:
        with self._condition:
            self._condition.wait_for(lambda: len(self.changes) >= count, timeout)
            return list(self.changes)


def listener_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("sessionward-changes")]


@pytest.fixture(autouse=True)
def no_listener_left_running() -> Iterator[None]:
    # Only this test's own listeners: an engine another test module left unclosed may
    # still run its own (a daemon thread, harmless), and is not this test's leak.
    before = set(listener_threads())
    yield
    assert [thread for thread in listener_threads() if thread not in before] == []


def insert_live(store: AnyStore, *handles: str, user: str = "alice") -> None:
    for handle in handles:
        store.insert_session(make_row(handle, user_id=user))


def kinds(changes: list[Change]) -> list[tuple[str, str]]:
    return [(change.kind, change.subject) for change in changes]


# -- what is logged ---------------------------------------------------------------------------


def test_every_revoking_write_is_logged_in_order_and_nothing_else(store: AnyStore) -> None:
    start = store.last_change_seq()
    assert start == 0 and store.changes_since(0) == []
    insert_live(store, "a1", "a2", "a3", "a4")
    insert_live(store, "b1", "b2", "b3", user="bob")
    insert_live(store, "c1", "c2", user="carol")
    store.insert_session(make_row("old", expires=now_ms() - 60_000))
    store.update_session_data("a1", {"x": 1})  # session data: not for verifiers
    store.update_auth_time("a1", now_ms())
    assert store.promote_returning(
        Promotion("a1", "alice", "hash-a", "hash-b", now_ms(), now_ms() + 10_000)
    ).changed
    assert store.changes_since(0) == []  # none of the above is a change for verifiers

    assert store.update_jwt_payload("a1", {"role": "reader"})
    assert store.update_jwt_payload("a1", {"role": "reader"})  # the same payload: nothing new
    assert not store.update_jwt_payload("missing", {"x": 1})
    assert store.delete_sessions(["a2", "missing"]) == ["a2"]
    assert sorted(store.delete_sessions_for_user("bob")) == ["b1", "b2", "b3"]
    assert sorted(store.delete_other_sessions("carol", "c1")) == ["c2"]
    store.delete_expired_sessions(now_ms())  # the sweep is quiet
    assert store.get_session("old") is None
    store.insert_key_if_absent(StoredKey(SIGNING + "i1", "secret", 1))
    store.insert_key_if_absent(StoredKey(SIGNING + "i1", "other", 2))  # exists: not added
    store.insert_key_if_absent(StoredKey("refresh_token_key", "k", 1))  # not a signing key
    store.delete_keys([SIGNING + "i1", "refresh_token_key"])

    changes = store.changes_since(0)
    got = kinds(changes)
    assert got[:2] == [("payload", "a1"), ("revoked", "a2")]
    assert sorted(got[2:5]) == [("revoked", "b1"), ("revoked", "b2"), ("revoked", "b3")]
    assert got[5:] == [("revoked", "c2"), ("key_added", SIGNING + "i1"), ("key_removed", SIGNING + "i1")]
    seqs = [change.seq for change in changes]
    assert seqs == sorted(set(seqs)) and seqs[0] > start
    assert store.last_change_seq() == seqs[-1]
    assert all(change.kind in CHANGE_KINDS for change in changes)
    assert all(abs(change.at - now_ms()) < 60_000 for change in changes)


def test_hostile_handles_and_key_names_come_back_exactly(store: AnyStore) -> None:
    handles = ["ü'\"; DROP TABLE change_log; --", " spaced ", "x" * 2000, "{}[]%s%%:*-0"]
    insert_live(store, *handles)
    for handle in handles:
        store.delete_sessions([handle])
    name = SIGNING + "m'\"ü%s--"
    store.insert_key_if_absent(StoredKey(name, "v", 1))
    store.delete_keys([name])
    assert kinds(store.changes_since(0)) == [
        *(("revoked", handle) for handle in handles),
        ("key_added", name),
        ("key_removed", name),
    ]


def test_redis_continues_the_sequence_when_its_counter_is_lost(tmp_path: Path) -> None:
    with isolated_store_url("redis", tmp_path) as url:
        store = RedisStore(url)
        try:
            insert_live(store, "h1", "h2")
            store.delete_sessions(["h1"])
            last = store.last_change_seq()
            server = redis.Redis.from_url(REDIS_URL)
            try:
                server.delete(store.prefix + "change_seq")
            finally:
                server.close()
            store.delete_sessions(["h2"])
            assert [(c.seq, c.subject) for c in store.changes_since(0)] == [(last, "h1"), (last + 1, "h2")]
            assert store.last_change_seq() == last + 1
        finally:
            store.close()


def test_every_store_offers_the_feed(store: AnyStore) -> None:
    assert isinstance(store, ChangeFeed)
    assert not isinstance(object(), ChangeFeed)


def test_changes_since_pages_through_the_log(store: AnyStore) -> None:
    handles = [f"h{i:03d}" for i in range(25)]
    insert_live(store, *handles)
    for handle in handles:
        store.delete_sessions([handle])
    seen: list[Change] = []
    while page := store.changes_since(seen[-1].seq if seen else 0, limit=7):
        assert len(page) <= 7
        seen.extend(page)
    assert [change.subject for change in seen] == handles
    assert store.changes_since(store.last_change_seq()) == []
    with pytest.raises(ValueError):
        store.changes_since(0, limit=0)


def test_prune_removes_old_changes_and_seq_never_goes_back(store: AnyStore) -> None:
    insert_live(store, "h1", "h2")
    store.delete_sessions(["h1"])
    last = store.last_change_seq()
    assert store.prune_changes(now_ms() - 60_000) == 0
    assert store.prune_changes(now_ms() + 1) == 1
    assert store.changes_since(0) == [] and store.prune_changes(now_ms() + 1) == 0
    store.delete_sessions(["h2"])
    [change] = store.changes_since(0)
    assert change.seq > last and change.subject == "h2"


def test_a_write_outside_the_store_is_logged_too(store: AnyStore, url: str) -> None:
    """The triggers see every writer: the CLI, another process, an older sessionward."""
    if isinstance(store, RedisStore):
        pytest.skip("Redis has no triggers: only sessionward's own scripts write the feed")
    insert_live(store, "h1", "h2")
    if isinstance(store, SQLiteStore):
        raw = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        raw.execute("DELETE FROM session_info WHERE session_handle = 'h1'")
        raw.execute("BEGIN")
        raw.execute("DELETE FROM session_info WHERE session_handle = 'h2'")
        raw.execute("ROLLBACK")  # rolled back: no change either
        raw.close()
    else:
        schema = store.settings.conninfo.rsplit("search_path%3D", 1)[1]
        # A session whose search_path does not hold the schema still logs into that schema.
        with psycopg.connect(POSTGRES_URL, autocommit=True) as other:
            delete = sql.SQL("DELETE FROM {}.session_info WHERE session_handle = %s").format(
                sql.Identifier(schema)
            )
            other.execute(delete, ("h1",))
            with pytest.raises(psycopg.errors.QueryCanceled), other.transaction():
                other.execute(delete, ("h2",))
                other.execute("SET LOCAL statement_timeout = 1")
                other.execute("SELECT pg_sleep(1)")  # fails: the transaction rolls back
    assert kinds(store.changes_since(0)) == [("revoked", "h1")]
    assert store.get_session("h2") is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_stores_offer_the_same_operations(backend: str, tmp_path: Path) -> None:
    async def scenario(url: str) -> None:
        store: ThreadedAsyncStore | AsyncPostgresStore | AsyncRedisStore
        if backend == "sqlite":
            store = ThreadedAsyncStore(SQLiteStore(url))
        else:
            store = AsyncRedisStore(url) if backend == "redis" else AsyncPostgresStore(url)
        try:
            assert isinstance(store, AsyncChangeFeed)
            await store.migrate()
            await store.insert_session(make_row("h1"))
            await store.update_jwt_payload("h1", {"v": 2})
            await store.delete_sessions(["h1"])
            changes = await store.changes_since(0)
            assert kinds(changes) == [("payload", "h1"), ("revoked", "h1")]
            assert await store.last_change_seq() == changes[-1].seq
            collector = Collector()
            with store.change_listener(collector, since=0) as listener:
                assert collector.wait_for(2) == changes
                assert listener.state().last_seq == changes[-1].seq
            assert await store.prune_changes(now_ms() + 1) == 2
        finally:
            await store.close()

    with isolated_store_url(backend, tmp_path) as url:
        asyncio.run(scenario(url))


# -- listeners --------------------------------------------------------------------------------


def test_a_listener_delivers_new_changes_once_in_order(store: AnyStore) -> None:
    insert_live(store, "old", "h1", "h2", "h3")
    store.delete_sessions(["old"])  # before the listener: not delivered (since=None)
    collector = Collector()
    with store.change_listener(collector) as listener:
        assert listener.wait_connected(5)
        state = listener.state()
        assert state.connected and state.running and state.disconnects == 0
        assert state.last_seq == store.last_change_seq()
        store.delete_sessions(["h1"])
        store.update_jwt_payload("h2", {"p": 1})
        store.delete_sessions_for_user("alice")
        changes = collector.wait_for(4)
        assert kinds(changes)[:2] == [("revoked", "h1"), ("payload", "h2")]
        assert sorted(kinds(changes)[2:]) == [("revoked", "h2"), ("revoked", "h3")]
        time.sleep(0.3)
        assert len(collector.changes) == 4
        state = listener.state()
        assert state.last_seq == changes[-1].seq and state.lag_ms is not None and state.lag_ms < 2000


def test_a_healthy_listener_stays_fresh_quiet_or_busy(store: AnyStore) -> None:
    """The age of what a listener knows (``lag_ms``, counted from when its last read was
    asked) stays below the wake-up interval, on a quiet log and while changes come in: an
    engine waking its listener twice per ``change_feed_max_lag`` never sees it go stale."""
    interval = 0.5  # what an engine sets with the default change_feed_max_lag of 1 s
    insert_live(store, *(f"h{i}" for i in range(20)))
    collector = Collector()
    with store.change_listener(collector) as listener:
        for attribute in ("heartbeat", "poll_interval"):
            if hasattr(listener, attribute):
                setattr(listener, attribute, min(interval, getattr(listener, attribute)))
        assert listener.wait_connected(5)
        time.sleep(interval)  # a wake-up with the new interval

        def oldest(seconds: float) -> float:
            """The highest ``lag_ms`` sampled every 5 ms for ``seconds``."""
            worst = 0.0
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                state = listener.state()
                assert state.connected
                worst = max(worst, state.lag_ms or 0.0)
                time.sleep(0.005)
            return worst

        def revoke_some() -> None:
            for i in range(20):
                store.delete_sessions([f"h{i}"])
                time.sleep(0.07 * (i % 4))

        quiet = oldest(1.5)
        writer = threading.Thread(target=revoke_some)
        writer.start()
        busy = oldest(1.5)
        writer.join()
        assert len(collector.wait_for(20)) == 20
    print(f"\nlag_ms: quiet max {quiet:.0f}, busy max {busy:.0f}")
    assert quiet < 1000 * 2 * interval and busy < 1000 * 2 * interval


def test_a_listener_replays_from_a_given_seq(store: AnyStore) -> None:
    insert_live(store, "h1", "h2", "h3")
    for handle in ("h1", "h2", "h3"):
        store.delete_sessions([handle])
    first = store.changes_since(0)[0].seq
    collector = Collector()
    with store.change_listener(collector, since=first):
        assert [change.subject for change in collector.wait_for(2)] == ["h2", "h3"]


def test_a_raising_callback_does_not_stop_the_feed(store: AnyStore, caplog: pytest.LogCaptureFixture) -> None:
    insert_live(store, "h1", "h2")
    calls: list[list[Change]] = []

    def callback(batch: list[Change]) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    with store.change_listener(callback) as listener:
        assert listener.wait_connected(5)
        store.delete_sessions(["h1"])
        deadline = time.monotonic() + 5
        while len(calls) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        store.delete_sessions(["h2"])
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [change.subject for batch in calls for change in batch] == ["h1", "h2"]
    assert "consumer bug" in caplog.text


def test_close_stops_the_thread_and_is_idempotent(store: AnyStore) -> None:
    before = set(listener_threads())
    listener = store.change_listener(Collector())
    assert listener.wait_connected(5) and len(set(listener_threads()) - before) == 1
    started = time.monotonic()
    listener.close()
    assert time.monotonic() - started < 2
    assert set(listener_threads()) <= before
    assert not listener.state().running and not listener.state().connected
    listener.close()
    with pytest.raises(RuntimeError):
        listener.start()


def test_memory_sqlite_listener_reads_through_the_store() -> None:
    store = SQLiteStore("sqlite:///:memory:")
    try:
        store.migrate()
        insert_live(store, "h1")
        collector = Collector()
        with store.change_listener(collector) as listener:
            assert listener.wait_connected(5)
            store.delete_sessions(["h1"])
            assert kinds(collector.wait_for(1)) == [("revoked", "h1")]
    finally:
        store.close()


# -- failures no reconnection mends ----------------------------------------------------------------


def wait_stopped(listener: ChangeListener, timeout: float = 5.0) -> str:
    """Wait until ``listener`` has stopped for good; return the cause it reports."""
    deadline = time.monotonic() + timeout
    while listener.state().running and time.monotonic() < deadline:
        time.sleep(0.01)
    state = listener.state()
    assert not state.running and not state.connected, state
    assert state.stopped is not None
    return state.stopped


def feed_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sessionward.stores.changes"]


def test_a_listener_stops_for_good_when_its_store_is_closed(
    store: AnyStore, caplog: pytest.LogCaptureFixture
) -> None:
    with store.change_listener(Collector()) as listener:
        assert listener.wait_connected(5)
        store.close()
        assert wait_stopped(listener) == "the store was closed by its owner"
        time.sleep(0.3)  # no reconnection attempt follows
        assert feed_records(caplog) == [
            ("ERROR", "change feed stopped for good: the store was closed by its owner")
        ]
        assert listener.state().disconnects == 0


def test_a_memory_sqlite_listener_stops_when_its_store_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    store = SQLiteStore("sqlite:///:memory:")
    store.migrate()
    with store.change_listener(Collector()) as listener:
        assert listener.wait_connected(5)
        store.close()
        assert wait_stopped(listener) == "the store was closed by its owner"
        assert [level for level, _ in feed_records(caplog)] == ["ERROR"]


def test_a_listener_stops_for_good_when_the_schema_is_dropped(
    store: AnyStore, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if isinstance(store, RedisStore):
        pytest.skip("Redis has no schema")
    with store.change_listener(Collector()) as listener:
        assert listener.wait_connected(5)
        if isinstance(store, SQLiteStore):
            raw = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            raw.execute("DROP TABLE change_log")
            raw.close()
            expected = "the change_log table is missing"
        else:
            schema = store.settings.conninfo.rsplit("search_path%3D", 1)[1]
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            expected = "schema"
        cause = wait_stopped(listener)
        assert expected in cause
        time.sleep(0.3)
        records = feed_records(caplog)
        assert [level for level, _ in records] == ["ERROR"] and cause in records[0][1], records


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_an_sqlite_listener_stops_when_its_file_is_deleted_or_replaced(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(f"sqlite:///{path}")
    store.migrate()
    try:
        with store.change_listener(Collector()) as listener:
            assert listener.wait_connected(5)
            if how == "deleted":
                path.unlink()
            else:
                other = SQLiteStore(f"sqlite:///{tmp_path / 'other.db'}")
                other.migrate()
                other.close()
                (tmp_path / "other.db").replace(path)
            assert wait_stopped(listener) == f"the database file {path} was {how}"
            assert [level for level, _ in feed_records(caplog)] == ["ERROR"]
        assert how == "replaced" or not path.exists()  # the listener never creates the file
    finally:
        store.close()


_REVOKER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from sessionward.stores.sqlite import SQLiteStore
    from sessionward.stores.postgres import PostgresStore
    from sessionward.stores.redis import RedisStore
    url, count = sys.argv[2], int(sys.argv[3])
    kinds = {"sqlite": SQLiteStore, "redis": RedisStore}
    store = kinds.get(url.split(":", 1)[0], PostgresStore)(url)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        started = time.time()
        store.delete_sessions([f"h{i:04d}"])
        print(f"h{i:04d} {started!r}", flush=True)
        time.sleep(0.01)
    store.close()
    """
)


def test_a_listener_sees_another_process_revoke_within_a_second(store: AnyStore, url: str) -> None:
    count = 120
    handles = [f"h{i:04d}" for i in range(count)]
    insert_live(store, *handles)
    collector = Collector()
    with store.change_listener(collector) as listener:
        assert listener.wait_connected(5)
        with subprocess.Popen(
            [sys.executable, "-c", _REVOKER, SRC, url, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as revoker:
            assert revoker.stdin is not None and revoker.stdout is not None
            assert revoker.stdout.readline().strip() == "ready"
            revoker.stdin.write("go\n")
            revoker.stdin.flush()
            started = dict(line.split() for line in revoker.stdout)
            assert revoker.wait(30) == 0
        changes = collector.wait_for(count)
    assert [change.subject for change in changes] == handles
    latencies = sorted((collector.arrived[h] - float(started[h])) * 1000 for h in handles)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    backend = backend_of(url)
    print(
        f"\n{backend}: revocation in another process -> listener: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1]:.1f} ms over {count}"
    )
    assert latencies[-1] < 5000


def test_concurrent_writers_are_delivered_exactly_once_in_order(store: AnyStore, url: str) -> None:
    """Writers racing each other: a listener that reads from its last seq misses none."""
    writers, per_writer = 4, 40
    for w in range(writers):
        insert_live(store, *(f"w{w}-{i}" for i in range(per_writer)), user=f"user{w}")
    collector = Collector()

    def write(w: int) -> None:
        own = open_sync(url)
        try:
            for i in range(per_writer):
                if i % 2:
                    own.update_jwt_payload(f"w{w}-{i}", {"n": i})
                own.delete_sessions([f"w{w}-{i}"])
        finally:
            own.close()

    with store.change_listener(collector) as listener:
        assert listener.wait_connected(5)
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        expected = writers * per_writer * 3 // 2
        changes = collector.wait_for(expected)
        time.sleep(0.2)
    assert len(collector.changes) == expected
    seqs = [change.seq for change in changes]
    assert seqs == sorted(set(seqs))
    assert changes == store.changes_since(0, limit=10_000)


def kill_connection(listener: ChangeListener) -> bool:
    """Have the server drop the listener's connection; whether there was one to drop."""
    if isinstance(listener, PostgresChangeListener):
        backend = listener.backend_pid
        if backend is None:
            return False
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        return True
    assert isinstance(listener, RedisChangeListener)
    client_id = listener.client_id
    if client_id is None:
        return False
    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.client_kill_filter(_id=str(client_id))
    finally:
        server.close()
    return True


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_killed_listener_connection_reconnects_and_misses_nothing(backend: str, tmp_path: Path) -> None:
    count = 300
    with isolated_store_url(backend, tmp_path) as url:
        store = open_sync(url)
        try:
            store.migrate()
            insert_live(store, *(f"h{i:04d}" for i in range(count)))
            collector = Collector()
            with store.change_listener(collector) as listener:
                assert listener.wait_connected(5)

                def revoke() -> None:
                    for i in range(count):
                        store.delete_sessions([f"h{i:04d}"])
                        time.sleep(0.002)

                writer = threading.Thread(target=revoke)
                writer.start()
                kills = 0
                while writer.is_alive() and kills < 4:
                    time.sleep(0.1)
                    kills += kill_connection(listener)
                writer.join()
                changes = collector.wait_for(count, timeout=20)
                time.sleep(0.3)
                state = listener.state()
            assert kills >= 2 and state.disconnects >= kills - 1
            assert len(collector.changes) == count
            assert [change.subject for change in changes] == [f"h{i:04d}" for i in range(count)]
            seqs = [change.seq for change in changes]
            assert seqs == sorted(set(seqs))
            print(f"\n{backend}: {kills} kills, {state.disconnects} disconnects, {count} changes once each")
        finally:
            store.close()


def test_a_listener_waits_for_an_unreachable_server_and_recovers(tmp_path: Path) -> None:
    """Before the schema exists the reads fail: the listener backs off, then catches up."""
    with isolated_store_url("sqlite", tmp_path) as url:
        store = SQLiteStore(url)
        try:
            collector = Collector()
            with store.change_listener(collector, since=0) as listener:
                time.sleep(0.3)
                state = listener.state()
                assert not state.connected and state.disconnects >= 1 and state.running
                store.migrate()
                insert_live(store, "h1")
                store.delete_sessions(["h1"])
                assert kinds(collector.wait_for(1)) == [("revoked", "h1")]
                assert listener.wait_connected(5)
        finally:
            store.close()


# -- fork --------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_inherit_a_running_listener(store: AnyStore) -> None:
    insert_live(store, "h1", "h2", "h3")
    collector = Collector()
    with store.change_listener(collector) as listener:
        assert listener.wait_connected(5)
        store.delete_sessions(["h1"])
        collector.wait_for(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "fork() in a multi-threaded process"
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 2
            try:
                state = listener.state()
                inherited = not state.running and not state.connected and listener_threads() == []
                # Started anew in the child: its own thread and connection, from the fork's seq.
                own: list[Change] = []
                listener.start()
                listener.wait_connected(5)
                store.delete_sessions(["h2"])
                deadline = time.monotonic() + 5
                while not own and time.monotonic() < deadline:
                    own.extend(c for c in collector.changes if c.subject == "h2")
                    time.sleep(0.01)
                listener.close()
                code = 0 if inherited and own and listener_threads() == [] else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's listener and connection were left alone by the child.
        store.delete_sessions(["h3"])
        changes = collector.wait_for(3)
        assert [change.subject for change in changes] == ["h1", "h2", "h3"]
        assert listener.state().disconnects == 0 and listener.state().connected
