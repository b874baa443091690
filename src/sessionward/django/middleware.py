"""``SessionWardMiddleware``: effects on the way out, the refresh and JWKS routes, error answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from ..browser import CLIENT_SCRIPT_HEADERS, CLIENT_SCRIPT_PATH, client_script
from ..errors import ConfigError, SessionWardError
from ..session import SessionHandler
from ..transport.jwks import jwks_answer
from ..transport.protocol import SIGN_OUT_BODY
from ..transport.response import ResponseEffects
from .api import client_of, cookie_header, current_request, finish_response, protocol_headers, request_effects
from .engine import get_handler
from .responses import error_response, preflight

__all__ = ["SessionWardMiddleware"]


def _json(body: bytes, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="application/json")


def answer_refresh(request: HttpRequest, handler: SessionHandler, effects: ResponseEffects) -> HttpResponse:
    """The refresh route: ``POST`` rotates the tokens, ``OPTIONS`` answers a CORS
    preflight, any other method is a 405."""
    method = request.method
    if method == "OPTIONS":
        response = preflight(HttpResponse(status=204))
        response.headers["Allow"] = "POST, OPTIONS"
        return response
    if method != "POST":
        response = _json(b'{"message": "method not allowed"}', 405)
        response.headers["Allow"] = "POST, OPTIONS"
        return response
    _, auth_mode, authorization = protocol_headers(request)
    try:
        handler.refresh(
            effects, cookie_header(request), auth_mode, authorization, client=client_of(request, handler)
        )
    except SessionWardError as error:
        if isinstance(error, ConfigError):
            raise
        return error_response(handler, effects, error)
    return _json(b"{}", 200)


def answer_sign_out(request: HttpRequest, handler: SessionHandler, effects: ResponseEffects) -> HttpResponse:
    """The sign-out route: ``POST`` revokes the request's session and clears it,
    ``OPTIONS`` answers a CORS preflight (other methods reach the application)."""
    if request.method == "OPTIONS":
        response = preflight(HttpResponse(status=204))
        response.headers["Allow"] = "POST, OPTIONS"
        return response
    try:
        handler.sign_out(effects, cookie_header(request), *protocol_headers(request))
    except SessionWardError as error:
        if isinstance(error, ConfigError):
            raise
        return error_response(handler, effects, error)
    return _json(SIGN_OUT_BODY, 200)


def _is_sign_out(request: HttpRequest, handler: SessionHandler) -> bool:
    return request.path == handler.sign_out_path and request.method in ("POST", "OPTIONS")


def answer_client_script(request: HttpRequest) -> HttpResponse:
    """The browser client at :data:`~sessionward.browser.CLIENT_SCRIPT_PATH`: ``GET`` and
    ``HEAD`` answer the script, any other method is a 405."""
    if request.method not in ("GET", "HEAD"):
        response = _json(b'{"message": "method not allowed"}', 405)
        response.headers["Allow"] = "GET, HEAD"
        return response
    response = HttpResponse(client_script() if request.method == "GET" else b"")
    for name, value in CLIENT_SCRIPT_HEADERS:
        response.headers[name] = value
    return response


def answer_jwks(request: HttpRequest, handler: SessionHandler) -> HttpResponse:
    """The public key set at ``jwks_api_path``: ``GET`` and ``HEAD`` answer it (no session,
    no cookies), any other method is a 405."""
    if request.method not in ("GET", "HEAD"):
        response = _json(b'{"message": "method not allowed"}', 405)
        response.headers["Allow"] = "GET, HEAD"
        return response
    try:
        body, headers = jwks_answer(*handler.engine.jwks_with_max_age())
    except SessionWardError as error:
        if isinstance(error, ConfigError):
            raise
        return error_response(handler, ResponseEffects(handler.config), error)
    response = HttpResponse(body if request.method == "GET" else b"")
    for name, value in headers:
        response.headers[name] = value
    return response


class SessionWardMiddleware:
    """Add to ``settings.MIDDLEWARE`` (below CORS and security middleware).

    For each request it attaches a :class:`~sessionward.transport.ResponseEffects`
    (``request._sessionward_effects``), answers the refresh route at
    ``refresh_api_path``, the sign-out route (``POST`` and ``OPTIONS`` at
    ``refresh_api_path`` with ``/session/refresh`` replaced by ``/signout``, when it ends
    so), the browser client at :data:`~sessionward.browser.CLIENT_SCRIPT_PATH` and the
    public key set at ``jwks_api_path`` (unless ``None``) without any URLconf entry, maps
    :class:`SessionWardError` raised by a view to its JSON answer (``process_exception``;
    another exception drops the request's pending cookies, so a 500 page carries none),
    and writes the pending cookies and protocol headers onto whatever response the view
    returns. Sync and async capable: under ASGI nothing blocking runs on the event loop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        if request.path == CLIENT_SCRIPT_PATH:
            return answer_client_script(request)
        handler = get_handler()
        if request.path == handler.config.jwks_api_path:
            return answer_jwks(request, handler)
        effects = request_effects(request, handler)
        token = current_request.set(request)
        try:
            if request.path == handler.config.refresh_api_path:
                response = answer_refresh(request, handler, effects)
            elif _is_sign_out(request, handler):
                response = answer_sign_out(request, handler, effects)
            else:
                response = self.get_response(request)
        finally:
            current_request.reset(token)
        return finish_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.path == CLIENT_SCRIPT_PATH:
            return answer_client_script(request)
        handler = get_handler()
        if request.path == handler.config.jwks_api_path:
            return await sync_to_async(answer_jwks, thread_sensitive=False)(request, handler)
        effects = request_effects(request, handler)
        token = current_request.set(request)
        try:
            if request.path == handler.config.refresh_api_path:
                # thread_sensitive: the theft hook may use the ORM.
                refresh = sync_to_async(answer_refresh, thread_sensitive=True)
                response = await refresh(request, handler, effects)
            elif _is_sign_out(request, handler):
                sign_out = sync_to_async(answer_sign_out, thread_sensitive=True)
                response = await sign_out(request, handler, effects)
            else:
                get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
                response = await get_response(request)
        finally:
            current_request.reset(token)
        return finish_response(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer a :class:`SessionWardError` raised by a view (``ConfigError`` excepted:
        a misconfiguration stays loud); any other exception becomes Django's 500 page,
        which must not carry the cookies recorded before the crash."""
        handler = get_handler()
        effects = request_effects(request, handler)
        if not isinstance(exception, SessionWardError) or isinstance(exception, ConfigError):
            effects.discard()
            return None
        return error_response(handler, effects, exception)
