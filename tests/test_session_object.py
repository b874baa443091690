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


# -- client information, re-authentication, other sessions -------------------------------------


def _cookie_value(effects: ResponseEffects, name: str) -> str:
    from urllib.parse import unquote

    return unquote(effects.cookies[name].split(";", 1)[0].split("=", 1)[1])


def test_verification_reads_the_client_only_when_it_writes() -> None:
    from sessionward import ClientInfo

    with SessionWard(CONFIG) as engine:
        handler = SessionHandler(engine)
        effects = ResponseEffects(CONFIG)
        created = handler.create(
            effects, "alice", None, None, "cookie", client=handler.client_info("198.51.100.1", None, "ua/1")
        )
        calls: list[int] = []

        def client() -> ClientInfo:
            calls.append(1)
            return handler.client_info("198.51.100.9", None, "ua/9")

        for _ in range(3):  # the hot path: no header is read
            handler.verify(
                ResponseEffects(CONFIG),
                f"sAccessToken={created.access_token}",
                None,
                "GET",
                None,
                "cookie",
                client=client,
            )
        assert calls == []
        refresh_effects = ResponseEffects(CONFIG)
        refreshed = handler.refresh(
            refresh_effects, f"sRefreshToken={_cookie_value(effects, 'sRefreshToken')}", "cookie"
        )
        promoted_effects = ResponseEffects(CONFIG)
        handler.verify(
            promoted_effects,
            f"sAccessToken={refreshed.access_token}",
            None,
            "GET",
            None,
            "cookie",
            client=client,
        )
        assert calls == [1]  # the promotion wrote, and read the client once
        assert "sAccessToken" in promoted_effects.cookies
        (info,) = engine.get_all_sessions_for_user("alice")
        assert (info.ip, info.user_agent, info.created_ip) == ("198.51.100.9", "ua/9", "198.51.100.1")


def test_mark_reauthenticated_and_revoke_other_sessions() -> None:
    with SessionWard(CONFIG) as engine:
        handler = SessionHandler(engine)
        others = [handler.create(ResponseEffects(CONFIG), "alice", None, None).handle for _ in range(2)]
        bob = handler.create(ResponseEffects(CONFIG), "bob", None, None).handle
        effects = ResponseEffects(CONFIG)
        session = handler.create(effects, "alice", {"v": 1}, None, persistent=False)
        assert session.auth_time > 0
        effects.cookies.clear()
        before = session.access_token
        session.mark_reauthenticated()
        # Within the same second the token may be the same string (claims in whole seconds).
        assert session.auth_time >= engine.get_session(before).auth_time
        assert engine.get_session(session.access_token).auth_time == session.auth_time
        # The session was created on this request: no read needed to keep it a
        # browser-session cookie.
        assert "Expires" not in effects.cookies["sAccessToken"]
        assert sorted(session.revoke_other_sessions()) == sorted(others)
        assert engine.get_all_session_handles_for_user("alice") == [session.handle]
        assert engine.get_all_session_handles_for_user("bob") == [bob]


def test_async_mark_reauthenticated_reads_persistence_once() -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(CONFIG) as engine:
            handler = AsyncSessionHandler(engine)
            created = await handler.create(
                ResponseEffects(CONFIG), "carol", None, None, "cookie", persistent=False
            )
            effects = ResponseEffects(CONFIG)
            session = await handler.verify(
                effects, f"sAccessToken={created.access_token}", None, "GET", None, "cookie"
            )
            assert session._persistent is None  # not known from the access token
            await session.mark_reauthenticated()
            assert session._persistent is False
            assert "Expires" not in effects.cookies["sAccessToken"]
            await session.update_jwt_payload({"v": 2})
            assert "Expires" not in effects.cookies["sAccessToken"]
            assert await session.revoke_other_sessions() == []

    asyncio.run(scenario())


def test_reissued_token_of_a_session_gone_is_a_browser_session_cookie() -> None:
    with SessionWard(CONFIG) as engine:
        handler = SessionHandler(engine)
        created = handler.create(ResponseEffects(CONFIG), "dave", None, None, "cookie")
        effects = ResponseEffects(CONFIG)
        session = handler.verify(effects, f"sAccessToken={created.access_token}", None, "GET", None, "cookie")
        engine.revoke_session(session.handle)
        with pytest.raises(UnauthorizedError):
            session.mark_reauthenticated()
        assert set(effects.cookies) >= {"sAccessToken", "sRefreshToken"}
        assert all(cookie.split(";")[0].endswith("=") for cookie in effects.cookies.values())


def test_header_mode_reissue_reads_no_persistence() -> None:
    with SessionWard(CONFIG) as engine:
        handler = SessionHandler(engine)
        created = handler.create(ResponseEffects(CONFIG), "erin", None, None, "header", persistent=False)
        effects = ResponseEffects(CONFIG)
        session = handler.verify(effects, None, None, "GET", None, "header", f"Bearer {created.access_token}")
        session.update_jwt_payload({"v": 2})
        assert session._persistent is None  # never looked up
        assert effects.cookies == {} and effects.headers["st-access-token"] == session.access_token
