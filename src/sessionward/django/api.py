"""Request-level calls and management calls of the Django adapter.

Everything that belongs to one request lives on the request object:
``request._sessionward_effects`` (the one :class:`~sessionward.transport.ResponseEffects`
of the request: the cookies and headers its response must carry) and
``request.sessionward`` (the verified :class:`~sessionward.session.Session`). The
middleware also makes the request current (a context variable), so that
:func:`create_new_session`, which is given only the response, records into the same
effects: whatever is done last during the request (a revocation after a login, say) is
what the returned response carries.

Public names are re-exported by :mod:`sessionward.django`; import them from there.
"""

from __future__ import annotations

import contextvars
from typing import Any

from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from ..engine.types import ClientInfo, SessionInformation
from ..session import Session, SessionHandler
from ..transport.headers import ANTI_CSRF_HEADER, AUTH_MODE_HEADER, AUTHORIZATION_HEADER
from ..transport.response import ResponseEffects
from .engine import get_engine, get_handler
from .responses import apply_effects

EFFECTS_ATTR = "_sessionward_effects"
SESSION_ATTR = "sessionward"
_ANTI_CSRF_META = "HTTP_" + ANTI_CSRF_HEADER.upper().replace("-", "_")
_AUTH_MODE_META = "HTTP_" + AUTH_MODE_HEADER.upper().replace("-", "_")
_AUTHORIZATION_META = "HTTP_" + AUTHORIZATION_HEADER.upper()
_FORWARDED_FOR_META = "HTTP_X_FORWARDED_FOR"
_USER_AGENT_META = "HTTP_USER_AGENT"

current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "sessionward_django_request", default=None
)
"""The request the middleware is handling (``None`` outside it)."""


def cookie_header(request: HttpRequest) -> str | None:
    """The raw ``Cookie`` header(s) of the request, joined with ``"; "``.

    Under ASGI the headers are read from the scope, because Django joins repeated headers
    with ``","``; under WSGI the server has already joined them into ``HTTP_COOKIE``.
    """
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and "headers" in scope:
        values = [
            bytes(value).decode("latin-1")
            for name, value in scope["headers"]
            if bytes(name).lower() == b"cookie"
        ]
        return "; ".join(values) if values else None
    value = request.META.get("HTTP_COOKIE")
    return value if isinstance(value, str) else None


def _meta(request: HttpRequest, key: str) -> str | None:
    value = request.META.get(key)
    return value if isinstance(value, str) else None


def protocol_headers(request: HttpRequest) -> tuple[str | None, str | None, str | None]:
    """The request's ``anti-csrf``, ``st-auth-mode`` and ``Authorization`` headers (repeats
    comma-joined, as Django joins them)."""
    meta = request.META
    anti_csrf, auth_mode, authorization = (
        meta.get(_ANTI_CSRF_META),
        meta.get(_AUTH_MODE_META),
        meta.get(_AUTHORIZATION_META),
    )
    return (
        anti_csrf if isinstance(anti_csrf, str) else None,
        auth_mode if isinstance(auth_mode, str) else None,
        authorization if isinstance(authorization, str) else None,
    )


def client_of(request: HttpRequest, handler: SessionHandler) -> ClientInfo:
    """The request's client: ``REMOTE_ADDR``, ``X-Forwarded-For`` (repeats joined with
    ``","`` by the server or by Django) and ``User-Agent``."""
    return handler.client_info(
        _meta(request, "REMOTE_ADDR"), _meta(request, _FORWARDED_FOR_META), _meta(request, _USER_AGENT_META)
    )


def _effects_on(owner: Any, handler: SessionHandler) -> ResponseEffects:
    effects = getattr(owner, EFFECTS_ATTR, None)
    if not isinstance(effects, ResponseEffects) or effects.config is not handler.config:
        effects = ResponseEffects(handler.config)
        setattr(owner, EFFECTS_ATTR, effects)
    return effects


def request_effects(request: HttpRequest, handler: SessionHandler) -> ResponseEffects:
    """The request's effects, attached by the middleware (or here, if it is missing)."""
    return _effects_on(request, handler)


def finish_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Apply the request's effects to the response the middleware returns."""
    effects = getattr(request, EFFECTS_ATTR, None)
    if isinstance(effects, ResponseEffects):
        apply_effects(response, effects, request.is_secure())
    return response


def create_new_session(
    response: HttpResponse,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
    *,
    persistent: bool = True,
    refresh_token_validity: int | None = None,
) -> Session:
    """Create a session and set its cookies and headers on ``response``.

    ``persistent=False`` (a "remember me" box left unticked) issues cookies without
    ``Expires``, which end with the browser session, and a refresh lifetime of at most
    ``non_persistent_refresh_token_validity``; ``refresh_token_validity`` (seconds) may
    shorten this session's idle lifetime. The client's IP address (see
    ``trusted_proxies``) and user agent are recorded (not outside the middleware).

    They are recorded with the current request's other session work, so the middleware
    writes the final state (after, say, ``update_jwt_payload`` or ``revoke_session``) on
    whatever response the view returns, replacing, never duplicating. Outside the
    middleware they are recorded on ``response`` itself. The session is issued in the mode
    the current request's ``st-auth-mode`` header asks for (none, or outside the
    middleware: the 2020 protocol).
    """
    handler = get_handler()
    request = current_request.get()
    effects = _effects_on(response if request is None else request, handler)
    auth_mode = None if request is None else _meta(request, _AUTH_MODE_META)
    session = handler.create(
        effects,
        user_id,
        jwt_payload,
        session_data,
        auth_mode,
        persistent=persistent,
        refresh_token_validity=refresh_token_validity,
        client=None if request is None else client_of(request, handler),
    )
    apply_effects(response, effects)
    return session


def get_session(
    request: HttpRequest,
    response: HttpResponse | None = None,
    anti_csrf_check: bool | None = None,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Session:
    """Verify the request's session; also stored as ``request.sessionward``.

    ``anti_csrf_check=None`` checks the ``anti-csrf`` header unless the method is GET, HEAD
    or OPTIONS (and ``enable_anti_csrf`` is on). ``check_database=True`` also reads the
    session's row (a session revoked anywhere is refused at once, at the cost of one store
    read); ``max_auth_age`` (seconds) refuses a session whose user authenticated longer ago
    with ``ReauthenticationRequiredError`` (answered 403). A replacement access token is written to
    ``response`` when given, and in any case by the middleware to the returned response.
    Raises ``UnauthorizedError`` or ``TryRefreshTokenError``.
    """
    handler = get_handler()
    effects = request_effects(request, handler)
    anti_csrf, auth_mode, authorization = protocol_headers(request)
    session = handler.verify(
        effects,
        cookie_header(request),
        anti_csrf,
        request.method or "GET",
        anti_csrf_check,
        auth_mode,
        authorization,
        check_database=check_database,
        max_auth_age=max_auth_age,
        client=lambda: client_of(request, handler),
    )
    setattr(request, SESSION_ATTR, session)
    if response is not None:
        apply_effects(response, effects)
    return session


def refresh_session(request: HttpRequest, response: HttpResponse | None = None) -> Session:
    """Rotate the tokens of a refresh request.

    The new tokens are set on ``response`` when given, and in any case by the middleware on
    the response the view returns. Normally not called: the middleware answers ``POST`` at
    ``refresh_api_path`` itself. Raises ``UnauthorizedError`` or ``TokenTheftDetectedError``.
    """
    handler = get_handler()
    effects = request_effects(request, handler)
    _, auth_mode, authorization = protocol_headers(request)
    session = handler.refresh(
        effects, cookie_header(request), auth_mode, authorization, client=client_of(request, handler)
    )
    if response is not None:
        apply_effects(response, effects)
    return session


# -- management calls bound to the configured engine -------------------------------------


def revoke_session(handle: str) -> bool:
    """End one session; return whether it existed."""
    return get_engine().revoke_session(handle)


def revoke_multiple_sessions(handles: list[str]) -> list[str]:
    """End these sessions; return the handles that existed."""
    return get_engine().revoke_multiple_sessions(handles)


def revoke_all_sessions_for_user(user_id: str) -> list[str]:
    """End every session of ``user_id``; return their handles."""
    return get_engine().revoke_all_sessions_for_user(user_id)


def revoke_other_sessions(user_id: str, keep: str) -> list[str]:
    """End every session of ``user_id`` except ``keep`` (a handle); return the handles
    ended (``request.sessionward.revoke_other_sessions()`` does this for the current
    session)."""
    return get_engine().revoke_other_sessions(user_id, keep)


def get_all_sessions_for_user(user_id: str) -> list[SessionInformation]:
    """Everything stored about each live session of ``user_id``, most recently active
    first: when it was created and last active, the client's IP address and user agent,
    when the user last authenticated, whether it is persistent (a "your devices" page)."""
    return get_engine().get_all_sessions_for_user(user_id)


def get_all_session_handles_for_user(user_id: str) -> list[str]:
    """Handles of ``user_id``'s live sessions."""
    return get_engine().get_all_session_handles_for_user(user_id)


def get_session_data(handle: str) -> dict[str, Any]:
    """The private session data; ``UnauthorizedError`` if the session is gone."""
    return get_engine().get_session_data(handle)


def update_session_data(handle: str, data: dict[str, Any]) -> None:
    """Overwrite the private session data; ``UnauthorizedError`` if the session is gone."""
    get_engine().update_session_data(handle, data)


def get_jwt_payload(handle: str) -> dict[str, Any]:
    """The stored JWT payload; ``UnauthorizedError`` if the session is gone."""
    return get_engine().get_jwt_payload(handle)


def update_jwt_payload(handle: str, payload: dict[str, Any]) -> None:
    """Overwrite the stored JWT payload (tokens issued from now on carry it)."""
    get_engine().update_jwt_payload(handle, payload)


def get_session_information(handle: str) -> SessionInformation:
    """Everything stored about a session; ``UnauthorizedError`` if it is gone."""
    return get_engine().get_session_information(handle)
