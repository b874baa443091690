"""Request-level calls (``create_new_session``, ``get_session``, ``refresh_session``,
``preflight``), the ``current_session`` proxy and the management calls, bound to the
current app."""

from __future__ import annotations

from typing import Any, cast

from flask import Flask
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from ..engine.sync import SessionWard
from ..engine.types import SessionInformation
from ..session import Session
from ..transport.cors import preflight_headers
from .state import (
    _ANTI_CSRF_ENVIRON,
    _AUTH_MODE_ENVIRON,
    _AUTHORIZATION_ENVIRON,
    _ENVIRON_KEY,
    _apply,
    _client,
    _cookie_header,
    _current_request,
    _extension,
    _request_state,
    _RequestState,
)


def create_new_session(
    response: WerkzeugResponse | None,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
    *,
    persistent: bool = True,
    refresh_token_validity: int | None = None,
) -> Session:
    """Create a session for ``user_id`` and set its cookies and headers.

    They are written to ``response`` at once (when given) and, by the ``after_request``
    hook, to whatever response the view finally returns, in the mode the current request's
    ``st-auth-mode`` header asks for (none: the 2020 protocol). ``persistent=False`` (a
    "remember me" box left unticked) issues cookies without ``Expires``, which end with
    the browser session, and a refresh lifetime of at most
    ``non_persistent_refresh_token_validity``; ``refresh_token_validity`` (seconds) may
    shorten this session's idle lifetime. The client's IP address (see
    ``trusted_proxies``) and user agent are recorded. Raises ``GeneralError`` on failure
    (``StorageUnavailableError`` when the store is down).
    """
    extension = _extension()
    req = _current_request()
    state = _request_state(extension, req)
    handler = extension.handler
    session = handler.create(
        state.effects,
        user_id,
        jwt_payload,
        session_data,
        req.environ.get(_AUTH_MODE_ENVIRON),
        persistent=persistent,
        refresh_token_validity=refresh_token_validity,
        client=_client(handler, req.environ),
    )
    state.session = session
    if response is not None:
        _apply(response, state.effects, None)
    return session


def get_session(
    request: WerkzeugRequest,
    response: WerkzeugResponse | None = None,
    anti_csrf_check: bool | None = None,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Session:
    """Verify the session of ``request`` (normally :data:`flask.request`).

    ``anti_csrf_check=None`` checks the ``anti-csrf`` header unless the method is GET, HEAD
    or OPTIONS (and only when ``enable_anti_csrf`` is on). ``check_database=True`` also
    reads the session's row (a session revoked anywhere is refused at once, at the cost of
    one store read); ``max_auth_age`` (seconds) refuses a session whose user authenticated
    longer ago with ``ReauthenticationRequiredError`` (answered 403). Raises
    ``UnauthorizedError`` or ``TryRefreshTokenError``. A replacement access token minted by
    verification is written to ``response`` when given, and in any case to the response
    the view returns.
    """
    extension = _extension()
    state = _request_state(extension, request)
    effects = state.effects
    environ = request.environ
    handler = extension.handler
    session = handler.verify(
        effects,
        environ.get("HTTP_COOKIE"),
        environ.get(_ANTI_CSRF_ENVIRON),
        request.method,
        anti_csrf_check,
        environ.get(_AUTH_MODE_ENVIRON),
        environ.get(_AUTHORIZATION_ENVIRON),
        check_database=check_database,
        max_auth_age=max_auth_age,
        client=lambda: _client(handler, environ),
    )
    state.session = session
    if response is not None and effects.pending:
        _apply(response, effects, None)
    return session


def refresh_session(request: WerkzeugRequest, response: WerkzeugResponse | None = None) -> Session:
    """Rotate the tokens of a refresh request (the route ``init`` mounts does this).

    Raises ``UnauthorizedError`` or ``TokenTheftDetectedError``.
    """
    extension = _extension()
    state = _request_state(extension, request)
    environ = request.environ
    handler = extension.handler
    session = handler.refresh(
        state.effects,
        _cookie_header(request),
        environ.get(_AUTH_MODE_ENVIRON),
        environ.get(_AUTHORIZATION_ENVIRON),
        client=_client(handler, environ),
    )
    state.session = session
    if response is not None:
        _apply(response, state.effects, None)
    return session


def preflight(response: WerkzeugResponse) -> WerkzeugResponse:
    """Add the CORS preflight headers the session protocol needs to ``response`` and return it.

    Merges the request headers of both protocol generations (``anti-csrf, fdi-version,
    supertokens-sdk-name, supertokens-sdk-version, rid, st-auth-mode, authorization,
    content-type``) into ``Access-Control-Allow-Headers`` and sets
    ``Access-Control-Allow-Credentials: true``.
    The allowed origin stays the application's (an exact allow-list, never ``*``).
    """
    for name, value in preflight_headers(response.headers.get("Access-Control-Allow-Headers")):
        response.headers[name] = value
    return response


# -- current_session ---------------------------------------------------------------------


def _current_session() -> Session | None:
    state: _RequestState | None = _current_request().environ.get(_ENVIRON_KEY)
    return None if state is None else state.session


class _SessionProxy(LocalProxy["Session | None"]):
    """The proxy behind :data:`current_session`.

    Its five data attributes are properties: through a plain ``LocalProxy`` every read
    first fails (``AttributeError``) and is then resolved by ``__getattr__``, which costs
    more than the rest of reading the attribute. Everything else is ``LocalProxy``'s; with
    no session the properties raise the same ``AttributeError`` the proxy would.
    """

    __slots__ = ()

    @property
    def user_id(self) -> str:
        return self._get_current_object().user_id  # type: ignore[union-attr]

    @property
    def handle(self) -> str:
        return self._get_current_object().handle  # type: ignore[union-attr]

    @property
    def jwt_payload(self) -> dict[str, Any]:
        return self._get_current_object().jwt_payload  # type: ignore[union-attr]

    @property
    def access_token(self) -> str:
        return self._get_current_object().access_token  # type: ignore[union-attr]

    @property
    def auth_time(self) -> int:
        return self._get_current_object().auth_time  # type: ignore[union-attr]


current_session: Session = cast(Session, _SessionProxy(_current_session))
"""The :class:`~sessionward.session.Session` of the current request (a proxy, like
``flask_login.current_user``): set by ``verify_session``, :func:`get_session`,
:func:`create_new_session` and the refresh route. Proxies to ``None`` when the request has
no session (``bool(current_session)`` is then ``False``)."""


# -- management calls bound to the current app's engine ----------------------------------


def get_engine(app: Flask | None = None) -> SessionWard:
    """The :class:`~sessionward.SessionWard` of ``app`` (default: :data:`flask.current_app`).

    Raises :class:`~sessionward.errors.GeneralError` when :func:`init` was not called for
    that app."""
    return _extension(app).engine


def revoke_session(handle: str) -> bool:
    """End one session; return whether it existed."""
    return _extension().engine.revoke_session(handle)


def revoke_multiple_sessions(handles: list[str]) -> list[str]:
    """End these sessions; return the handles that existed."""
    return _extension().engine.revoke_multiple_sessions(handles)


def revoke_all_sessions_for_user(user_id: str) -> list[str]:
    """End every session of ``user_id``; return their handles."""
    return _extension().engine.revoke_all_sessions_for_user(user_id)


def revoke_other_sessions(user_id: str, keep: str) -> list[str]:
    """End every session of ``user_id`` except ``keep`` (a handle); return the handles
    ended. In a view, ``current_session.revoke_other_sessions()`` does this for the
    current session."""
    return _extension().engine.revoke_other_sessions(user_id, keep)


def get_all_sessions_for_user(user_id: str) -> list[SessionInformation]:
    """Everything stored about each live session of ``user_id``, most recently active
    first: when it was created and last active, the client's IP address and user agent,
    when the user last authenticated, whether it is persistent (a "your devices" page)."""
    return _extension().engine.get_all_sessions_for_user(user_id)


def get_all_session_handles_for_user(user_id: str) -> list[str]:
    """Handles of ``user_id``'s live sessions, oldest first."""
    return _extension().engine.get_all_session_handles_for_user(user_id)


def get_session_data(handle: str) -> dict[str, Any]:
    """The private session data; ``UnauthorizedError`` if the session is gone."""
    return _extension().engine.get_session_data(handle)


def update_session_data(handle: str, data: dict[str, Any]) -> None:
    """Overwrite the private session data; ``UnauthorizedError`` if the session is gone."""
    _extension().engine.update_session_data(handle, data)


def get_jwt_payload(handle: str) -> dict[str, Any]:
    """The JWT payload stored for the session."""
    return _extension().engine.get_jwt_payload(handle)


def update_jwt_payload(handle: str, payload: dict[str, Any]) -> None:
    """Overwrite the stored JWT payload: access tokens issued from the next refresh on carry
    it. (To re-issue the current request's token at once, use
    ``current_session.update_jwt_payload``.)"""
    _extension().engine.update_jwt_payload(handle, payload)


def get_session_information(handle: str) -> SessionInformation:
    """Everything stored about a session; ``UnauthorizedError`` if it is gone."""
    return _extension().engine.get_session_information(handle)
