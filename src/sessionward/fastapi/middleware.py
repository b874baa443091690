"""The pure-ASGI middleware and the per-request context it keeps.

For every HTTP (and WebSocket) connection :class:`SessionWardMiddleware` puts a request
context into ``scope["state"]`` and a context variable; the context creates its
:class:`~sessionward.transport.ResponseEffects` only when the request does session work.
When the response starts, and only if that work left something to write, it rewrites the
``http.response.start`` headers of whatever response the endpoint produced with
:func:`~sessionward.transport.final_response_headers`; every other message, and every
message of a request that did no session work, passes through untouched.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config
from ..engine.aio import AsyncSessionWard
from ..engine.types import ClientInfo
from ..session import AsyncSessionHandler, ErrorHandler
from ..stores.base import AsyncStore
from ..transport.client_address import FORWARDED_FOR_HEADER, USER_AGENT_HEADER
from ..transport.headers import ANTI_CSRF_HEADER, AUTH_MODE_HEADER, AUTHORIZATION_HEADER
from ..transport.protocol import WireMode
from ..transport.response import ResponseEffects, final_response_headers
from .routes import _SessionRoutes, place_session_routes

__all__ = ["STATE_CONTEXT_KEY", "STATE_SESSION_KEY", "SessionWardMiddleware", "TheftHook"]

STATE_CONTEXT_KEY = "sessionward_context"
STATE_SESSION_KEY = "sessionward_session"
TheftHook = Callable[[str, str], Awaitable[Any] | Any]

_ANTI_CSRF = ANTI_CSRF_HEADER.encode("latin-1")
_AUTH_MODE = AUTH_MODE_HEADER.encode("latin-1")
_AUTHORIZATION = AUTHORIZATION_HEADER.encode("latin-1")
_FORWARDED_FOR = FORWARDED_FOR_HEADER.encode("latin-1")
_USER_AGENT = USER_AGENT_HEADER.encode("latin-1")
_SECURE_SCHEMES = frozenset({"https", "wss"})
_LEGACY = WireMode.LEGACY


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
        #: The session routes' router entry (set by ``init``).
        self.session_routes: _SessionRoutes | None = None

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

    def place_session_routes(self) -> None:
        """Move the session routes' entry after the routes that cannot shadow it (see
        :func:`~sessionward.fastapi.routes.place_session_routes`)."""
        app = self._app()
        if app is not None and self.session_routes is not None:
            place_session_routes(app.router.routes, self.session_routes)

    def start(self) -> None:
        if self.closed:
            self.handler = self._open()
            self.closed = False
        self.running = True

    async def aclose(self) -> None:
        self.closed = True
        self.running = False
        await self.handler.engine.aclose()


class _RequestContext:
    """What sessionward keeps for one request: in ``scope["state"]`` and a context var.

    The :class:`ResponseEffects` are made on first use, so that a request which never
    writes a token (every request that only verifies a cached one) costs one small
    object. Until then ``mode`` holds the protocol mode a verification chose (the context
    is a verification's :class:`~sessionward.session.EffectsTarget` while it has no
    effects), and the effects start from it.
    """

    __slots__ = ("_effects", "handler", "mode", "peer", "request_headers")

    def __init__(self, handler: AsyncSessionHandler, request_headers: Any = (), peer: Any = None) -> None:
        self.handler = handler
        # The request's raw headers and ``scope["client"]`` (not the scope: the scope holds
        # this context, and a reference cycle per request would be left to the garbage
        # collector).
        self.request_headers = request_headers
        self.peer = peer
        self._effects: ResponseEffects | None = None
        self.mode = _LEGACY

    @property
    def effects(self) -> ResponseEffects:
        """What the response must carry (created on first access, in ``mode``)."""
        effects = self._effects
        if effects is None:
            effects = self._effects = ResponseEffects(self.handler.config, mode=self.mode)
        return effects

    def client(self) -> ClientInfo:
        """The request's client: the connection peer (``scope["client"]``), every
        ``X-Forwarded-For`` header joined with ``","`` in order, and ``User-Agent``; read
        only when called (creation, refresh, and a verification that writes)."""
        forwarded: str | None = None
        agent: str | None = None
        for name, value in self.request_headers:
            name = bytes(name).lower()
            if name == _FORWARDED_FOR:
                forwarded = _joined(forwarded, value)
            elif name == _USER_AGENT and agent is None:
                agent = bytes(value).decode("latin-1")
        peer = self.peer
        host = peer[0] if isinstance(peer, (tuple, list)) and peer and isinstance(peer[0], str) else None
        return self.handler.client_info(host, forwarded, agent)

    @property
    def pending(self) -> bool:
        """Whether the request's session work left anything to write on the response."""
        effects = self._effects
        return effects is not None and effects.pending


_current: contextvars.ContextVar[_RequestContext | None] = contextvars.ContextVar(
    "sessionward_fastapi_request", default=None
)
# Engines of initialised apps, for management calls made outside any request.
_bindings: weakref.WeakSet[_Binding] = weakref.WeakSet()


# -- header plumbing ------------------------------------------------------------------------------


# The request headers verification reads, by their (lowercase) ASGI names.
_COOKIE_SLOT, _ANTI_CSRF_SLOT, _AUTH_MODE_SLOT, _AUTHORIZATION_SLOT = range(4)
_VERIFICATION_HEADERS = {
    b"cookie": _COOKIE_SLOT,
    _ANTI_CSRF: _ANTI_CSRF_SLOT,
    _AUTH_MODE: _AUTH_MODE_SLOT,
    _AUTHORIZATION: _AUTHORIZATION_SLOT,
}


def _verification_headers(scope: Scope) -> tuple[bytes | str | None, str | None, str | None, str | None]:
    """The ``Cookie`` header, and every ``anti-csrf``, ``st-auth-mode`` and
    ``Authorization`` header, each name's copies joined with ``","`` (as a WSGI server
    joins them; the transport layer decides), read in one pass over the request headers.

    One ``Cookie`` header is returned as the bytes received (the cookie parser reads them
    as latin-1, and remembers them without decoding); several are decoded and joined with
    ``"; "``. Names are matched in any case (servers send them in lowercase: one dict
    lookup per header)."""
    cookie: bytes | None = None
    more_cookies: list[bytes] | None = None
    anti_csrf: str | None = None
    auth_mode: str | None = None
    authorization: str | None = None
    slots = _VERIFICATION_HEADERS
    for name, value in scope.get("headers", ()):
        slot = slots.get(name)
        if slot is None:
            if name.islower():
                continue
            slot = slots.get(bytes(name).lower())
            if slot is None:
                continue
        if slot == _COOKIE_SLOT:
            if cookie is None:
                cookie = value if type(value) is bytes else bytes(value)
            elif more_cookies is None:
                more_cookies = [value]
            else:
                more_cookies.append(value)
        elif slot == _ANTI_CSRF_SLOT:
            anti_csrf = _joined(anti_csrf, value)
        elif slot == _AUTH_MODE_SLOT:
            auth_mode = _joined(auth_mode, value)
        else:
            authorization = _joined(authorization, value)
    if more_cookies is not None and cookie is not None:
        joined = "; ".join(bytes(value).decode("latin-1") for value in [cookie, *more_cookies])
        return joined, anti_csrf, auth_mode, authorization
    return cookie, anti_csrf, auth_mode, authorization


def _joined(previous: str | None, value: bytes) -> str:
    text = bytes(value).decode("latin-1")
    return text if previous is None else f"{previous},{text}"


def _auth_mode_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Every ``st-auth-mode`` header among raw ASGI ``headers``, joined with ``","``."""
    auth_mode: str | None = None
    for name, value in headers:
        if name.lower() == _AUTH_MODE:
            auth_mode = _joined(auth_mode, value)
    return auth_mode


def _rewrite_headers(
    raw: Iterable[Any], effects: ResponseEffects, secure_request: bool | None
) -> list[tuple[bytes, bytes]]:
    """ASGI raw headers ``raw`` with ``effects`` applied (see ``final_response_headers``)."""
    headers = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in raw]
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in final_response_headers(effects, headers, secure_request)
    ]


def _apply_to_response(response: Response, effects: ResponseEffects) -> None:
    # The request's scheme is not known here: the middleware applies the effects again,
    # with it, when the response starts.
    response.raw_headers[:] = _rewrite_headers(response.raw_headers, effects, None)


# -- the middleware ----------------------------------------------------------------------------------


class SessionWardMiddleware:
    """Pure ASGI middleware installed by :func:`~sessionward.fastapi.init`.

    Per HTTP (and WebSocket) connection it stores a request context in
    ``scope["state"]["sessionward_context"]`` and in a context variable; on
    ``http.response.start`` it applies the pending :class:`ResponseEffects` to the
    response headers, whichever response object produced them.
    """

    def __init__(self, app: ASGIApp, binding: _Binding) -> None:
        self.app = app
        self.binding = binding
        # Built when the app starts (its first ASGI call): the routes are all there.
        binding.place_session_routes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        context = _RequestContext(self.binding.handler, scope.get("headers", ()), scope.get("client"))
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[STATE_CONTEXT_KEY] = context
        state[STATE_SESSION_KEY] = None
        token = _current.set(context)
        try:
            if kind == "http":
                downstream = send

                # ``send`` writing the pending effects onto ``http.response.start``: a
                # plain function returning ``send``'s own awaitable (no coroutine of its
                # own), defined here (no factory call), so that a message with nothing
                # to apply costs one check.
                def send_with_effects(message: Message) -> Awaitable[None]:
                    if context._effects is not None and message["type"] == "http.response.start":
                        _apply_pending(message, context, scope)
                    return downstream(message)

                await self.app(scope, receive, send_with_effects)
            else:
                await self.app(scope, receive, send)
        finally:
            _current.reset(token)


def _apply_pending(message: Message, context: _RequestContext, scope: Scope) -> None:
    """Write the request's pending effects (if any) onto an ``http.response.start``."""
    if context.pending:
        message["headers"] = _rewrite_headers(
            message.get("headers", ()),
            context.effects,
            scope.get("scheme", "http") in _SECURE_SCHEMES,
        )
