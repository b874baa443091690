"""The change feed over an engine's life (docs/change-feed.md): a listener that can never
succeed stops (one ERROR naming the cause) and verification reads the store, which answers
with its own error.

Run on SQLite, PostgreSQL and Redis with the sync and the async engine, on real stores.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import pytest
from support.backends import POSTGRES_URL
from support.engines import Driven
from support.stores import RecordingStore
from support.waiting import wait_until

from sessionward import GeneralError


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
