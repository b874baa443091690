"""The async handler's verification without a coroutine (``verify_nowait``): a cached token
is answered at once, and every check the engine makes of a cached token still applies."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from sessionward import AsyncSessionWard, Config, SessionWard, TryRefreshTokenError, UnauthorizedError
from sessionward.session import AsyncSession, AsyncSessionHandler
from sessionward.transport import ResponseEffects
from sessionward.transport.protocol import WireMode


def make_config(tmp_path: Path, **options: Any) -> Config:
    options.setdefault("access_token_algorithm", "HS256")
    # Off unless a test needs it: a feed that is not live yet sends cached tokens to the row.
    options.setdefault("change_feed", False)
    return Config(store=f"sqlite:///{tmp_path}/sessions.db", cookie_secure=False, **options)


def verify_nowait(
    handler: AsyncSessionHandler, cookie: str, method: str = "GET", anti_csrf: str | None = None
) -> tuple[AsyncSession | Awaitable[AsyncSession], ResponseEffects]:
    effects = ResponseEffects(handler.config)
    answer = handler.verify_nowait(effects, cookie.encode("latin-1"), anti_csrf, method, None)
    return answer, effects


async def settled(answer: AsyncSession | Awaitable[AsyncSession]) -> AsyncSession:
    return answer if isinstance(answer, AsyncSession) else await answer


def test_a_cached_token_is_answered_at_once_in_the_mode_of_the_request(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(make_config(tmp_path)) as engine:
            handler = AsyncSessionHandler(engine)
            created = await handler.create(ResponseEffects(engine.config), "alice", {"r": 1}, None)
            for cookie, mode in (
                (f"sAccessToken={created.access_token}; sIdRefreshToken=i", WireMode.LEGACY),
                (f"sAccessToken={created.access_token}", WireMode.INFERRED_COOKIE),
            ):
                first, _ = verify_nowait(handler, cookie)
                await settled(first)  # cached from here on
                answer, effects = verify_nowait(handler, cookie)
                assert isinstance(answer, AsyncSession)
                assert (answer.user_id, answer.handle, answer.jwt_payload, answer.access_token) == (
                    "alice",
                    created.handle,
                    {"r": 1},
                    created.access_token,
                )
                assert answer.auth_time == created.auth_time
                assert effects.mode is mode
                assert not effects.pending

    asyncio.run(scenario())


def test_a_cached_token_of_a_session_revoked_elsewhere_is_refused_while_the_feed_is_not_live(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(make_config(tmp_path, change_feed=True)) as engine:
            handler = AsyncSessionHandler(engine)
            with SessionWard(make_config(tmp_path)) as other:
                tokens = other.create_new_session("bob")
                cookie = f"sAccessToken={tokens.access_token.value}"
                await settled(verify_nowait(handler, cookie)[0])  # cached
                feed = engine._core.feed
                feed.max_lag = 0.0  # the listener's contacts never make it live again
                feed.fresh_until = -math.inf
                other.revoke_session(tokens.handle)
                answer, _ = verify_nowait(handler, cookie)
                assert not isinstance(answer, AsyncSession)  # the row is read
                with pytest.raises(UnauthorizedError):
                    await settled(answer)

    asyncio.run(scenario())


@pytest.mark.parametrize("blacklisting", [False, True])
def test_a_cached_token_is_still_checked_for_anti_csrf_and_blacklisting(
    tmp_path: Path, blacklisting: bool
) -> None:
    async def scenario() -> None:
        config = make_config(tmp_path, enable_anti_csrf=True, access_token_blacklisting=blacklisting)
        async with AsyncSessionWard(config) as engine:
            handler = AsyncSessionHandler(engine)
            effects = ResponseEffects(config)
            created = await handler.create(effects, "carol", None, None)
            anti_csrf = effects.headers["anti-csrf"]
            cookie = f"sAccessToken={created.access_token}; sIdRefreshToken=i"
            session = await settled(verify_nowait(handler, cookie, "POST", anti_csrf)[0])
            assert session.handle == created.handle
            with pytest.raises(TryRefreshTokenError):  # cached, but no anti-csrf header
                await settled(verify_nowait(handler, cookie, "POST")[0])
            answer = verify_nowait(handler, cookie)[0]  # a GET: no anti-CSRF check
            assert isinstance(answer, AsyncSession) is not blacklisting  # blacklisting: the row
            assert (await settled(answer)).handle == created.handle
            await engine.revoke_session(created.handle)
            if blacklisting:
                with pytest.raises(UnauthorizedError):  # cached, but blacklisting reads the row
                    await settled(verify_nowait(handler, cookie)[0])

    asyncio.run(scenario())


def test_a_token_signed_by_a_key_this_process_has_not_loaded_is_verified_after_a_reload(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        config = make_config(tmp_path, access_token_algorithm="RS256")
        async with AsyncSessionWard(config) as engine:
            handler = AsyncSessionHandler(engine)
            await handler.create(ResponseEffects(config), "dave", None, None)  # keys loaded
            with SessionWard(config) as other:
                other.rotate_signing_key()
                tokens = other.create_new_session("dave")
            answer, _ = verify_nowait(handler, f"sAccessToken={tokens.access_token.value}")
            assert not isinstance(answer, AsyncSession)  # the keys are reloaded first
            assert (await settled(answer)).handle == tokens.handle

    asyncio.run(scenario())


def test_an_overlong_access_token_is_refused_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncSessionWard(make_config(tmp_path)) as engine:
            handler = AsyncSessionHandler(engine)
            await handler.create(ResponseEffects(engine.config), "erin", None, None)  # started
            with pytest.raises(TryRefreshTokenError):
                verify_nowait(handler, "sAccessToken=" + "a" * 100_000)

    asyncio.run(scenario())
