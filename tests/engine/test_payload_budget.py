"""One size budget, end to end: the largest JWT payload a session may hold is the one whose
largest access cookie (a refresh's token, with the parent claim) still fits 4096 bytes. It
is checked before any store write, at create and at every payload update, on the engine
and the request API; a payload accepted once can always be refreshed; a stored payload
that no longer fits ends the session with a 401-class error and a log line, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward import (
    AsyncSessionWard,
    Config,
    GeneralError,
    PayloadTooLargeError,
    SessionTokens,
    SessionWard,
    UnauthorizedError,
)
from sessionward.cookies import MAX_COOKIE_BYTES
from sessionward.session import SessionHandler
from sessionward.stores.sqlite import SQLiteStore
from sessionward.transport import ResponseEffects

ALGORITHMS = ["RS256", "ES256", "EdDSA", "HS256"]
USER_IDS = ["u", "ü" * 40, "x" * 256, "\U0001f600" * 64]


def make_config(tmp_path: Path, alg: str = "HS256", **options: Any) -> Config:
    settings: dict[str, Any] = {"access_token_algorithm": alg, "cookie_secure": False}
    settings.update(options)
    return Config(store=f"sqlite:///{tmp_path}/s.db", **settings)


def payload_of(size: int) -> dict[str, Any]:
    """A payload whose compact JSON is exactly ``size`` bytes (size ≥ 8)."""
    return {"d": "a" * (size - 8)}


def access_cookie_bytes(config: Config, tokens: SessionTokens) -> int:
    effects = ResponseEffects(config)
    effects.set_session(tokens)  # raises GeneralError over the browser limit
    return len(effects.cookies["sAccessToken"].encode())


def largest_accepted(engine: SessionWard, user_id: str) -> int:
    """Binary search of the largest payload JSON size ``create_new_session`` accepts."""
    low, high = 8, 6000
    while low < high:
        middle = (low + high + 1) // 2
        try:
            tokens = engine.create_new_session(user_id, payload_of(middle))
        except PayloadTooLargeError:
            high = middle - 1
        else:
            engine.revoke_session(tokens.handle)
            low = middle
    return low


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SessionWard]:
    with SessionWard(make_config(tmp_path, enable_anti_csrf=True)) as ward:
        yield ward


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "enable_anti_csrf": True,
            "cookie_domain": ".example.com",
            "cookie_secure": True,
            "access_token_path": "/api/v1",
        },
    ],
    ids=["plain", "every-attribute"],
)
def test_the_largest_accepted_payload_refreshes_and_one_more_byte_is_refused(
    tmp_path: Path, alg: str, options: dict[str, Any]
) -> None:
    config = make_config(tmp_path, alg, **options)
    with SessionWard(config) as engine:
        for user_id in USER_IDS[:2] if alg != "HS256" else USER_IDS:
            size = largest_accepted(engine, user_id)
            assert size > 1500  # the budget leaves real room
            created = engine.create_new_session(user_id, payload_of(size))
            tokens = created
            for _ in range(3):  # every cookie of the session fits: refreshes and promotions
                tokens = engine.refresh_session(tokens.refresh_token.value)
                largest = access_cookie_bytes(config, tokens)
                assert largest <= MAX_COOKIE_BYTES
                verified = engine.get_session(tokens.access_token.value)
                assert verified.new_access_token is not None
            # The budget is tight: the refresh cookie of the largest payload is within a
            # few bytes of the limit (times are counted at their widest, 12 digits).
            assert largest > MAX_COOKIE_BYTES - 16
            with pytest.raises(PayloadTooLargeError) as refused:
                engine.create_new_session(user_id, payload_of(size + 1))
            assert refused.value.limit == MAX_COOKIE_BYTES
            assert refused.value.size > MAX_COOKIE_BYTES
            assert str(MAX_COOKIE_BYTES) in str(refused.value)
            assert str(refused.value.size) in str(refused.value)


def test_refusal_at_create_writes_nothing(engine: SessionWard) -> None:
    with pytest.raises(PayloadTooLargeError) as refused:
        engine.create_new_session("alice", payload_of(5000))
    assert isinstance(refused.value, GeneralError)
    assert "jwt_payload" in str(refused.value)
    assert engine.get_all_session_handles_for_user("alice") == []


def test_engine_api_refuses_a_ten_kilobyte_payload(engine: SessionWard) -> None:
    with pytest.raises(PayloadTooLargeError):
        engine.create_new_session("alice", payload_of(10_000))


def test_login_cookie_close_to_the_limit_is_refused_at_login(tmp_path: Path) -> None:
    """A payload whose login cookie fits but whose refresh cookie (parent claim) would not
    is refused at login, so no session exists that could never refresh."""
    config = make_config(tmp_path)
    with SessionWard(config) as engine:
        limit = largest_accepted(engine, "alice")
        probe = engine.create_new_session("alice", payload_of(limit))
        login_cookie = access_cookie_bytes(config, probe)
        # The login cookie has room for about 124 more bytes; those payloads are refused.
        with pytest.raises(PayloadTooLargeError):
            engine.create_new_session("alice", payload_of(limit + 60))
        assert login_cookie + 60 < MAX_COOKIE_BYTES


def test_refused_payload_update_is_not_written_and_the_session_still_refreshes(engine: SessionWard) -> None:
    created = engine.create_new_session("alice", {"role": "user"})
    with pytest.raises(PayloadTooLargeError):
        engine.update_jwt_payload(created.handle, payload_of(4000))
    assert engine.get_jwt_payload(created.handle) == {"role": "user"}
    refreshed = engine.refresh_session(created.refresh_token.value)
    assert refreshed.jwt_payload == {"role": "user"}
    engine.get_session(refreshed.access_token.value)


def test_payload_update_at_the_budget_is_accepted_and_refreshes(engine: SessionWard) -> None:
    size = largest_accepted(engine, "alice")
    created = engine.create_new_session("alice", {})
    engine.update_jwt_payload(created.handle, payload_of(size))
    with pytest.raises(PayloadTooLargeError):
        engine.update_jwt_payload(created.handle, payload_of(size + 1))
    refreshed = engine.refresh_session(created.refresh_token.value)
    assert access_cookie_bytes(engine.config, refreshed) <= MAX_COOKIE_BYTES


def test_regenerate_access_token_refuses_an_oversized_payload(engine: SessionWard) -> None:
    created = engine.create_new_session("alice")
    with pytest.raises(PayloadTooLargeError):
        engine.regenerate_access_token(created.access_token.value, payload_of(4000))


def test_request_level_update_refused_before_the_store_and_the_response(engine: SessionWard) -> None:
    handler = SessionHandler(engine)
    session = handler.create(ResponseEffects(engine.config), "alice", {"v": 1}, None)
    effects = ResponseEffects(engine.config)
    session._effects = effects
    with pytest.raises(PayloadTooLargeError):
        session.update_jwt_payload(payload_of(4000))
    assert not effects.pending
    assert session.jwt_payload == {"v": 1}
    assert engine.get_jwt_payload(session.handle) == {"v": 1}


def write_payload_behind_the_engines_back(config: Config, handle: str, payload: dict[str, Any]) -> None:
    """What an older version (or a configuration change) may have left in the store."""
    store = SQLiteStore(config.store)
    try:
        assert store.update_jwt_payload(handle, payload)
    finally:
        store.close()


def test_stored_payload_over_the_budget_gives_unauthorised_and_a_log_line(
    engine: SessionWard, caplog: pytest.LogCaptureFixture
) -> None:
    created = engine.create_new_session("alice", {"v": 1})
    write_payload_behind_the_engines_back(engine.config, created.handle, payload_of(4000))
    with caplog.at_level(logging.ERROR, logger="sessionward.engine"):
        for _ in range(3):  # the same answer every time: no loop, no 500
            with pytest.raises(UnauthorizedError):
                engine.refresh_session(created.refresh_token.value)
    assert created.handle in caplog.text
    assert "4096" in caplog.text
    assert created.refresh_token.value not in caplog.text


def test_stored_payload_over_the_budget_at_promotion_is_unauthorised(engine: SessionWard) -> None:
    created = engine.create_new_session("alice", {"v": 1})
    refreshed = engine.refresh_session(created.refresh_token.value)
    write_payload_behind_the_engines_back(engine.config, created.handle, payload_of(4000))
    with pytest.raises(UnauthorizedError):
        engine.get_session(refreshed.access_token.value)


def test_async_engine_checks_the_same_budget(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(make_config(tmp_path)) as engine:
            with pytest.raises(PayloadTooLargeError):
                await engine.create_new_session("alice", payload_of(5000))
            created = await engine.create_new_session("alice", {"v": 1})
            with pytest.raises(PayloadTooLargeError):
                await engine.update_jwt_payload(created.handle, payload_of(5000))
            assert await engine.get_jwt_payload(created.handle) == {"v": 1}
            await engine.refresh_session(created.refresh_token.value)

    asyncio.run(scenario())
