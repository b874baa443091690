"""The request-level ``Session`` object and the framework-neutral request handlers that
adapters call.

A handler turns a request's raw inputs (``Cookie`` header, ``anti-csrf``, ``st-auth-mode``
and ``Authorization`` headers, method) into engine calls and records what the response
must carry in a :class:`~sessionward.transport.ResponseEffects`, which the adapter
applies; the mode the request speaks (:mod:`sessionward.transport.protocol`) decides where
the tokens are read and written. Nothing here
knows a framework; nothing here is global: effects live on the request.

Each decision is written once. Operations of several steps (a payload update or a
re-authentication that re-issues the access token) are flows
(:mod:`sessionward.engine.flow`) that yield engine calls; the sync classes drive them with
:func:`~sessionward.engine.flow.perform` against a :class:`~sessionward.SessionWard`, the
async classes with :func:`~sessionward.engine.flow.aperform` against an
:class:`~sessionward.AsyncSessionWard`. Create, refresh and verification (the hot path)
are one engine call (with keyword options) between shared pure steps, so their drivers
call the engine directly.

Remember-me: a session created with ``persistent=False`` gets cookies without
``Expires`` (they end with the browser session), on creation, on every refresh
(``SessionTokens.persistent``) and on every re-issued access token; a re-issue that does
not know the session's persistence (verification's replacement token after a refresh, a
payload update, a re-authentication on a request that did not create the session) reads it
from the store once (one read, on those rare paths only; none in header mode, which writes
no cookie).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from .engine.aio import AsyncSessionWard
from .engine.flow import Flow, aperform, engine_call, perform
from .engine.sync import SessionWard
from .engine.types import ClientInfo, SessionInformation, SessionTokens, VerifiedSession
from .errors import GeneralError, SessionWardError, TokenTheftDetectedError, UnauthorizedError
from .transport.client_address import TrustedProxies, client_ip, user_agent
from .transport.error_responses import ErrorResponse, error_response
from .transport.protocol import WireMode, bearer_token, choose_mode, sign_out_path
from .transport.request import (
    SAFE_METHODS,
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
    "ClientSource",
    "EffectsTarget",
    "ErrorHandler",
    "Session",
    "SessionHandler",
    "TheftHook",
]

E = TypeVar("E", SessionWard, AsyncSessionWard)
TheftHook = Callable[[str, str], Any]
ErrorHandler = Callable[[SessionWardError, ErrorResponse], ErrorResponse]
"""Overrides the answer to a session error: gets the error and the default answer."""
ClientSource = Callable[[], ClientInfo]
"""What an adapter gives verification: a zero-argument callable that reads the request's
client (IP address and user agent), called only when verification writes to the store."""
_NO_TOKENS = RequestTokens(None, None, None)
_LEGACY = WireMode.LEGACY
_INFERRED_COOKIE = WireMode.INFERRED_COOKIE


class EffectsTarget(Protocol):
    """What a verification writes to: ``mode``, the request's protocol mode (a plain
    attribute: it is written on every verification), and ``effects``, the
    :class:`~sessionward.transport.ResponseEffects` that a later write (a replaced access
    token, a revocation) goes to. A ``ResponseEffects`` is one (its ``effects`` is
    itself); an adapter may pass an object that creates its ``ResponseEffects``, starting
    from ``mode``, only when ``effects`` is first read (the FastAPI middleware's request
    context), so that a verification writing nothing makes none."""

    mode: WireMode

    @property
    def effects(self) -> ResponseEffects:
        """The effects to write to (made on first access, for an adapter's target)."""


class _SessionBase(Generic[E]):
    __slots__ = (
        "_effects",
        "_engine",
        "_persistent",
        "access_token",
        "auth_time",
        "handle",
        "jwt_payload",
        "user_id",
    )

    def __init__(
        self,
        engine: E,
        verified: VerifiedSession,
        access_token: str,
        effects: EffectsTarget,
        persistent: bool | None = None,
    ) -> None:
        # One flat __init__ (no super() chain): a session object is built on every request.
        # The named tuple unpacked in one step (its fields read by name cost a lookup each).
        handle, user_id, jwt_payload, _, _, auth_time, _ = verified
        self.user_id: str = user_id
        self.handle: str = handle
        self.jwt_payload: dict[str, Any] = jwt_payload
        self.access_token: str = access_token
        self.auth_time: int = auth_time
        self._effects = effects
        self._engine: E = engine
        # Whether the session's cookies outlive the browser (None: not known yet; read
        # from the store the first time a re-issued access token needs to know).
        self._persistent = persistent

    @contextmanager
    def _clear_if_gone(self) -> Iterator[None]:
        """Clear the session cookies when the store says the session no longer exists."""
        try:
            yield
        except UnauthorizedError:
            self._effects.effects.clear_session()
            raise

    def _persistence(self, verified_persistent: bool | None = None) -> Flow[bool]:
        persistent = self._persistent
        if persistent is None:
            persistent = self._persistent = verified_persistent
        if persistent is None:
            if self._effects.effects.mode is WireMode.HEADER:
                return True  # no cookie is written: nothing to look up

            persistent = yield from _stored_persistence(self.handle)
            self._persistent = persistent
        return persistent

    def _reissue(self, verified: VerifiedSession) -> Flow[None]:
        """Deliver the replacement access token of ``verified`` (if any) on the response."""
        if verified.new_access_token is not None:
            assert verified.front_token is not None
            persistent = yield from self._persistence(verified.persistent)
            self._effects.effects.set_access_token(
                verified.new_access_token, verified.front_token, persistent
            )
            self.access_token = verified.new_access_token.value

    def _update_jwt_payload(self, payload: dict[str, Any]) -> Flow[None]:
        with self._clear_if_gone():
            yield from engine_call(SessionWard.update_jwt_payload, self.handle, payload)
        verified = yield from engine_call(SessionWard.regenerate_access_token, self.access_token, payload)
        self.jwt_payload = payload
        if verified is not None:
            yield from self._reissue(verified)

    def _mark_reauthenticated(self) -> Flow[None]:
        with self._clear_if_gone():
            verified = yield from engine_call(
                SessionWard.mark_reauthenticated, self.handle, self.access_token
            )
        self.auth_time = verified.auth_time
        yield from self._reissue(verified)

    def _revoke_session(self) -> Flow[None]:
        yield from engine_call(SessionWard.revoke_session, self.handle)
        self._effects.effects.clear_session()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} user_id={self.user_id!r} handle={self.handle!r}>"


def _stored_persistence(handle: str) -> Flow[bool]:
    """Whether a session is persistent, from its row. A session that is gone gets
    browser-session cookies: they carry nothing that could outlive it."""
    try:
        info: SessionInformation = yield from engine_call(SessionWard.get_session_information, handle)
    except UnauthorizedError:
        return False
    return info.persistent


class Session(_SessionBase[SessionWard]):
    """The session of the current request (sync frameworks).

    Attributes ``user_id``, ``handle``, ``jwt_payload``, ``access_token`` and
    ``auth_time`` (when the user last authenticated, ms since the epoch, whole seconds;
    0 when unknown) need no I/O; the methods touch the store. A method that finds the
    session gone raises ``UnauthorizedError`` and clears the session cookies on the
    response.
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

    def mark_reauthenticated(self) -> None:
        """Record that the user has just proved who they are again (a password re-entered,
        a second factor): the session's ``auth_time`` becomes now, and a replacement access
        token carrying it (same expiry) goes on the response, so ``max_auth_age`` checks
        pass from the next request on. Call it from the route that re-authenticates."""
        perform(self._engine, self._mark_reauthenticated())

    def revoke_other_sessions(self) -> list[str]:
        """End every other session of this user ("sign out my other devices"), keeping
        this one; return the handles ended."""
        return self._engine.revoke_other_sessions(self.user_id, self.handle)


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

    async def mark_reauthenticated(self) -> None:
        """Record that the user has just proved who they are again (a password re-entered,
        a second factor): the session's ``auth_time`` becomes now, and a replacement access
        token carrying it (same expiry) goes on the response, so ``max_auth_age`` checks
        pass from the next request on. Call it from the route that re-authenticates."""
        await aperform(self._engine, self._mark_reauthenticated())

    async def revoke_other_sessions(self) -> list[str]:
        """End every other session of this user ("sign out my other devices"), keeping
        this one; return the handles ended."""
        return await self._engine.revoke_other_sessions(self.user_id, self.handle)


S = TypeVar("S", Session, AsyncSession)


class _HandlerBase(Generic[E, S]):
    """What the sync and async handlers share: the pure steps around each engine call."""

    session_class: type[S]

    def __init__(self, engine: E, on_token_theft_detected: Any, error_handler: ErrorHandler | None) -> None:
        self.engine: E = engine
        self.config = engine.config
        self.on_token_theft_detected = on_token_theft_detected
        self.error_handler = error_handler
        #: The path of the sign-out route ``init`` mounts (``None``: no sign-out route).
        self.sign_out_path = sign_out_path(self.config)
        #: :attr:`Config.trusted_proxies <sessionward.Config>`, parsed once.
        self.trusted_proxies = TrustedProxies.from_config(self.config)
        self._reads_cookies = self.config.token_transfer != "header"  # noqa: S105

    def client_info(
        self, peer: str | None, forwarded_for: str | None, user_agent_header: str | None
    ) -> ClientInfo:
        """The client of a request from its connection peer, its ``X-Forwarded-For``
        headers (joined with ``","``) and its ``User-Agent`` header (see
        :mod:`sessionward.transport.client_address`)."""
        return ClientInfo(client_ip(peer, forwarded_for, self.trusted_proxies), user_agent(user_agent_header))

    def _create_mode(self, effects: ResponseEffects, auth_mode: str | None) -> None:
        effects.mode = choose_mode("create", self.config.token_transfer, auth_mode, None, _NO_TOKENS)

    def _refresh_token(
        self,
        effects: ResponseEffects,
        cookie_header: str | bytes | None,
        auth_mode: str | None,
        authorization: str | None,
    ) -> str:
        config = self.config
        transfer = config.token_transfer
        cookies = _NO_TOKENS if transfer == "header" else parse_session_cookies(cookie_header)
        bearer = bearer_token(authorization)
        mode = effects.mode = choose_mode("refresh", transfer, auth_mode, bearer, cookies)
        effects.stale_cookies = stale_cookies_on_refresh(cookies, config, mode, bearer)
        return tokens_for_refresh(cookies, config, mode, bearer)

    def _session_of(self, tokens: SessionTokens, effects: ResponseEffects) -> S:
        verified = VerifiedSession(
            tokens.handle, tokens.user_id, tokens.jwt_payload, auth_time=tokens.auth_time
        )
        # E and S vary together (SessionWard with Session, AsyncSessionWard with
        # AsyncSession), which a TypeVar pair cannot express.
        engine: Any = self.engine
        return self.session_class(engine, verified, tokens.access_token.value, effects, tokens.persistent)

    def _verification(
        self,
        effects: EffectsTarget,
        cookie_header: str | bytes | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None,
        authorization: str | None,
    ) -> tuple[str, bool]:
        if auth_mode is None and authorization is None and self._reads_cookies:
            # What choose_mode and tokens_for_verification decide for a request with one
            # access cookie (and at most one sIdRefreshToken), no st-auth-mode and no
            # Authorization, without their calls: the request of every page a client
            # loads. Anything else takes the general path below.
            tokens = parse_session_cookies(cookie_header)
            access_token = tokens.access_token
            id_refresh_token = tokens.id_refresh_token
            if type(access_token) is str and (id_refresh_token is None or type(id_refresh_token) is str):
                effects.mode = _INFERRED_COOKIE if id_refresh_token is None else _LEGACY
                if anti_csrf_check is None:
                    anti_csrf_check = method not in SAFE_METHODS and method.upper() not in SAFE_METHODS
                return access_token, anti_csrf_check
        config = self.config
        transfer = config.token_transfer
        tokens = _NO_TOKENS if transfer == "header" else parse_session_cookies(cookie_header)
        bearer = None if authorization is None else bearer_token(authorization)
        mode = effects.mode = choose_mode("verify", transfer, auth_mode, bearer, tokens)
        return tokens_for_verification(tokens, config, method, anti_csrf_check, mode, bearer)

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
        *,
        persistent: bool = True,
        refresh_token_validity: int | None = None,
        client: ClientInfo | None = None,
    ) -> Session:
        """Create a session and record its cookies and headers in ``effects``, in the mode
        the request's ``st-auth-mode`` header (``auth_mode``) asks for; ``persistent``,
        ``refresh_token_validity`` and ``client`` go to the engine's
        ``create_new_session``."""
        self._create_mode(effects, auth_mode)
        engine = self.engine
        tokens = engine.create_new_session(
            user_id,
            jwt_payload,
            session_data,
            persistent=persistent,
            refresh_token_validity=refresh_token_validity,
            client=client,
        )
        try:
            effects.set_session(tokens)
        except GeneralError:
            # A cookie the browser would refuse: leave no orphan row behind.
            engine.revoke_session(tokens.handle)
            raise
        return self._session_of(tokens, effects)

    def verify(
        self,
        effects: ResponseEffects,
        cookie_header: str | bytes | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
        *,
        check_database: bool = False,
        max_auth_age: int | None = None,
        client: ClientSource | None = None,
    ) -> Session:
        """Verify the request's session; a minted replacement token goes into ``effects``.

        ``auth_mode`` and ``authorization`` are the raw ``st-auth-mode`` and
        ``Authorization`` headers (every copy, comma-joined); ``check_database``,
        ``max_auth_age`` and ``client`` (called only if verification writes to the
        store) go to the engine's ``get_session``."""
        access_token, check = self._verification(
            effects, cookie_header, method, anti_csrf_check, auth_mode, authorization
        )
        verified = self.engine.get_session(
            access_token,
            single_header(anti_csrf_header),
            check,
            check_database=check_database,
            max_auth_age=max_auth_age,
            client=client,
        )
        session = Session(self.engine, verified, access_token, effects)
        if verified.new_access_token is not None:
            perform(self.engine, session._reissue(verified))
        return session

    def refresh(
        self,
        effects: ResponseEffects,
        cookie_header: str | bytes | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
        *,
        client: ClientInfo | None = None,
    ) -> Session:
        """Rotate the tokens of a refresh request and record the new ones in ``effects``."""
        refresh_token = self._refresh_token(effects, cookie_header, auth_mode, authorization)
        tokens = self.engine.refresh_session(refresh_token, client=client)
        effects.set_session(tokens)
        return self._session_of(tokens, effects)

    def sign_out(
        self,
        effects: ResponseEffects,
        cookie_header: str | bytes | None,
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
        *,
        persistent: bool = True,
        refresh_token_validity: int | None = None,
        client: ClientInfo | None = None,
    ) -> AsyncSession:
        """Create a session and record its cookies and headers in ``effects``, in the mode
        the request's ``st-auth-mode`` header (``auth_mode``) asks for; ``persistent``,
        ``refresh_token_validity`` and ``client`` go to the engine's
        ``create_new_session``."""
        self._create_mode(effects, auth_mode)
        engine = self.engine
        tokens = await engine.create_new_session(
            user_id,
            jwt_payload,
            session_data,
            persistent=persistent,
            refresh_token_validity=refresh_token_validity,
            client=client,
        )
        try:
            effects.set_session(tokens)
        except GeneralError:
            await engine.revoke_session(tokens.handle)
            raise
        return self._session_of(tokens, effects)

    async def verify(
        self,
        effects: EffectsTarget,
        cookie_header: str | bytes | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
        *,
        check_database: bool = False,
        max_auth_age: int | None = None,
        client: ClientSource | None = None,
    ) -> AsyncSession:
        """Verify the request's session; a minted replacement token goes into ``effects``.

        ``auth_mode`` and ``authorization`` are the raw ``st-auth-mode`` and
        ``Authorization`` headers (every copy, comma-joined); ``check_database``,
        ``max_auth_age`` and ``client`` (called only if verification writes to the
        store) go to the engine's ``get_session``."""
        session = self.verify_nowait(
            effects,
            cookie_header,
            anti_csrf_header,
            method,
            anti_csrf_check,
            auth_mode,
            authorization,
            check_database,
            max_auth_age,
            client,
        )
        return session if isinstance(session, AsyncSession) else await session

    def verify_nowait(
        self,
        effects: EffectsTarget,
        cookie_header: str | bytes | None,
        anti_csrf_header: str | None,
        method: str,
        anti_csrf_check: bool | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
        # Positional (see AsyncSessionWard.get_session): this is the hot path.
        check_database: bool = False,
        max_auth_age: int | None = None,
        client: ClientSource | None = None,
    ) -> AsyncSession | Awaitable[AsyncSession]:
        """:meth:`verify` without a coroutine when it needs no I/O: the session itself
        when the engine answers at once and nothing is written to ``effects`` (a cached
        token), else an awaitable of it. Errors found at once are raised at once."""
        if auth_mode is None and authorization is None and self._reads_cookies:
            # _verification's shortcut for a request carrying only cookies, inline: this
            # is every protected request of a page.
            tokens = parse_session_cookies(cookie_header)
            access_token = tokens[0]
            id_refresh_token = tokens[2]
            if type(access_token) is str and (id_refresh_token is None or type(id_refresh_token) is str):
                effects.mode = _INFERRED_COOKIE if id_refresh_token is None else _LEGACY
                if anti_csrf_check is None:
                    anti_csrf_check = method not in SAFE_METHODS and method.upper() not in SAFE_METHODS
                check = anti_csrf_check
            else:
                access_token, check = self._verification(
                    effects, cookie_header, method, anti_csrf_check, auth_mode, authorization
                )
        else:
            access_token, check = self._verification(
                effects, cookie_header, method, anti_csrf_check, auth_mode, authorization
            )
        if anti_csrf_header is not None:
            anti_csrf_header = single_header(anti_csrf_header)
        engine = self.engine
        verified = engine.get_session_nowait(
            access_token, anti_csrf_header, check, check_database, max_auth_age, client
        )
        if type(verified) is VerifiedSession and verified.new_access_token is None:
            return AsyncSession(engine, verified, access_token, effects)
        return self._verified_later(effects, access_token, verified)

    async def _verified_later(
        self,
        effects: EffectsTarget,
        access_token: str,
        pending: VerifiedSession | Awaitable[VerifiedSession],
    ) -> AsyncSession:
        verified = pending if isinstance(pending, VerifiedSession) else await pending
        session = AsyncSession(self.engine, verified, access_token, effects)
        if verified.new_access_token is not None:
            await aperform(self.engine, session._reissue(verified))
        return session

    async def refresh(
        self,
        effects: ResponseEffects,
        cookie_header: str | bytes | None,
        auth_mode: str | None = None,
        authorization: str | None = None,
        *,
        client: ClientInfo | None = None,
    ) -> AsyncSession:
        """Rotate the tokens of a refresh request and record the new ones in ``effects``."""
        refresh_token = self._refresh_token(effects, cookie_header, auth_mode, authorization)
        tokens = await self.engine.refresh_session(refresh_token, client=client)
        effects.set_session(tokens)
        return self._session_of(tokens, effects)

    async def sign_out(
        self,
        effects: ResponseEffects,
        cookie_header: str | bytes | None,
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
