"""The request-level Session object: store errors clear the cookies on the response."""

from __future__ import annotations

import asyncio

import pytest

from sessionward import AsyncSessionWard, Config, SessionWard, UnauthorizedError
from sessionward.session import AsyncSession, AsyncSessionHandler, Session, SessionHandler
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


def test_verified_session_objects_carry_the_claims_and_no_instance_dict() -> None:
    async def verify_async(engine: AsyncSessionWard, cookie: str) -> AsyncSession:
        return await AsyncSessionHandler(engine).verify(ResponseEffects(CONFIG), cookie, None, "GET", None)

    with SessionWard(CONFIG) as engine:
        effects = ResponseEffects(CONFIG)
        created = SessionHandler(engine).create(effects, "alice", {"role": "admin"}, None)
        cookie = f"sAccessToken={created.access_token}; sIdRefreshToken=i"
        verified = SessionHandler(engine).verify(ResponseEffects(CONFIG), cookie, None, "GET", None)
        assert isinstance(verified, Session)
        assert (verified.user_id, verified.handle, verified.jwt_payload, verified.access_token) == (
            "alice",
            created.handle,
            {"role": "admin"},
            created.access_token,
        )
        assert not hasattr(verified, "__dict__")
        assert repr(verified) == f"<Session user_id='alice' handle={created.handle!r}>"

    async def scenario() -> None:
        async with AsyncSessionWard(CONFIG) as engine:
            created = await AsyncSessionHandler(engine).create(ResponseEffects(CONFIG), "bob", None, None)
            session = await verify_async(engine, f"sAccessToken={created.access_token}; sIdRefreshToken=i")
            assert (session.user_id, session.handle, session.jwt_payload) == ("bob", created.handle, {})
            assert not hasattr(session, "__dict__")

    asyncio.run(scenario())
