"""The request-level Session object: store errors clear the cookies on the response."""

from __future__ import annotations

import asyncio

import pytest

from sessionward import AsyncSessionWard, Config, SessionWard, UnauthorizedError
from sessionward.session import AsyncSessionHandler, SessionHandler
from sessionward.transport import ResponseEffects

CONFIG = Config(store="sqlite:///:memory:", access_token_algorithm="HS256", cookie_secure=False)


@pytest.mark.parametrize("method", ["get_session_data", "update_session_data", "update_jwt_payload"])
def test_sync_session_gone_clears_cookies(method: str) -> None:
    with SessionWard(CONFIG) as engine:
        handler = SessionHandler(engine)
        session = handler.create(ResponseEffects(CONFIG), "alice", {"a": 1}, {"b": 2})
        engine.revoke_session(session.handle)
        effects = ResponseEffects(CONFIG)
        session._effects = effects
        args = () if method == "get_session_data" else ({"x": 1},)
        with pytest.raises(UnauthorizedError):
            getattr(session, method)(*args)
        assert effects.headers["id-refresh-token"] == "remove"
        assert set(effects.cookies) == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}


def test_sync_update_jwt_payload_reissues_with_same_expiry() -> None:
    with SessionWard(CONFIG) as engine:
        effects = ResponseEffects(CONFIG)
        session = SessionHandler(engine).create(effects, "alice", {"v": 1}, None)
        before = session.access_token
        session.update_jwt_payload({"v": 2})
        assert session.access_token != before
        assert session.jwt_payload == {"v": 2}
        verified = engine.get_session(session.access_token)
        assert verified.jwt_payload == {"v": 2}
        assert engine.get_jwt_payload(session.handle) == {"v": 2}


def test_async_session_gone_clears_cookies() -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(CONFIG) as engine:
            handler = AsyncSessionHandler(engine)
            session = await handler.create(ResponseEffects(CONFIG), "bob", None, None)
            assert await session.get_session_data() == {}
            await session.update_jwt_payload({"r": 1})
            await engine.revoke_session(session.handle)
            effects = ResponseEffects(CONFIG)
            session._effects = effects
            with pytest.raises(UnauthorizedError):
                await session.update_session_data({"x": 1})
            assert effects.headers["id-refresh-token"] == "remove"

    asyncio.run(scenario())
