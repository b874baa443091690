"""Upgrading a store written by release 0.1.0 (schema version 1) keeps its sessions alive.

The fixtures in ``fixtures/`` were made by ``fixtures/make_v010_fixtures.py`` running the
0.1.0 code (see its docstring): a SQLite file, a PostgreSQL dump of plain ``INSERT``s and
a JSON of the Redis keys, each with three live sessions created with a clock fixed at
``T0``, and the tokens their clients hold. Each test loads one into a fresh namespace of
its backend, opens the current engine (which migrates the store on start) with a fake
clock at ``T0``, and carries on with the old tokens, through the sync and the async engine.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from support.backends import REDIS_URL
from support.clock import T0, FakeClock
from support.drivers import Subject, Ward
from support.tokens import claims

from sessionward import Config, UnauthorizedError
from sessionward.errors import GeneralError
from sessionward.stores.base import SessionRow
from sessionward.stores.redis import parse_redis_url
from sessionward.stores.schema import latest_version

FIXTURES = Path(__file__).parent / "fixtures"
TOKENS: dict[str, Any] = json.loads((FIXTURES / "v010_tokens.json").read_text(encoding="utf-8"))
REFRESH_VALIDITY_MS = 8_640_000 * 1000  # the 0.1.0 default the fixtures were made with
HOUR_MS = 3_600_000


def load_fixture(backend: str, url: str) -> None:
    """Put the 0.1.0 data of ``backend`` into the (empty) store at ``url``."""
    if backend == "sqlite":
        shutil.copyfile(FIXTURES / "v010.sqlite3", url.removeprefix("sqlite:///"))
    elif backend == "postgres":
        dump = (FIXTURES / "v010_postgres.sql").read_text(encoding="utf-8")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(dump.encode())
    else:
        prefix = parse_redis_url(url).prefix
        dump = json.loads((FIXTURES / "v010_redis.json").read_text(encoding="utf-8"))
        with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
            for name, value in dump["string"].items():
                client.set(prefix + name, value)
            for name, fields in dump["hash"].items():
                client.hset(prefix + name, mapping=fields)
                if name.startswith("session:"):
                    client.pexpire(prefix + name, HOUR_MS)  # as 0.1.0 left them: expiring
            for name, members in dump["set"].items():
                client.sadd(prefix + name, *members)
            for name, entries in dump["zset"].items():
                client.zadd(prefix + name, dict(entries))


@pytest.fixture
def sessions(backend: str, store_url: str) -> dict[str, dict[str, Any]]:
    """The loaded fixture's sessions by name: ``committed`` and ``fresh`` (alice),
    ``pending`` (bob, refreshed but the rotation not yet committed)."""
    assert TOKENS["clock"] == T0 and TOKENS["version"] == "0.1.0"
    load_fixture(backend, store_url)
    return {session["name"]: session for session in TOKENS[backend]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(
    sessions: dict[str, Any], store_url: str, runner: asyncio.Runner | None, clock: FakeClock
) -> Iterator[Ward]:
    """The current engine on the loaded store, its configuration as 0.1.0's defaults."""
    opened = Ward(Config(store=store_url), store_url, runner, clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def subject(store_url: str, runner: asyncio.Runner | None) -> Iterator[Subject]:
    opened = Subject(store_url, runner)
    try:
        yield opened
    finally:
        opened.close()


def assert_metadata_defaults(row: SessionRow) -> None:
    assert (row.last_active_at, row.auth_time, row.refresh_validity) == (None, None, None)
    assert row.persistent is True
    assert (row.created_ip, row.created_user_agent, row.last_ip, row.last_user_agent) == (None,) * 4
    assert (row.active_at, row.authenticated_at) == (row.created_at_time, row.created_at_time)


def test_the_old_store_needs_the_migration(sessions: dict[str, Any], subject: Subject) -> None:
    with pytest.raises(GeneralError, match="version 1, sessionward needs 2"):
        subject.check_schema()
    assert subject.migrate() == 2 == latest_version("sqlite") == latest_version("postgres")
    subject.check_schema()
    assert subject.migrate() == 2  # idempotent
    for session in sessions.values():
        row = subject.get_session(session["handle"])
        assert (row.user_id, row.jwt_user_payload) == (session["user_id"], session["jwt_payload"])
        assert_metadata_defaults(row)
    assert subject.get_session(sessions["fresh"]["handle"]).created_at_time == int(T0 * 1000) - 60_000
    committed = subject.get_session(sessions["committed"]["handle"])
    assert committed.rotated_at == int(T0 * 1000) - 90_000 and committed.prev_refresh_token_hash_2


def test_sessions_keep_working_after_the_upgrade(
    sessions: dict[str, Any], ward: Ward, subject: Subject, clock: FakeClock
) -> None:
    fresh, committed, pending = sessions["fresh"], sessions["committed"], sessions["pending"]
    # The engine migrated the store on start; the old access tokens verify as they are.
    verified = ward.get_session(fresh["access_token"])
    assert (verified.handle, verified.user_id, verified.jwt_payload) == (
        fresh["handle"],
        "alice",
        {"plan": "free"},
    )
    assert verified.new_access_token is None
    assert ward.get_session(committed["access_token"]).jwt_payload == {"role": "admin"}
    info = ward.get_session_information(committed["handle"])
    assert (info.user_id, info.session_data, info.created_at) == (
        "alice",
        {"cart": [1, 2], "ü": "ß"},
        int(T0 * 1000) - 120_000,
    )
    assert_metadata_defaults(subject.get_session(fresh["handle"]))
    assert sorted(ward.get_all_session_handles_for_user("alice")) == sorted(
        [fresh["handle"], committed["handle"]]
    )

    # The pending rotation commits on the first use of its access token (a promotion that
    # now writes the metadata of the upgraded row).
    clock.advance(5)
    promoted = ward.get_session(pending["access_token"])
    assert promoted.new_access_token is not None
    row = subject.get_session(pending["handle"])
    assert (row.rotated_at, row.last_active_at) == (clock.ms, clock.ms)
    assert row.expires_at == clock.ms + REFRESH_VALIDITY_MS
    assert (row.persistent, row.refresh_validity, row.auth_time) == (True, None, None)
    assert ward.get_session(promoted.new_access_token.value).handle == pending["handle"]

    # Refresh with the old refresh tokens, then use the new tokens.
    clock.advance(5)
    for session in (fresh, committed):
        refreshed = ward.refresh_session(session["refresh_token"])
        assert (refreshed.handle, refreshed.user_id) == (session["handle"], "alice")
        assert claims(refreshed.access_token.value)["userData"] == session["jwt_payload"]
        clock.advance(1)
        used = ward.get_session(refreshed.access_token.value)
        assert used.new_access_token is not None  # first use: the rotation commits
        row = subject.get_session(session["handle"])
        assert row.last_active_at == clock.ms and row.expires_at == clock.ms + REFRESH_VALIDITY_MS
        assert row.persistent is True and row.refresh_validity is None
        clock.advance(1)
        again = ward.refresh_session(refreshed.refresh_token.value)
        assert again.handle == session["handle"]

    listed = subject.get_sessions_for_user("alice", clock.ms)
    assert sorted(r.session_handle for r in listed) == sorted([fresh["handle"], committed["handle"]])

    # Revoke: one session, then everything of a user.
    assert ward.revoke_session(fresh["handle"]) is True
    with pytest.raises(UnauthorizedError):
        ward.refresh_session(fresh["refresh_token"])
    assert ward.revoke_all_sessions_for_user("bob") == [pending["handle"]]
    assert ward.get_all_session_handles_for_user("alice") == [committed["handle"]]


def test_old_sessions_expire_and_are_swept(
    sessions: dict[str, Any], ward: Ward, subject: Subject, clock: FakeClock
) -> None:
    ward.get_session(sessions["fresh"]["access_token"])  # starts (and migrates)
    assert ward.delete_expired_sessions() == 0
    clock.advance(REFRESH_VALIDITY_MS / 1000)  # every session idle past its deadline
    with pytest.raises(UnauthorizedError):
        ward.refresh_session(sessions["fresh"]["refresh_token"])
    assert ward.get_all_session_handles_for_user("alice") == []
    removed = subject.delete_expired_sessions(clock.ms)
    assert sorted(removed) == sorted((s["handle"], s["user_id"]) for s in sessions.values())
    assert ward.delete_expired_sessions() == 0
