"""The request-level ``Session`` object (SPEC §3.2) and the framework-neutral request
handlers that adapters call.

A handler turns a request's raw inputs (``Cookie`` header, ``anti-csrf`` header, method)
into engine calls and records what the response must carry in a
:class:`~sessionward.transport.ResponseEffects`, which the adapter applies. Nothing here
knows a framework; nothing here is global: effects live on the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from .engine.aio import AsyncSessionWard
from .engine.sync import SessionWard
from .engine.types import VerifiedSession
from .errors import GeneralError, SessionWardError, TokenTheftDetectedError, UnauthorizedError
from .transport import (
    ErrorResponse,
    ResponseEffects,
    error_response,
    parse_session_cookies,
    single_header,
    tokens_for_refresh,
    tokens_for_verification,
)

__all__ = [
    "AsyncSession",
    "AsyncSessionHandler",
    "ErrorHandler",
    "Session",
    "SessionHandler",
    "TheftHook",
]

E = TypeVar("E", SessionWard, AsyncSessionWard)
TheftHook = Callable[[str, str], Any]
ErrorHandler = Callable[[SessionWardError, ErrorResponse], ErrorResponse]
"""Overrides the answer to a session error: gets the error and the default answer."""


class _SessionBase(Generic[E]):
    __slots__ = ("_effects", "_engine", "access_token", "handle", "jwt_payload", "user_id")

    def __init__(
        self, engine: E, verified: VerifiedSession, access_token: str, effects: ResponseEffects
    ) -> None:
        # One flat __init__ (no super() chain): a session object is built on every request.
        self.user_id: str = verified.user_id
        self.handle: str = verified.handle
        self.jwt_payload: dict[str, Any] = verified.jwt_payload
        self.access_token: str = access_token
        self._effects = effects
        self._engine: E = engine

    def _gone(self) -> None:
        self._effects.clear_session()

    @contextmanager
    def _clear_if_gone(self) -> Iterator[None]:
        """Clear the session cookies when the store says the session no longer exists."""
        try:
            yield
        except UnauthorizedError:
            self._gone()
            raise

    def _reissued(self, verified: VerifiedSession | None, payload: dict[str, Any]) -> None:
        self.jwt_payload = payload
        if verified is not None and verified.new_access_token is not None:
            assert verified.front_token is not None
            self._effects.set_access_token(verified.new_access_token, verified.front_token)
            self.access_token = verified.new_access_token.value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} user_id={self.user_id!r} handle={self.handle!r}>"


class Session(_SessionBase[SessionWard]):
    """The session of the current request (sync frameworks).

    Attributes ``user_id``, ``handle``, ``jwt_payload`` and ``access_token`` need no I/O;
    the methods touch the store. A method that finds the session gone raises
    ``UnauthorizedError`` and clears the session cookies on the response.
    """

    __slots__ = ()

    def get_session_data(self) -> dict[str, Any]:
        """The private session data."""
        with self._clear_if_gone():
            return self._engine.get_session_data(self.handle)

    def update_session_data(self, data: dict[str, Any]) -> None:
        """Overwrite the private session data."""
        with self._clear_if_gone():
            self._engine.update_session_data(self.handle, data)

    def update_jwt_payload(self, payload: dict[str, Any]) -> None:
        """Overwrite the JWT payload and re-issue the current access token (same expiry)."""
        with self._clear_if_gone():
            self._engine.update_jwt_payload(self.handle, payload)
        self._reissued(self._engine.regenerate_access_token(self.access_token, payload), payload)

    def revoke_session(self) -> None:
        """End the session and clear its cookies on the response."""
        self._engine.revoke_session(self.handle)
        self._gone()


class AsyncSession(_SessionBase[AsyncSessionWard]):
    """The session of the current request (asyncio frameworks); I/O methods are coroutines."""

    __slots__ = ()

    async def get_session_data(self) -> dict[str, Any]:
        """The private session data."""
        with self._clear_if_gone():
            return await self._engine.get_session_data(self.handle)

    async def update_session_data(self, data: dict[str, Any]) -> None:
        """Overwrite the private session data."""
        with self._clear_if_gone():
            await self._engine.update_session_data(self.handle, data)

    async def update_jwt_payload(self, payload: dict[str, Any]) -> None:
        """Overwrite the JWT payload and re-issue the current access token (same expiry)."""
        with self._clear_if_gone():
            await self._engine.update_jwt_payload(self.handle, payload)
        self._reissued(await self._engine.regenerate_access_token(self.access_token, payload), payload)

    async def revoke_session(self) -> None:
        """End the session and clear its cookies on the response."""
        await self._engine.revoke_session(self.handle)
        self._gone()


def _answer(
    effects: ResponseEffects, error: SessionWardError, handler: ErrorHandler | None
) -> ErrorResponse:
    answer = error_response(error, effects.config)
    if handler is not None:
        answer = handler(error, answer)
    if answer.clear_cookies:
        effects.clear_session()
    return answer


class SessionHandler:
    """Request-level session operations over a :class:`~sessionward.SessionWard`."""

    def __init__(
        self,
        engine: SessionWard,
        on_token_theft_detected: TheftHook | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        self.engine = engine
        self.config = engine.config
        self.on_token_theft_detected = on_token_theft_detected
        self.error_handler = error_handler

    def create(
        self,
        effects: ResponseEffects,
        user_id: str,
        jwt_payload: dict[str, Any] | None,
        session_data: dict[str, Any] | None,
    ) -> Session:
        """Create a session and record its cookies and headers in ``effects``."""
        tokens = self.engine.create_new_session(user_id, jwt_payload, session_data)
        try:
            effects.set_session(tokens)
        except GeneralError:
            self.engine.revoke_session(tokens.handle)  # cookies too large: leave no orphan row
            raise
        verified = VerifiedSession(tokens.handle, tokens.user_id, tokens.jwt_payload)
        return Session(self.engine, verified, tokens.access_token.value, effects)

    def verify(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
    ) -> Session:
        """Verify the request's session; a minted replacement token goes into ``effects``."""
        access_token, check = tokens_for_verification(
            parse_session_cookies(cookie_header), self.config, method, anti_csrf_check
        )
        verified = self.engine.get_session(access_token, single_header(anti_csrf_header), check)
        if verified.new_access_token is not None:
            assert verified.front_token is not None
            effects.set_access_token(verified.new_access_token, verified.front_token)
            access_token = verified.new_access_token.value
        return Session(self.engine, verified, access_token, effects)

    def refresh(self, effects: ResponseEffects, cookie_header: str | None) -> Session:
        """Rotate the tokens of a refresh request and record the new ones in ``effects``."""
        refresh_token = tokens_for_refresh(parse_session_cookies(cookie_header), self.config)
        tokens = self.engine.refresh_session(refresh_token)
        effects.set_session(tokens)
        verified = VerifiedSession(tokens.handle, tokens.user_id, tokens.jwt_payload)
        return Session(self.engine, verified, tokens.access_token.value, effects)

    def answer_error(self, effects: ResponseEffects, error: SessionWardError) -> ErrorResponse:
        """The response to a session error; clears cookies and runs the theft hook as needed."""
        if isinstance(error, TokenTheftDetectedError) and self.on_token_theft_detected is not None:
            self.on_token_theft_detected(error.session_handle, error.user_id)
        return _answer(effects, error, self.error_handler)


class AsyncSessionHandler:
    """Request-level session operations over an :class:`~sessionward.AsyncSessionWard`."""

    def __init__(
        self,
        engine: AsyncSessionWard,
        on_token_theft_detected: Callable[[str, str], Awaitable[Any] | Any] | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        self.engine = engine
        self.config = engine.config
        self.on_token_theft_detected = on_token_theft_detected
        self.error_handler = error_handler

    async def create(
        self,
        effects: ResponseEffects,
        user_id: str,
        jwt_payload: dict[str, Any] | None,
        session_data: dict[str, Any] | None,
    ) -> AsyncSession:
        """Create a session and record its cookies and headers in ``effects``."""
        tokens = await self.engine.create_new_session(user_id, jwt_payload, session_data)
        try:
            effects.set_session(tokens)
        except GeneralError:
            await self.engine.revoke_session(tokens.handle)  # cookies too large: no orphan row
            raise
        verified = VerifiedSession(tokens.handle, tokens.user_id, tokens.jwt_payload)
        return AsyncSession(self.engine, verified, tokens.access_token.value, effects)

    async def verify(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
    ) -> AsyncSession:
        """Verify the request's session; a minted replacement token goes into ``effects``."""
        access_token, check = tokens_for_verification(
            parse_session_cookies(cookie_header), self.config, method, anti_csrf_check
        )
        verified = await self.engine.get_session(access_token, single_header(anti_csrf_header), check)
        if verified.new_access_token is not None:
            assert verified.front_token is not None
            effects.set_access_token(verified.new_access_token, verified.front_token)
            access_token = verified.new_access_token.value
        return AsyncSession(self.engine, verified, access_token, effects)

    async def refresh(self, effects: ResponseEffects, cookie_header: str | None) -> AsyncSession:
        """Rotate the tokens of a refresh request and record the new ones in ``effects``."""
        refresh_token = tokens_for_refresh(parse_session_cookies(cookie_header), self.config)
        tokens = await self.engine.refresh_session(refresh_token)
        effects.set_session(tokens)
        verified = VerifiedSession(tokens.handle, tokens.user_id, tokens.jwt_payload)
        return AsyncSession(self.engine, verified, tokens.access_token.value, effects)

    async def answer_error(self, effects: ResponseEffects, error: SessionWardError) -> ErrorResponse:
        """The response to a session error; clears cookies and runs the theft hook as needed."""
        if isinstance(error, TokenTheftDetectedError) and self.on_token_theft_detected is not None:
            result = self.on_token_theft_detected(error.session_handle, error.user_id)
            if isinstance(result, Awaitable):
                await result
        return _answer(effects, error, self.error_handler)
