"""The change feed over an engine's life (docs/change-feed.md): a listener that can never
succeed stops (one ERROR naming the cause) and verification reads the store, which answers
with its own error; the listener of an engine never closed ends when the engine is
collected.

Run on SQLite, PostgreSQL and Redis with the sync and the async engine, on real stores.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from support.backends import POSTGRES_URL
from support.engines import Driven
from support.stores import RecordingStore
from support.waiting import wait_until

from sessionward import AsyncSessionWard, Config, GeneralError, SessionWard
from sessionward.stores.urls import open_async_store, open_store


def wait_live(engine: Driven) -> None:
    wait_until(lambda: engine.change_feed_state().live)


# -- failures no reconnection mends --------------------------------------------------------------


def close_inner(store: RecordingStore, runner: asyncio.Runner | None) -> None:
    closing = store.inner.close()
    if runner is not None:
        runner.run(closing)


def test_an_engine_whose_store_is_closed_under_it_stops_following_the_feed(
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    runner: asyncio.Runner | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    b, store = recorded()
    session = b.create_new_session("alice")
    wait_live(b)
    close_inner(store, runner)
    wait_until(lambda: b.change_feed_state().stopped is not None)
    state = b.change_feed_state()
    assert not state.live and state.stopped == "the store was closed by its owner"
    with pytest.raises(GeneralError, match="closed"):  # the store's own error, not a guess
        b.get_session(session.access_token.value)
    logged = [(r.name, r.levelname) for r in caplog.records if "change feed" in r.getMessage()]
    assert logged.count(("sessionward.stores.changes", "ERROR")) == 1
    assert ("sessionward.stores.changes", "WARNING") not in logged  # no reconnection attempts


def test_an_engine_whose_schema_is_dropped_stops_following_the_feed(
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    backend: str,
    store_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend == "redis":
        pytest.skip("Redis has no schema")
    b, _ = recorded()
    session = b.create_new_session("alice")
    wait_live(b)
    if backend == "sqlite":
        raw = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        tables = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if not table.startswith("sqlite_"):
                raw.execute(f'DROP TABLE "{table}"')
        raw.close()
    else:
        import psycopg
        from psycopg import sql

        schema = store_url.rsplit("search_path%3D", 1)[1]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    wait_until(lambda: b.change_feed_state().stopped is not None)
    assert not b.change_feed_state().live
    with pytest.raises(GeneralError, match="session_info"):  # the store's own error
        b.get_session(session.access_token.value)
    errors = [r for r in caplog.records if r.name == "sessionward.stores.changes" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "schema" in errors[0].getMessage()


# -- engines never closed ------------------------------------------------------------------------


def listener_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sessionward-changes") and t.is_alive()}


def test_the_listener_of_an_engine_never_closed_ends_when_the_engine_is_collected(
    store_url: str, runner: asyncio.Runner | None
) -> None:
    before = listener_threads()
    config = Config(store=store_url, access_token_algorithm="HS256", cookie_secure=False)
    store: Any = open_store(store_url) if runner is None else open_async_store(store_url)
    try:
        engine: SessionWard | AsyncSessionWard = (
            SessionWard(config, store=store) if runner is None else AsyncSessionWard(config, store=store)
        )
        driven = Driven(engine, runner)
        driven.create_new_session("alice")  # starts the engine and its listener
        wait_live(driven)
        started = listener_threads() - before
        assert len(started) == 1
        collected = weakref.ref(engine)
        del engine, driven
        gc.collect()
        assert collected() is None  # the listener's thread does not keep the engine alive
        wait_until(lambda: not any(thread.is_alive() for thread in started))
    finally:
        closing = store.close()
        if runner is not None:
            runner.run(closing)


def test_a_closed_engine_leaves_no_finaliser_behind(make_engine: Callable[..., Driven]) -> None:
    engine = make_engine()
    engine.create_new_session("alice")
    feed = engine.core.feed
    finalizer = feed._finalizer
    assert finalizer is not None and finalizer.alive
    engine.close()
    assert not finalizer.alive
