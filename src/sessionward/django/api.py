"""The Django adapter's functions: settings, the per-process engine, request-level calls.

Public names are re-exported by :mod:`sessionward.django`; import them from there.

Design notes:

- The engine is per process (it owns a store connection and a verified-token cache), built
  lazily from ``settings.SESSIONWARD`` on first use and rebuilt, the old one closed, when
  that setting changes (``override_settings`` in tests sends ``setting_changed``).
- Everything that belongs to one request lives on the request object:
  ``request._sessionward_effects`` (the cookies and headers the response must carry) and
  ``request.sessionward`` (the verified :class:`~sessionward.session.Session`).
- Cookies are emitted through ``response.cookies`` (Django serialises that
  ``SimpleCookie`` into one ``Set-Cookie`` header per name, on WSGI and ASGI alike): each
  session cookie is a :class:`SetCookieMorsel` whose serialised form is exactly the
  ``Set-Cookie`` value :mod:`sessionward.transport` wrote. A ``SimpleCookie`` is keyed by
  name, so a response can never carry two ``Set-Cookie`` headers for one session cookie.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from http.cookies import Morsel
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from ..config import Config
from ..engine.sync import SessionWard
from ..engine.types import SessionInformation
from ..errors import (
    ConfigError,
    GeneralError,
    SessionWardError,
    StorageUnavailableError,
)
from ..session import ErrorHandler, Session, SessionHandler, TheftHook
from ..transport import (
    ANTI_CSRF_HEADER,
    PROTOCOL_HEADERS,
    ResponseEffects,
    preflight_headers,
    session_cookie_present,
)

__all__ = [
    "SETTING_NAME",
    "SetCookieMorsel",
    "apply_effects",
    "create_new_session",
    "error_response",
    "get_all_session_handles_for_user",
    "get_engine",
    "get_handler",
    "get_jwt_payload",
    "get_session",
    "get_session_data",
    "get_session_information",
    "preflight",
    "refresh_session",
    "reset_engine",
    "revoke_all_sessions_for_user",
    "revoke_multiple_sessions",
    "revoke_session",
    "update_jwt_payload",
    "update_session_data",
    "verify_session",
]

logger = logging.getLogger("sessionward.django")

SETTING_NAME = "SESSIONWARD"
HOOK_KEYS = ("on_token_theft_detected", "error_handler")
EFFECTS_ATTR = "_sessionward_effects"
SESSION_ATTR = "sessionward"
_ANTI_CSRF_META = "HTTP_" + ANTI_CSRF_HEADER.upper().replace("-", "_")

V = TypeVar("V", bound=Callable[..., Any])


# -- settings and the per-process engine -------------------------------------------------


@dataclass(frozen=True)
class Options:
    """``settings.SESSIONWARD`` read and checked: the config and the two hooks."""

    config: Config
    on_token_theft_detected: TheftHook | None
    error_handler: ErrorHandler | None


def _hook(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        try:
            loaded = import_string(value)
        except ImportError as exc:
            raise ConfigError(f"{SETTING_NAME}[{name!r}]: cannot import {value!r}: {exc}") from None
        if callable(loaded):
            return loaded
    raise ConfigError(f"{SETTING_NAME}[{name!r}]: expected a callable or a dotted path to one; got {value!r}")


def load_options() -> Options:
    """Read ``settings.SESSIONWARD`` (a dict of :class:`~sessionward.Config` field names,
    plus ``on_token_theft_detected`` and ``error_handler``); raises ``ConfigError``."""
    raw = getattr(settings, SETTING_NAME, None)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"settings.{SETTING_NAME}: expected a dict of options; got {type(raw).__name__}")
    options = dict(raw)
    hooks = {name: _hook(name, options.pop(name, None)) for name in HOOK_KEYS}
    return Options(Config.from_mapping(options), hooks["on_token_theft_detected"], hooks["error_handler"])


class _EngineHolder:
    """The process's engine and handler, built on first use from the settings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handler: SessionHandler | None = None

    def get(self) -> SessionHandler:
        handler = self._handler
        if handler is None:
            with self._lock:
                handler = self._handler
                if handler is None:
                    options = load_options()
                    handler = SessionHandler(
                        SessionWard(options.config),
                        on_token_theft_detected=options.on_token_theft_detected,
                        error_handler=options.error_handler,
                    )
                    self._handler = handler
        return handler

    def reset(self) -> None:
        with self._lock:
            handler, self._handler = self._handler, None
        if handler is not None:
            handler.engine.close()


_holder = _EngineHolder()


def get_handler() -> SessionHandler:
    """The request-level handler over the process's engine (built on first use)."""
    return _holder.get()


def get_engine() -> SessionWard:
    """The process's :class:`~sessionward.SessionWard`, configured by ``settings.SESSIONWARD``."""
    return _holder.get().engine


def reset_engine() -> None:
    """Close the engine; the next use builds a new one from the current settings."""
    _holder.reset()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        _holder.reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="sessionward.django.setting_changed")


# -- writing effects on a Django response ------------------------------------------------


class SetCookieMorsel(Morsel[str]):
    """A ``Morsel`` that serialises to the exact ``Set-Cookie`` value transport wrote.

    Its key, value and attributes (``path``, ``expires``, ``domain``, ``secure``,
    ``httponly``, ``samesite``) are filled in from that value too, so code reading
    ``response.cookies[name]["path"]`` sees the truth; if anything changes them afterwards,
    the standard ``Morsel`` serialisation of the changed attributes is used instead.
    """

    def __init__(self, name: str, set_cookie: str) -> None:
        super().__init__()
        first, *attributes = set_cookie.split("; ")
        coded = first.partition("=")[2]
        self.set(name, unquote(coded), coded)
        for attribute in attributes:
            key, sep, value = attribute.partition("=")
            self[key.lower()] = value if sep else True
        self._set_cookie = set_cookie
        self._snapshot = self._state()

    def _state(self) -> tuple[Any, ...]:
        return (self.key, self.value, self.coded_value, sorted(self.items()))

    def OutputString(self, attrs: Container[str] | None = None) -> str:
        header: str | None = getattr(self, "_set_cookie", None)
        if attrs is None and header is not None and self._state() == self._snapshot:
            return header
        return super().OutputString(attrs)


def apply_effects(response: HttpResponse, effects: ResponseEffects) -> None:
    """Write pending cookies and headers onto ``response``, replacing earlier values.

    Safe to call repeatedly with the same effects: a cookie replaces the one of the same
    name in ``response.cookies``, protocol headers are overwritten and the expose list is
    merged without duplicates.
    """
    if not effects.pending:
        return
    headers = response.headers
    updates = effects.response_headers(headers.get("Access-Control-Expose-Headers"))
    for name in PROTOCOL_HEADERS:
        headers.pop(name, None)
    for name, value in updates:
        if name != "set-cookie":
            headers[name] = value
    for name, set_cookie in effects.cookies.items():
        response.cookies[name] = SetCookieMorsel(name, set_cookie)


def finish_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Apply the request's pending effects, then those recorded on the response itself."""
    for owner in (request, response):
        effects = getattr(owner, EFFECTS_ATTR, None)
        if isinstance(effects, ResponseEffects):
            apply_effects(response, effects)
    return response


def error_response(
    handler: SessionHandler, effects: ResponseEffects, error: SessionWardError
) -> HttpResponse:
    """The JSON response to a session error (SPEC §4.4), via ``handler.answer_error``.

    Work recorded for the failed request (for instance a replacement access token) is
    dropped first, so an error answer carries only what the error itself dictates: nothing,
    or the cleared cookies with ``id-refresh-token: remove``.
    """
    if isinstance(error, StorageUnavailableError):
        logger.warning("session store unavailable: %s", error)
    elif isinstance(error, GeneralError):
        logger.error("session error: %s", error, exc_info=error)
    else:
        logger.info("session rejected: %s", error)
    effects.cookies.clear()
    effects.headers.clear()
    answer = handler.answer_error(effects, error)
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    for name, value in answer.headers:
        response.headers[name] = value
    return response


def preflight(response: HttpResponse) -> HttpResponse:
    """Add the session protocol's CORS preflight headers to ``response`` and return it.

    ``Access-Control-Allow-Headers`` gains ``anti-csrf, fdi-version, supertokens-sdk-name,
    supertokens-sdk-version`` (merged with what is there) and
    ``Access-Control-Allow-Credentials: true`` is set. Origins stay the application's job.
    """
    for name, value in preflight_headers(response.headers.get("Access-Control-Allow-Headers")):
        response.headers[name] = value
    return response


# -- request-level calls -----------------------------------------------------------------


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


def _anti_csrf_header(request: HttpRequest) -> str | None:
    value = request.META.get(_ANTI_CSRF_META)
    return value if isinstance(value, str) else None


def request_effects(request: HttpRequest, handler: SessionHandler) -> ResponseEffects:
    """The request's effects, attached by the middleware (or here, if it is missing)."""
    effects = getattr(request, EFFECTS_ATTR, None)
    if not isinstance(effects, ResponseEffects) or effects.config is not handler.config:
        effects = ResponseEffects(handler.config)
        setattr(request, EFFECTS_ATTR, effects)
    return effects


def create_new_session(
    response: HttpResponse,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
) -> Session:
    """Create a session and set its cookies and headers on ``response``.

    The effects are recorded on the response itself, so the middleware re-applies them
    (replacing, never duplicating) after later changes such as ``update_jwt_payload`` on
    the returned session. Return this ``response`` from the view.
    """
    handler = get_handler()
    effects = getattr(response, EFFECTS_ATTR, None)
    if not isinstance(effects, ResponseEffects) or effects.config is not handler.config:
        effects = ResponseEffects(handler.config)
        setattr(response, EFFECTS_ATTR, effects)
    session = handler.create(effects, user_id, jwt_payload, session_data)
    apply_effects(response, effects)
    return session


def get_session(
    request: HttpRequest, response: HttpResponse | None = None, anti_csrf_check: bool | None = None
) -> Session:
    """Verify the request's session; also stored as ``request.sessionward``.

    ``anti_csrf_check=None`` checks the ``anti-csrf`` header unless the method is GET, HEAD
    or OPTIONS (and ``enable_anti_csrf`` is on). A replacement access token is written to
    ``response`` when given, and in any case by the middleware to the returned response.
    Raises ``UnauthorizedError`` or ``TryRefreshTokenError``.
    """
    handler = get_handler()
    effects = request_effects(request, handler)
    session = handler.verify(
        effects, cookie_header(request), _anti_csrf_header(request), request.method or "GET", anti_csrf_check
    )
    setattr(request, SESSION_ATTR, session)
    if response is not None:
        apply_effects(response, effects)
    return session


def refresh_session(request: HttpRequest, response: HttpResponse) -> Session:
    """Rotate the tokens of a refresh request and set the new ones on ``response``.

    Normally not called: the middleware answers ``POST`` at ``refresh_api_path`` itself.
    Raises ``UnauthorizedError`` or ``TokenTheftDetectedError``.
    """
    handler = get_handler()
    effects = request_effects(request, handler)
    session = handler.refresh(effects, cookie_header(request))
    apply_effects(response, effects)
    return session


def _verify_into_request(request: HttpRequest, anti_csrf_check: bool | None, session_required: bool) -> None:
    if not isinstance(getattr(request, EFFECTS_ATTR, None), ResponseEffects):
        raise ImproperlyConfigured(
            "verify_session needs 'sessionward.django.SessionWardMiddleware' in settings.MIDDLEWARE"
        )
    if not session_required and not session_cookie_present(cookie_header(request)):
        setattr(request, SESSION_ATTR, None)
        return
    get_session(request, anti_csrf_check=anti_csrf_check)


def verify_session(anti_csrf_check: bool | None = None, session_required: bool = True) -> Callable[[V], V]:
    """View decorator: verify the session and put it on ``request.sessionward``.

    Works on sync and async views (in async views the engine call runs in a worker thread
    via ``asgiref.sync.sync_to_async``, never on the event loop). With
    ``session_required=False`` a request without session cookies gets
    ``request.sessionward = None``; a present but expired session still answers
    "try refresh token". Errors are answered by :class:`SessionWardMiddleware`.
    """
    if callable(anti_csrf_check):
        raise TypeError("verify_session is a decorator factory: write @verify_session()")

    def decorator(view: V) -> V:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                await sync_to_async(_verify_into_request, thread_sensitive=False)(
                    request, anti_csrf_check, session_required
                )
                return await view(request, *args, **kwargs)

            return cast(V, async_view)

        @functools.wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            _verify_into_request(request, anti_csrf_check, session_required)
            return view(request, *args, **kwargs)

        return cast(V, sync_view)

    return decorator


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
