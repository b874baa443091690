"""Request-level calls (``create_new_session``, ``get_session``, ``refresh_session``,
``preflight``) and the management calls, bound to the app serving the current request."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from ..engine.aio import AsyncSessionWard
from ..engine.types import SessionInformation
from ..errors import GeneralError
from ..session import AsyncSession, EffectsTarget
from ..transport.cors import preflight_headers
from ..transport.request import session_cookie_present
from .middleware import (
    _VERIFICATION_HEADERS,
    STATE_CONTEXT_KEY,
    STATE_SESSION_KEY,
    _apply_to_response,
    _auth_mode_header,
    _bindings,
    _current,
    _RequestContext,
    _verification_headers,
)

R = TypeVar("R", bound=Response)


# -- per-request context -----------------------------------------------------------------------------


# ``HTTPConnection`` is a ``Mapping``: ``isinstance`` against it goes through the ABC
# machinery on every call, so the hot path recognises a request by its ``scope``.


def _scope_context(scope: Scope) -> _RequestContext | None:
    state = scope.get("state")
    if state is not None:
        context = state.get(STATE_CONTEXT_KEY)
        if type(context) is _RequestContext:
            return context
    return _current.get()


def _context_or_none(connection: HTTPConnection | Response | None) -> _RequestContext | None:
    scope = getattr(connection, "scope", None)
    return _scope_context(scope) if isinstance(scope, dict) else _current.get()


def _missing_context() -> GeneralError:
    return GeneralError(
        "no sessionward request context: call sessionward.fastapi.init(app) before the app "
        "starts, and call this inside a request of that app"
    )


def _context(connection: HTTPConnection | Response | None) -> _RequestContext:
    context = _context_or_none(connection)
    if context is None:
        raise _missing_context()
    return context


def _remember_in(scope: Scope, session: AsyncSession) -> None:
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    state[STATE_SESSION_KEY] = session


def _remember(connection: HTTPConnection | Response | None, session: AsyncSession) -> None:
    scope = getattr(connection, "scope", None)
    if isinstance(scope, dict):
        _remember_in(scope, session)


def _apply_to(context: _RequestContext, *targets: object) -> None:
    for target in targets:
        if isinstance(target, Response):
            _apply_to_response(target, context.effects)


# -- request-level API ---------------------------------------------------------------------------------


async def create_new_session(
    request_or_response: HTTPConnection | Response,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
    *,
    response: Response | None = None,
    persistent: bool = True,
    refresh_token_validity: int | None = None,
) -> AsyncSession:
    """Create a session for ``user_id``; its cookies and headers go on the response.

    The first argument is the current ``Request`` or a ``Response`` (FastAPI's injected
    ``Response`` works; the current request is then found through the middleware's
    context variable). The middleware writes the cookies on whatever response the
    endpoint returns; a ``Response`` given (first argument or ``response=``) also gets
    them at once. The session is issued in the mode the request's ``st-auth-mode`` header
    asks for (none: the 2020 protocol). ``persistent=False`` (a "remember me" box left
    unticked) issues cookies without ``Expires``, which end with the browser session, and
    a refresh lifetime of at most ``non_persistent_refresh_token_validity``;
    ``refresh_token_validity`` (seconds) may shorten this session's idle lifetime. The
    client's IP address (see ``trusted_proxies``) and user agent are recorded. Raises
    :class:`~sessionward.errors.GeneralError` on failure.
    """
    context = _context(request_or_response)
    scope = getattr(request_or_response, "scope", None)
    auth_mode = _auth_mode_header(
        scope.get("headers", ()) if isinstance(scope, dict) else context.request_headers
    )
    session = await context.handler.create(
        context.effects,
        user_id,
        jwt_payload,
        session_data,
        auth_mode,
        persistent=persistent,
        refresh_token_validity=refresh_token_validity,
        client=context.client(),
    )
    _remember(request_or_response, session)
    _apply_to(context, request_or_response, response)
    return session


async def get_session(
    request: HTTPConnection,
    response: Response | None = None,
    anti_csrf_check: bool | None = None,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> AsyncSession:
    """Verify the request's session (``anti_csrf_check=None``: check unless GET/HEAD/OPTIONS).

    ``check_database=True`` also reads the session's row (a session revoked anywhere is
    refused at once, at the cost of one store read); ``max_auth_age`` (seconds) refuses a
    session whose user authenticated longer ago with ``ReauthenticationRequiredError``
    (answered 403 ``{"message": "re-authentication required"}``). Raises
    ``UnauthorizedError`` or ``TryRefreshTokenError`` (answered by the exception handler
    that :func:`~sessionward.fastapi.init` registered). A replacement access token minted
    by verification goes on the outgoing response (and on ``response`` if given).
    """
    scope = request.scope
    session = _verify(scope, anti_csrf_check, check_database, max_auth_age, False)
    if not isinstance(session, AsyncSession):
        assert session is not None
        session = await session
    # _verify made sure the scope has a state.
    scope["state"][STATE_SESSION_KEY] = session
    if response is not None:
        context = _scope_context(scope)
        if context is not None and context.pending:
            _apply_to_response(response, context.effects)
    return session


def _verify(
    scope: Scope,
    anti_csrf_check: bool | None,
    check_database: bool,
    max_auth_age: int | None,
    optional: bool,
) -> AsyncSession | Awaitable[AsyncSession] | None:
    """The request's session, verified without a coroutine when no I/O is needed (see
    ``AsyncSessionHandler.verify_nowait``); ``optional``: ``None`` when the request has
    no session at all (``session_cookie_present``). Makes sure ``scope["state"]`` exists.

    The hot path of every protected request, written flat (each call and each object
    touched costs more on a busy server than a tight loop shows)."""
    state = scope.get("state")
    context = None if state is None else state.get(STATE_CONTEXT_KEY)
    if type(context) is not _RequestContext:
        context = _current.get()
        if context is None:
            raise _missing_context()
        if state is None:
            scope["state"] = {}
    # _verification_headers' answer for a request whose only header of those it reads is
    # one Cookie header (every request of a page), without its call.
    cookie_header: bytes | str | None = None
    anti_csrf = auth_mode = authorization = None
    for name, value in scope.get("headers", ()):
        if name == b"cookie" and cookie_header is None and type(value) is bytes:
            cookie_header = value
        elif name in _VERIFICATION_HEADERS or not name.islower():
            cookie_header, anti_csrf, auth_mode, authorization = _verification_headers(scope)
            break
    handler = context.handler
    if optional and not session_cookie_present(cookie_header, auth_mode, authorization, handler.config):
        return None
    # The mode goes to the effects once they exist (the context's own is only where
    # they start from).
    target: EffectsTarget = context._effects or context
    return handler.verify_nowait(
        target,
        cookie_header,
        anti_csrf,
        scope.get("method", "GET"),
        anti_csrf_check,
        auth_mode,
        authorization,
        check_database,
        max_auth_age,
        context.client,
    )


async def refresh_session(request: HTTPConnection, response: Response | None = None) -> AsyncSession:
    """Rotate the tokens of a refresh request (the route ``init`` mounts calls this)."""
    context = _context(request)
    cookie_header, _, auth_mode, authorization = _verification_headers(request.scope)
    session = await context.handler.refresh(
        context.effects, cookie_header, auth_mode, authorization, client=context.client()
    )
    _remember(request, session)
    _apply_to(context, response)
    return session


def preflight(response: R) -> R:
    """Add the CORS preflight headers the protocol needs (``anti-csrf``, ``fdi-version``,
    ``rid``, ``st-auth-mode``, ``authorization``... to ``Access-Control-Allow-Headers``,
    merged; ``Access-Control-Allow-Credentials: true``) to ``response`` and return it."""
    existing = ", ".join(response.headers.getlist("access-control-allow-headers")) or None
    for name, value in preflight_headers(existing):
        response.headers[name] = value
    return response


# -- management calls ----------------------------------------------------------------------------------


def get_engine(app: Starlette | None = None) -> AsyncSessionWard:
    """The :class:`~sessionward.AsyncSessionWard` of ``app``; else of the app serving the
    current request; else of the one running app (between lifespan startup and shutdown);
    else of the one initialised app that was not shut down."""
    if app is not None:
        engine = getattr(app.state, "sessionward", None)
        if not isinstance(engine, AsyncSessionWard):
            raise GeneralError("sessionward.fastapi.init() was not called for this app")
        return engine
    context = _current.get()
    if context is not None:
        return context.handler.engine
    bindings = list(_bindings)
    candidates = [binding for binding in bindings if binding.running] or [
        binding for binding in bindings if not binding.closed
    ]
    if len(candidates) == 1:
        return candidates[0].engine
    raise GeneralError(
        "cannot tell which app's sessionward engine to use outside a request "
        f"({len(candidates)} candidate apps): pass app=..."
    )


async def revoke_session(handle: str, *, app: Starlette | None = None) -> bool:
    """End one session; return whether it existed."""
    return await get_engine(app).revoke_session(handle)


async def revoke_multiple_sessions(handles: list[str], *, app: Starlette | None = None) -> list[str]:
    """End these sessions; return the handles that existed."""
    return await get_engine(app).revoke_multiple_sessions(handles)


async def revoke_all_sessions_for_user(user_id: str, *, app: Starlette | None = None) -> list[str]:
    """End every session of ``user_id``; return their handles."""
    return await get_engine(app).revoke_all_sessions_for_user(user_id)


async def revoke_other_sessions(user_id: str, keep: str, *, app: Starlette | None = None) -> list[str]:
    """End every session of ``user_id`` except ``keep`` (a handle); return the handles
    ended (``await session.revoke_other_sessions()`` does this for the current session)."""
    return await get_engine(app).revoke_other_sessions(user_id, keep)


async def get_all_sessions_for_user(
    user_id: str, *, app: Starlette | None = None
) -> list[SessionInformation]:
    """Everything stored about each live session of ``user_id``, most recently active
    first: when it was created and last active, the client's IP address and user agent,
    when the user last authenticated, whether it is persistent (a "your devices" page)."""
    return await get_engine(app).get_all_sessions_for_user(user_id)


async def get_all_session_handles_for_user(user_id: str, *, app: Starlette | None = None) -> list[str]:
    """Handles of ``user_id``'s live sessions."""
    return await get_engine(app).get_all_session_handles_for_user(user_id)


async def get_session_data(handle: str, *, app: Starlette | None = None) -> dict[str, Any]:
    """The private session data; ``UnauthorizedError`` if the session is gone."""
    return await get_engine(app).get_session_data(handle)


async def update_session_data(handle: str, data: dict[str, Any], *, app: Starlette | None = None) -> None:
    """Overwrite the private session data; ``UnauthorizedError`` if the session is gone."""
    await get_engine(app).update_session_data(handle, data)


async def get_jwt_payload(handle: str, *, app: Starlette | None = None) -> dict[str, Any]:
    """The JWT payload stored for the session."""
    return await get_engine(app).get_jwt_payload(handle)


async def update_jwt_payload(handle: str, payload: dict[str, Any], *, app: Starlette | None = None) -> None:
    """Overwrite the stored JWT payload (access tokens issued from now on carry it; use
    ``session.update_jwt_payload`` to also re-issue the current request's token)."""
    await get_engine(app).update_jwt_payload(handle, payload)


async def get_session_information(handle: str, *, app: Starlette | None = None) -> SessionInformation:
    """Everything stored about a session; ``UnauthorizedError`` if it is gone."""
    return await get_engine(app).get_session_information(handle)
