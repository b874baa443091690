"""A stored session the store cannot decode — damaged JSON, a payload that is not an object,
a missing field — ends that session with ``UnauthorizedError`` (and a log line) on every
store, sync and async, instead of failing every request with a 500; other sessions are
untouched and the damaged one can still be revoked."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
import pytest
import redis

from sessionward import AsyncSessionWard, Config, SessionWard, UnauthorizedError

CONFIG: dict[str, Any] = {"access_token_algorithm": "HS256", "cookie_secure": False}


def damage(store_url: str, handle: str) -> None:
    """Overwrite the stored JWT payload with something that is not a JSON object."""
    if store_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(store_url.removeprefix("sqlite:///"))) as connection, connection:
            connection.execute(
                "UPDATE session_info SET jwt_user_payload = '{\"a\":' WHERE session_handle = ?", (handle,)
            )
    elif store_url.startswith("postgresql://"):
        # A JSON column refuses damaged text, but holds any JSON value.
        with psycopg.connect(store_url, autocommit=True) as postgres:
            postgres.execute(
                "UPDATE session_info SET jwt_user_payload = '[1, 2]' WHERE session_handle = %s", (handle,)
            )
    else:
        parts = urlsplit(store_url)
        prefix = parse_qs(parts.query)["prefix"][0]
        client = redis.Redis.from_url(urlunsplit((*parts[:3], "", "")))
        try:
            client.hdel(f"{prefix}session:{handle}", "created_at_time")
        finally:
            client.close()


def test_damaged_row_is_unauthorised_sync(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with SessionWard(Config(store=store_url, **CONFIG)) as engine:
        victim = engine.create_new_session("victim", {"role": "user"})
        bystander = engine.create_new_session("bystander")
        damage(store_url, victim.handle)
        with caplog.at_level("ERROR", logger="sessionward.engine"):
            calls: list[Callable[[], Any]] = [
                lambda: engine.refresh_session(victim.refresh_token.value),
                lambda: engine.get_session_data(victim.handle),
            ]
            for attempt in calls:
                with pytest.raises(UnauthorizedError):
                    attempt()
        assert f"session {victim.handle} is unusable" in caplog.text
        engine.refresh_session(bystander.refresh_token.value)
        assert engine.revoke_session(victim.handle)


def test_damaged_row_is_unauthorised_async(store_url: str) -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(Config(store=store_url, **CONFIG)) as engine:
            victim = await engine.create_new_session("victim", {"role": "user"})
            damage(store_url, victim.handle)
            with pytest.raises(UnauthorizedError):
                await engine.refresh_session(victim.refresh_token.value)
            assert await engine.revoke_session(victim.handle)

    asyncio.run(scenario())
