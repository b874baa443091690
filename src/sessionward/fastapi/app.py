"""``init(app)``: the middleware, the refresh, client-script and JWKS routes, the exception
handler for session errors, and closing the engine at shutdown."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..browser import CLIENT_SCRIPT_HEADERS, CLIENT_SCRIPT_PATH, client_script
from ..config import Config
from ..engine.aio import AsyncSessionWard
from ..errors import GeneralError, SessionWardError
from ..session import ErrorHandler
from ..stores.base import AsyncStore
from ..transport.error_responses import log_error_answer
from ..transport.jwks import jwks_answer
from ..transport.protocol import SIGN_OUT_BODY
from ..transport.response import ResponseEffects
from .api import _context, _context_or_none, preflight, refresh_session
from .middleware import (
    SessionWardMiddleware,
    TheftHook,
    _apply_to_response,
    _Binding,
    _bindings,
    _verification_headers,
)
from .routes import _SessionRoutes

__all__ = ["init", "logger"]

logger = logging.getLogger("sessionward.fastapi")


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
    refresh route (``POST config.refresh_api_path``, answering ``200 {}``), the sign-out
    route (``POST`` at ``refresh_api_path`` with ``/session/refresh`` replaced by
    ``/signout``, answering ``200 {"status":"OK"}``; not mounted when ``refresh_api_path``
    ends otherwise), the browser client (``GET``
    :data:`~sessionward.browser.CLIENT_SCRIPT_PATH`) and the public key set (``GET
    config.jwks_api_path``, unless that option is ``None``); registers the exception
    handler for :class:`~sessionward.errors.SessionWardError`; and closes the engine at
    application shutdown (lifespan). Call it before the app starts serving.

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
    routes: list[Route] = []
    if config.jwks_api_path is not None:
        routes.append(_jwks_route(binding, config.jwks_api_path))
    routes.append(
        Route(
            config.refresh_api_path,
            _refresh_endpoint,
            methods=["POST", "OPTIONS"],
            name="sessionward_refresh",
            include_in_schema=False,
        )
    )
    sign_out_path = binding.handler.sign_out_path
    if sign_out_path is not None:
        routes.append(
            Route(
                sign_out_path,
                _sign_out_endpoint,
                methods=["POST", "OPTIONS"],
                name="sessionward_sign_out",
                include_in_schema=False,
            )
        )
    routes.append(
        Route(
            CLIENT_SCRIPT_PATH,
            _client_script_endpoint,
            methods=["GET"],
            name="sessionward_client_script",
            include_in_schema=False,
        )
    )
    # First in the router, so that no catch-all defined earlier shadows them.
    entry = _SessionRoutes(routes)
    app.router.routes.insert(0, entry)
    binding.session_routes = entry
    _close_on_shutdown(app, binding)
    return binding.engine


def _jwks_route(binding: _Binding, path: str) -> Route:
    async def jwks_endpoint(request: Request) -> Response:
        body, headers = jwks_answer(*await binding.engine.jwks_with_max_age())
        return Response(body, headers=dict(headers))

    return Route(path, jwks_endpoint, methods=["GET"], name="sessionward_jwks", include_in_schema=False)


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


async def _sign_out_endpoint(request: Request) -> Response:
    if request.method == "OPTIONS":
        return preflight(Response(status_code=204))
    context = _context(request)
    cookie_header, anti_csrf, auth_mode, authorization = _verification_headers(request.scope)
    await context.handler.sign_out(context.effects, cookie_header, anti_csrf, auth_mode, authorization)
    return Response(SIGN_OUT_BODY, media_type="application/json")


async def _client_script_endpoint(request: Request) -> Response:
    return Response(client_script(), headers=dict(CLIENT_SCRIPT_HEADERS))


def _exception_handler(binding: _Binding) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, SessionWardError):  # pragma: no cover - registered for SessionWardError
            raise exc
        context = _context_or_none(request)
        handler = context.handler if context is not None else binding.handler
        effects = context.effects if context is not None else ResponseEffects(handler.config)
        effects.discard()
        answer = await handler.answer_error(effects, exc)
        log_error_answer(logger, exc, answer.status)
        response = Response(
            answer.body,
            status_code=answer.status,
            headers=dict(answer.headers),
            media_type="application/json",
        )
        _apply_to_response(response, effects)
        return response

    return handle
