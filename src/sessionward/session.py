"""The request-level ``Session`` object and the framework-neutral request handlers that
adapters call.

A handler turns a request's raw inputs (``Cookie`` header, ``anti-csrf``, ``st-auth-mode``
and ``Authorization`` headers, method) into engine calls and records what the response
must carry in a :class:`~sessionward.transport.ResponseEffects`, which the adapter
applies; the mode the request speaks (:mod:`sessionward.transport.protocol`) decides where
the tokens are read and written. Nothing here
knows a framework; nothing here is global: effects live on the request.

Each decision is written once. Operations of several steps (create, refresh, a payload
update that re-issues the access token) are flows (:mod:`sessionward.engine.flow`) that
yield engine calls; the sync classes drive them with :func:`~sessionward.engine.flow.perform`
against a :class:`~sessionward.SessionWard`, the async classes with
:func:`~sessionward.engine.flow.aperform` against an :class:`~sessionward.AsyncSessionWard`.
Verification, the hot path, is one engine call between two shared pure steps, so its
drivers call the engine directly rather than pay for a generator on every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from .engine.aio import AsyncSessionWard
from .engine.flow import Flow, aperform, engine_call, perform
from .engine.sync import SessionWard
from .engine.types import SessionTokens, VerifiedSession
from .errors import GeneralError, SessionWardError, TokenTheftDetectedError, UnauthorizedError
from .transport.error_responses import ErrorResponse, error_response
from .transport.protocol import bearer_token, choose_mode, sign_out_path
from .transport.request import (
    RequestTokens,
    parse_session_cookies,
    single_header,
    stale_cookies_on_refresh,
    tokens_for_refresh,
    tokens_for_verification,
)
from .transport.response import ResponseEffects

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
_NO_TOKENS = RequestTokens(None, None, None)


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

    @contextmanager
    def _clear_if_gone(self) -> Iterator[None]:
        """Clear the session cookies when the store says the session no longer exists."""
        try:
            yield
        except UnauthorizedError:
            self._effects.clear_session()
            raise

    def _update_jwt_payload(self, payload: dict[str, Any]) -> Flow[None]:
        with self._clear_if_gone():
            yield from engine_call(SessionWard.update_jwt_payload, self.handle, payload)
        verified = yield from engine_call(SessionWard.regenerate_access_token, self.access_token, payload)
        self.jwt_payload = payload
        if verified is not None and verified.new_access_token is not None:
            assert verified.front_token is not None
            self._effects.set_access_token(verified.new_access_token, verified.front_token)
            self.access_token = verified.new_access_token.value

    def _revoke_session(self) -> Flow[None]:
        yield from engine_call(SessionWard.revoke_session, self.handle)
        self._effects.clear_session()

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
        """Overwrite the JWT payload and re-issue the current access token (same expiry).

        A payload over the session's size budget raises ``PayloadTooLargeError`` before
        anything is written."""
        perform(self._engine, self._update_jwt_payload(payload))

    def revoke_session(self) -> None:
        """End the session and clear it on the response, in the request's protocol mode
        (cookies expired; ``front-token: remove`` in the current protocol)."""
        perform(self._engine, self._revoke_session())


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
        """Overwrite the JWT payload and re-issue the current access token (same expiry).

        A payload over the session's size budget raises ``PayloadTooLargeError`` before
        anything is written."""
        await aperform(self._engine, self._update_jwt_payload(payload))

    async def revoke_session(self) -> None:
        """End the session and clear it on the response, in the request's protocol mode
        (cookies expired; ``front-token: remove`` in the current protocol)."""
        await aperform(self._engine, self._revoke_session())


S = TypeVar("S", Session, AsyncSession)


class _HandlerBase(Generic[E, S]):
    """What the sync and async handlers share: the flows and the pure steps."""

    session_class: type[S]

    def __init__(self, engine: E, on_token_theft_detected: Any, error_handler: ErrorHandler | None) -> None:
        self.engine: E = engine
        self.config = engine.config
        self.on_token_theft_detected = on_token_theft_detected
        self.error_handler = error_handler
        #: The path of the sign-out route ``init`` mounts (``None``: no sign-out route).
        self.sign_out_path = sign_out_path(self.config)

    def _create(
        self,
        effects: ResponseEffects,
        user_id: str,
        jwt_payload: dict[str, Any] | None,
        session_data: dict[str, Any] | None,
        auth_mode: str | None,
    ) -> Flow[S]:
        effects.mode = choose_mode("create", self.config.token_transfer, auth_mode, None, _NO_TOKENS)
        tokens = yield from engine_call(SessionWard.create_new_session, user_id, jwt_payload, session_data)
        try:
            effects.set_session(tokens)
        except GeneralError:
            # A cookie the browser would refuse: leave no orphan row behind.
            yield from engine_call(SessionWard.revoke_session, tokens.handle)
            raise
        return self._session_of(tokens, effects)

    def _refresh(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        auth_mode: str | None,
        authorization: str | None,
    ) -> Flow[S]:
        config = self.config
        transfer = config.token_transfer
        cookies = _NO_TOKENS if transfer == "header" else parse_session_cookies(cookie_header)
        bearer = bearer_token(authorization)
        mode = effects.mode = choose_mode("refresh", transfer, auth_mode, bearer, cookies)
        effects.stale_cookies = stale_cookies_on_refresh(cookies, config, mode, bearer)
        refresh_token = tokens_for_refresh(cookies, config, mode, bearer)
        tokens = yield from engine_call(SessionWard.refresh_session, refresh_token)
        effects.set_session(tokens)
        return self._session_of(tokens, effects)

    def _session_of(self, tokens: SessionTokens, effects: ResponseEffects) -> S:
        verified = VerifiedSession(tokens.handle, tokens.user_id, tokens.jwt_payload)
        # E and S vary together (SessionWard with Session, AsyncSessionWard with
        # AsyncSession), which a TypeVar pair cannot express.
        return self.session_class(self.engine, verified, tokens.access_token.value, effects)  # type: ignore[arg-type]

    def _verification(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None,
        authorization: str | None,
    ) -> tuple[str, bool]:
        config = self.config
        transfer = config.token_transfer
        tokens = _NO_TOKENS if transfer == "header" else parse_session_cookies(cookie_header)
        bearer = None if authorization is None else bearer_token(authorization)
        mode = effects.mode = choose_mode("verify", transfer, auth_mode, bearer, tokens)
        return tokens_for_verification(tokens, config, method, anti_csrf_check, mode, bearer)

    def _verified(self, verified: VerifiedSession, access_token: str, effects: ResponseEffects) -> S:
        if verified.new_access_token is not None:
            assert verified.front_token is not None
            effects.set_access_token(verified.new_access_token, verified.front_token)
            access_token = verified.new_access_token.value
        return self.session_class(self.engine, verified, access_token, effects)  # type: ignore[arg-type]

    def _theft_hook_call(self, error: SessionWardError) -> Any:
        """The theft hook's result (maybe awaitable) when it applies, else ``None``."""
        if isinstance(error, TokenTheftDetectedError) and self.on_token_theft_detected is not None:
            return self.on_token_theft_detected(error.session_handle, error.user_id)
        return None

    def _answer(self, effects: ResponseEffects, error: SessionWardError) -> ErrorResponse:
        answer = error_response(error, effects.config)
        if self.error_handler is not None:
            answer = self.error_handler(error, answer)
        if answer.clear_cookies:
            effects.clear_session()
        return answer


class SessionHandler(_HandlerBase[SessionWard, Session]):
    """Request-level session operations over a :class:`~sessionward.SessionWard`."""

    session_class = Session

    def __init__(
        self,
        engine: SessionWard,
        on_token_theft_detected: TheftHook | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        super().__init__(engine, on_token_theft_detected, error_handler)

    def create(
        self,
        effects: ResponseEffects,
        user_id: str,
        jwt_payload: dict[str, Any] | None,
        session_data: dict[str, Any] | None,
        auth_mode: str | None = None,
    ) -> Session:
        """Create a session and record its cookies and headers in ``effects``, in the mode
        the request's ``st-auth-mode`` header (``auth_mode``) asks for."""
        return perform(self.engine, self._create(effects, user_id, jwt_payload, session_data, auth_mode))

    def verify(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
    ) -> Session:
        """Verify the request's session; a minted replacement token goes into ``effects``.

        ``auth_mode`` and ``authorization`` are the raw ``st-auth-mode`` and
        ``Authorization`` headers (every copy, comma-joined)."""
        access_token, check = self._verification(
            effects, cookie_header, method, anti_csrf_check, auth_mode, authorization
        )
        verified = self.engine.get_session(access_token, single_header(anti_csrf_header), check)
        return self._verified(verified, access_token, effects)

    def refresh(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
    ) -> Session:
        """Rotate the tokens of a refresh request and record the new ones in ``effects``."""
        return perform(self.engine, self._refresh(effects, cookie_header, auth_mode, authorization))

    def sign_out(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        anti_csrf_header: str | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
    ) -> None:
        """The sign-out route: verify the request's session as a ``POST`` (anti-CSRF
        checked in the cookie modes), revoke it and clear it in the request's mode."""
        self.verify(
            effects, cookie_header, anti_csrf_header, "POST", None, auth_mode, authorization
        ).revoke_session()

    def answer_error(self, effects: ResponseEffects, error: SessionWardError) -> ErrorResponse:
        """The response to a session error; clears cookies and runs the theft hook as needed."""
        self._theft_hook_call(error)
        return self._answer(effects, error)


class AsyncSessionHandler(_HandlerBase[AsyncSessionWard, AsyncSession]):
    """Request-level session operations over an :class:`~sessionward.AsyncSessionWard`."""

    session_class = AsyncSession

    def __init__(
        self,
        engine: AsyncSessionWard,
        on_token_theft_detected: Callable[[str, str], Awaitable[Any] | Any] | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        super().__init__(engine, on_token_theft_detected, error_handler)

    async def create(
        self,
        effects: ResponseEffects,
        user_id: str,
        jwt_payload: dict[str, Any] | None,
        session_data: dict[str, Any] | None,
        auth_mode: str | None = None,
    ) -> AsyncSession:
        """Create a session and record its cookies and headers in ``effects``, in the mode
        the request's ``st-auth-mode`` header (``auth_mode``) asks for."""
        return await aperform(
            self.engine, self._create(effects, user_id, jwt_payload, session_data, auth_mode)
        )

    async def verify(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
    ) -> AsyncSession:
        """Verify the request's session; a minted replacement token goes into ``effects``.

        ``auth_mode`` and ``authorization`` are the raw ``st-auth-mode`` and
        ``Authorization`` headers (every copy, comma-joined)."""
        access_token, check = self._verification(
            effects, cookie_header, method, anti_csrf_check, auth_mode, authorization
        )
        verified = await self.engine.get_session(access_token, single_header(anti_csrf_header), check)
        return self._verified(verified, access_token, effects)

    async def refresh(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
    ) -> AsyncSession:
        """Rotate the tokens of a refresh request and record the new ones in ``effects``."""
        return await aperform(self.engine, self._refresh(effects, cookie_header, auth_mode, authorization))

    async def sign_out(
        self,
        effects: ResponseEffects,
        cookie_header: str | None,
        anti_csrf_header: str | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
    ) -> None:
        """The sign-out route: verify the request's session as a ``POST`` (anti-CSRF
        checked in the cookie modes), revoke it and clear it in the request's mode."""
        session = await self.verify(
            effects, cookie_header, anti_csrf_header, "POST", None, auth_mode, authorization
        )
        await session.revoke_session()

    async def answer_error(self, effects: ResponseEffects, error: SessionWardError) -> ErrorResponse:
        """The response to a session error; clears cookies and runs the theft hook as needed."""
        result = self._theft_hook_call(error)
        if isinstance(result, Awaitable):
            await result
        return self._answer(effects, error)
