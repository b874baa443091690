"""FastAPI and Starlette integration (pure ASGI, async throughout).

::

    from fastapi import Depends, FastAPI, Request
    from sessionward.fastapi import AsyncSession, create_new_session, init, verify_session

    app = FastAPI()
    init(app, store="sqlite:///sessions.db")

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        session = await create_new_session(request, "alice", {"role": "admin"})
        return {"handle": session.handle}

    @app.get("/me")
    async def me(session: AsyncSession = Depends(verify_session())) -> dict[str, str]:
        return {"user_id": session.user_id}

:func:`init` installs :class:`SessionWardMiddleware`, a pure ASGI middleware (not
``BaseHTTPMiddleware``). For every request it puts a fresh
:class:`~sessionward.transport.ResponseEffects` into ``scope["state"]`` and, when the
response starts, writes the pending cookies and protocol headers onto the
``http.response.start`` headers of *whatever* response the endpoint returned (replacing,
never duplicating, ``Set-Cookie`` of the session cookies and the protocol headers). It also
registers the refresh route, the exception handler for
:class:`~sessionward.errors.SessionWardError` and closes the engine at application shutdown.

Plain Starlette works the same way (``init(Starlette(...))``); there, call
``await get_session(request)`` in the endpoint instead of using ``Depends``.

See ``docs/fastapi.md``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .browser import CLIENT_SCRIPT_HEADERS, CLIENT_SCRIPT_PATH, client_script
from .config import Config
from .engine.aio import AsyncSessionWard
from .engine.types import SessionInformation
from .errors import GeneralError, SessionWardError, StorageUnavailableError
from .session import AsyncSession, AsyncSessionHandler, ErrorHandler
from .stores.base import AsyncStore
from .transport import (
    ANTI_CSRF_HEADER,
    PROTOCOL_HEADERS,
    ResponseEffects,
    preflight_headers,
    session_cookie_present,
)

__all__ = [
    "AsyncSession",
    "Session",
    "SessionWardMiddleware",
    "create_new_session",
    "get_all_session_handles_for_user",
    "get_jwt_payload",
    "get_session",
    "get_session_data",
    "get_session_information",
    "init",
    "preflight",
    "refresh_session",
    "revoke_all_sessions_for_user",
    "revoke_multiple_sessions",
    "revoke_session",
    "update_jwt_payload",
    "update_session_data",
    "verify_session",
]

Session = AsyncSession
"""The request-level session type of this module (an :class:`~sessionward.session.AsyncSession`)."""

logger = logging.getLogger("sessionward.fastapi")

STATE_CONTEXT_KEY = "sessionward_context"
STATE_SESSION_KEY = "sessionward_session"
TheftHook = Callable[[str, str], Awaitable[Any] | Any]
R = TypeVar("R", bound=Response)

_PROTOCOL_HEADER_NAMES = frozenset(name.encode("latin-1") for name in PROTOCOL_HEADERS)
_EXPOSE = b"access-control-expose-headers"
_SET_COOKIE = b"set-cookie"
_ANTI_CSRF = ANTI_CSRF_HEADER.encode("latin-1")


class _Binding:
    """One app's engine and request handler (rebuilt if the app is started again after
    a shutdown closed the engine)."""

    def __init__(
        self,
        app: Starlette,
        config: Config,
        store: AsyncStore | str | None,
        on_token_theft_detected: TheftHook | None,
        error_handler: ErrorHandler | None,
    ) -> None:
        self._app = weakref.ref(app)
        self._config = config
        self._store = store
        self._on_theft = on_token_theft_detected
        self._error_handler = error_handler
        self.closed = False
        self.running = False
        self.handler = self._open()

    def _open(self) -> AsyncSessionHandler:
        engine = AsyncSessionWard(self._config, store=self._store)
        handler = AsyncSessionHandler(engine, self._on_theft, self._error_handler)
        app = self._app()
        if app is not None:
            app.state.sessionward = engine
            app.state.sessionward_handler = handler
        return handler

    @property
    def engine(self) -> AsyncSessionWard:
        return self.handler.engine

    def start(self) -> None:
        if self.closed:
            self.handler = self._open()
            self.closed = False
        self.running = True

    async def aclose(self) -> None:
        self.closed = True
        self.running = False
        await self.handler.engine.aclose()


@dataclass(slots=True)
class _RequestContext:
    """What sessionward keeps for one request: in ``scope["state"]`` and a context var."""

    handler: AsyncSessionHandler
    effects: ResponseEffects


_current: contextvars.ContextVar[_RequestContext | None] = contextvars.ContextVar(
    "sessionward_fastapi_request", default=None
)
# Engines of initialised apps, for management calls made outside any request.
_bindings: weakref.WeakSet[_Binding] = weakref.WeakSet()


# -- header plumbing ------------------------------------------------------------------------------


def _cookie_header(scope: Scope) -> str | None:
    values = [
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name.lower() == b"cookie"
    ]
    return "; ".join(values) if values else None


def _verification_headers(scope: Scope) -> tuple[str | None, str | None]:
    """The ``Cookie`` header(s) joined with ``"; "`` and every ``anti-csrf`` header joined
    with ``","`` (as a WSGI server joins them; the transport layer decides), read in one
    pass over the request headers."""
    cookies: list[str] = []
    anti_csrf: str | None = None
    for name, value in scope.get("headers", ()):
        name = name.lower()
        if name == b"cookie":
            cookies.append(value.decode("latin-1"))
        elif name == _ANTI_CSRF:
            text = value.decode("latin-1")
            anti_csrf = text if anti_csrf is None else f"{anti_csrf},{text}"
    if not cookies:
        return None, anti_csrf
    return (cookies[0] if len(cookies) == 1 else "; ".join(cookies)), anti_csrf


def _cookie_name(set_cookie: bytes) -> bytes:
    return set_cookie.split(b"=", 1)[0].strip()


def _rewrite_headers(raw: Iterable[Any], effects: ResponseEffects) -> list[tuple[bytes, bytes]]:
    """``raw`` with the pending effects applied: our cookies and headers replace any
    earlier copies (so applying twice changes nothing), other headers are kept."""
    headers = [(bytes(name), bytes(value)) for name, value in raw]
    if not effects.pending:
        return headers
    existing_expose = ", ".join(
        value.decode("latin-1") for name, value in headers if name.lower() == _EXPOSE
    )
    additions = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in effects.response_headers(existing_expose or None)
    ]
    replaced = {name for name, _ in additions if name != _SET_COOKIE} | _PROTOCOL_HEADER_NAMES
    our_cookies = {name.encode("latin-1") for name in effects.cookies}
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in replaced
        and not (name.lower() == _SET_COOKIE and _cookie_name(value) in our_cookies)
    ]
    kept.extend(additions)
    return kept


def _apply_to_response(response: Response, effects: ResponseEffects) -> None:
    response.raw_headers[:] = _rewrite_headers(response.raw_headers, effects)


# -- the middleware ----------------------------------------------------------------------------------


class SessionWardMiddleware:
    """Pure ASGI middleware installed by :func:`init`.

    Per HTTP (and WebSocket) connection it stores a request context in
    ``scope["state"]["sessionward_context"]`` and in a context variable; on
    ``http.response.start`` it applies the pending :class:`ResponseEffects` to the
    response headers, whichever response object produced them.
    """

    def __init__(self, app: ASGIApp, binding: _Binding) -> None:
        self.app = app
        self.binding = binding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        handler = self.binding.handler
        context = _RequestContext(handler, ResponseEffects(handler.config))
        state = scope.setdefault("state", {})
        state[STATE_CONTEXT_KEY] = context
        state[STATE_SESSION_KEY] = None
        token = _current.set(context)
        try:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return

            async def send_with_effects(message: Message) -> None:
                if message["type"] == "http.response.start" and context.effects.pending:
                    message["headers"] = _rewrite_headers(message.get("headers", ()), context.effects)
                await send(message)

            await self.app(scope, receive, send_with_effects)
        finally:
            _current.reset(token)


# -- set-up ------------------------------------------------------------------------------------------


def init(
    app: Starlette,
    config: Config | None = None,
    *,
    store: AsyncStore | str | None = None,
    on_token_theft_detected: TheftHook | None = None,
    error_handler: ErrorHandler | None = None,
    **options: Any,
) -> AsyncSessionWard:
    """Set up sessionward on a FastAPI or Starlette ``app``; return its engine.

    Builds an :class:`~sessionward.AsyncSessionWard` (from ``config``, or from ``options``
    named as the :class:`~sessionward.Config` fields; both: ``options`` override ``config``)
    and stores it in ``app.state.sessionward`` (its request handler in
    ``app.state.sessionward_handler``); installs :class:`SessionWardMiddleware`; mounts the
    refresh route (``POST config.refresh_api_path``, answering ``200 {}``) and the browser
    client (``GET`` :data:`~sessionward.browser.CLIENT_SCRIPT_PATH`); registers the
    exception handler for :class:`~sessionward.errors.SessionWardError`; and closes the
    engine at application shutdown (lifespan). Call it before the app starts serving.

    Args:
        store: a store object or URL; default ``config.store``.
        on_token_theft_detected: called (sync or async) with ``(session_handle, user_id)``
            when a theft is detected, before the 401 is sent.
        error_handler: ``(error, default ErrorResponse) -> ErrorResponse`` to change how
            session errors are answered.
    """
    if getattr(app.state, "sessionward", None) is not None:
        raise GeneralError("sessionward.fastapi.init() was already called for this app")
    if config is None:
        config = Config.from_mapping(options)
    elif options:
        config = Config.from_mapping({**_config_fields(config), **options})
    binding = _Binding(app, config, store, on_token_theft_detected, error_handler)
    _bindings.add(binding)
    app.state.sessionward_binding = binding
    app.add_middleware(SessionWardMiddleware, binding=binding)
    app.add_exception_handler(SessionWardError, _exception_handler(binding))
    app.router.routes.insert(
        0,
        Route(
            config.refresh_api_path,
            _refresh_endpoint,
            methods=["POST", "OPTIONS"],
            name="sessionward_refresh",
            include_in_schema=False,
        ),
    )
    app.router.routes.insert(
        1,
        Route(
            CLIENT_SCRIPT_PATH,
            _client_script_endpoint,
            methods=["GET"],
            name="sessionward_client_script",
            include_in_schema=False,
        ),
    )
    _close_on_shutdown(app, binding)
    return binding.engine


def _config_fields(config: Config) -> dict[str, Any]:
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}


def _close_on_shutdown(app: Starlette, binding: _Binding) -> None:
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        binding.start()
        try:
            async with original(application) as state:
                yield state
        finally:
            await binding.aclose()

    app.router.lifespan_context = lifespan


async def _refresh_endpoint(request: Request) -> Response:
    if request.method == "OPTIONS":  # the refresh route answers its own CORS preflight
        return preflight(Response(status_code=204))
    await refresh_session(request)
    return JSONResponse({})


async def _client_script_endpoint(request: Request) -> Response:
    return Response(client_script(), headers=dict(CLIENT_SCRIPT_HEADERS))


def _exception_handler(binding: _Binding) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, SessionWardError):  # pragma: no cover - registered for SessionWardError
            raise exc
        context = _context_or_none(request)
        handler = context.handler if context is not None else binding.handler
        effects = context.effects if context is not None else ResponseEffects(handler.config)
        answer = await handler.answer_error(effects, exc)
        if not answer.clear_cookies:
            # "Cookies untouched" (SPEC §4.4): nothing minted earlier in this request goes out.
            effects.cookies.clear()
            effects.headers.clear()
        _log(exc, answer.status)
        response = Response(
            answer.body, status_code=answer.status, headers=dict(answer.headers),
            media_type="application/json",
        )
        _apply_to_response(response, effects)
        return response

    return handle


def _log(error: SessionWardError, status: int) -> None:
    if isinstance(error, StorageUnavailableError):
        logger.warning("session store unavailable (answered %d): %s", status, error)
    elif isinstance(error, GeneralError):
        logger.error("session error (answered %d): %s", status, error, exc_info=error)
    else:
        logger.debug("%s (answered %d): %s", type(error).__name__, status, error)


# -- per-request context -----------------------------------------------------------------------------


def _context_or_none(connection: HTTPConnection | Response | None) -> _RequestContext | None:
    if isinstance(connection, HTTPConnection):
        context = connection.scope.get("state", {}).get(STATE_CONTEXT_KEY)
        if isinstance(context, _RequestContext):
            return context
    return _current.get()


def _context(connection: HTTPConnection | Response | None) -> _RequestContext:
    context = _context_or_none(connection)
    if context is None:
        raise GeneralError(
            "no sessionward request context: call sessionward.fastapi.init(app) before the app "
            "starts, and call this inside a request of that app"
        )
    return context


def _remember(connection: HTTPConnection | Response | None, session: AsyncSession) -> None:
    if isinstance(connection, HTTPConnection):
        connection.scope.setdefault("state", {})[STATE_SESSION_KEY] = session


# -- request-level API (SPEC §3.1) ---------------------------------------------------------------------


async def create_new_session(
    request_or_response: HTTPConnection | Response,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
    *,
    response: Response | None = None,
) -> AsyncSession:
    """Create a session for ``user_id``; its cookies and headers go on the response.

    The first argument is the current ``Request`` or a ``Response`` (as in the SPEC:
    FastAPI's injected ``Response`` works; the current request is then found through the
    middleware's context variable). The middleware writes the cookies on whatever response
    the endpoint returns; a ``Response`` given (first argument or ``response=``) also gets
    them at once. Raises :class:`~sessionward.errors.GeneralError` on failure.
    """
    context = _context(request_or_response)
    session = await context.handler.create(context.effects, user_id, jwt_payload, session_data)
    _remember(request_or_response, session)
    _apply_to(context, request_or_response, response)
    return session


async def get_session(
    request: HTTPConnection,
    response: Response | None = None,
    anti_csrf_check: bool | None = None,
) -> AsyncSession:
    """Verify the request's session (``anti_csrf_check=None``: check unless GET/HEAD/OPTIONS).

    Raises ``UnauthorizedError`` or ``TryRefreshTokenError`` (answered by the exception
    handler that :func:`init` registered). A replacement access token minted by
    verification goes on the outgoing response (and on ``response`` if given).
    """
    context = _context(request)
    scope = request.scope
    cookie_header, anti_csrf = _verification_headers(scope)
    session = await context.handler.verify(
        context.effects, cookie_header, anti_csrf, str(scope.get("method", "GET")), anti_csrf_check
    )
    _remember(request, session)
    if response is not None:
        _apply_to_response(response, context.effects)
    return session


async def refresh_session(request: HTTPConnection, response: Response | None = None) -> AsyncSession:
    """Rotate the tokens of a refresh request (the route :func:`init` mounts calls this)."""
    context = _context(request)
    session = await context.handler.refresh(context.effects, _cookie_header(request.scope))
    _remember(request, session)
    _apply_to(context, response)
    return session


def _apply_to(context: _RequestContext, *targets: object) -> None:
    for target in targets:
        if isinstance(target, Response):
            _apply_to_response(target, context.effects)


@overload
def verify_session(
    anti_csrf_check: bool | None = None, session_required: Literal[True] = True
) -> Callable[[Request], Awaitable[AsyncSession]]: ...


@overload
def verify_session(
    anti_csrf_check: bool | None = None, *, session_required: Literal[False]
) -> Callable[[Request], Awaitable[AsyncSession | None]]: ...


@overload
def verify_session(
    anti_csrf_check: bool | None, session_required: bool
) -> Callable[[Request], Awaitable[AsyncSession | None]]: ...


def verify_session(
    anti_csrf_check: bool | None = None, session_required: bool = True
) -> Callable[[Request], Awaitable[AsyncSession | None]]:
    """A dependency for ``Depends(verify_session())`` returning the request's session.

    With ``session_required=False`` the dependency returns ``None`` when the request has no
    ``sIdRefreshToken`` cookie (no session at all); a session that is present but invalid or
    expired is still answered with the usual 401, so that the frontend refreshes. Outside
    FastAPI (plain Starlette) call it directly: ``await verify_session()(request)``.
    """

    async def session_dependency(request: Request) -> AsyncSession | None:
        if not session_required and not session_cookie_present(_cookie_header(request.scope)):
            return None
        return await get_session(request, None, anti_csrf_check)

    return session_dependency


def preflight(response: R) -> R:
    """Add the CORS preflight headers the protocol needs (``anti-csrf``, ``fdi-version``,
    ... to ``Access-Control-Allow-Headers``, merged; ``Access-Control-Allow-Credentials:
    true``) to ``response`` and return it."""
    existing = ", ".join(response.headers.getlist("access-control-allow-headers")) or None
    for name, value in preflight_headers(existing):
        response.headers[name] = value
    return response


# -- management calls (SPEC §3.1) ----------------------------------------------------------------------


def _engine(app: Starlette | None) -> AsyncSessionWard:
    """The engine of ``app``; else of the app serving the current request; else of the one
    running app (between lifespan startup and shutdown); else of the one initialised app
    that was not shut down."""
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
    return await _engine(app).revoke_session(handle)


async def revoke_multiple_sessions(handles: list[str], *, app: Starlette | None = None) -> list[str]:
    """End these sessions; return the handles that existed."""
    return await _engine(app).revoke_multiple_sessions(handles)


async def revoke_all_sessions_for_user(user_id: str, *, app: Starlette | None = None) -> list[str]:
    """End every session of ``user_id``; return their handles."""
    return await _engine(app).revoke_all_sessions_for_user(user_id)


async def get_all_session_handles_for_user(user_id: str, *, app: Starlette | None = None) -> list[str]:
    """Handles of ``user_id``'s live sessions."""
    return await _engine(app).get_all_session_handles_for_user(user_id)


async def get_session_data(handle: str, *, app: Starlette | None = None) -> dict[str, Any]:
    """The private session data; ``UnauthorizedError`` if the session is gone."""
    return await _engine(app).get_session_data(handle)


async def update_session_data(handle: str, data: dict[str, Any], *, app: Starlette | None = None) -> None:
    """Overwrite the private session data; ``UnauthorizedError`` if the session is gone."""
    await _engine(app).update_session_data(handle, data)


async def get_jwt_payload(handle: str, *, app: Starlette | None = None) -> dict[str, Any]:
    """The JWT payload stored for the session."""
    return await _engine(app).get_jwt_payload(handle)


async def update_jwt_payload(handle: str, payload: dict[str, Any], *, app: Starlette | None = None) -> None:
    """Overwrite the stored JWT payload (access tokens issued from now on carry it; use
    ``session.update_jwt_payload`` to also re-issue the current request's token)."""
    await _engine(app).update_jwt_payload(handle, payload)


async def get_session_information(handle: str, *, app: Starlette | None = None) -> SessionInformation:
    """Everything stored about a session; ``UnauthorizedError`` if it is gone."""
    return await _engine(app).get_session_information(handle)
