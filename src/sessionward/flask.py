"""Flask integration (SPEC §3.1): ``init(app)``, ``verify_session``, ``current_session``.

::

    from flask import Flask
    from sessionward.flask import init, verify_session, current_session

    app = Flask(__name__)
    init(app, store="sqlite:///sessions.db")

    @app.get("/me")
    @verify_session()
    def me():
        return {"user_id": current_session.user_id}

Per-request state (the pending :class:`~sessionward.transport.ResponseEffects` and the
request's :class:`~sessionward.session.Session`) lives in the request's WSGI environ, tied
to the request it belongs to, never in module globals. An ``after_request`` hook writes the
pending cookies and protocol headers onto whatever response the view finally returns; a
response passed explicitly to :func:`create_new_session` or :func:`get_session` receives
them at once as well (writing twice replaces, it never duplicates).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from flask import Flask, current_app, got_request_exception, request
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from .browser import CLIENT_SCRIPT_HEADERS, CLIENT_SCRIPT_PATH, client_script
from .config import Config
from .engine.sync import SessionWard
from .engine.types import SessionInformation
from .errors import GeneralError, SessionWardError, StorageUnavailableError
from .session import ErrorHandler, Session, SessionHandler, TheftHook
from .stores.base import Store
from .transport import (
    ANTI_CSRF_HEADER,
    PROTOCOL_HEADERS,
    ResponseEffects,
    preflight_headers,
    session_cookie_present,
)

__all__ = [
    "EXTENSION_KEY",
    "SessionWardExtension",
    "create_new_session",
    "current_session",
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

EXTENSION_KEY = "sessionward"
"""Key of the :class:`SessionWardExtension` in ``app.extensions``."""

REFRESH_ENDPOINT = "sessionward.refresh"
CLIENT_SCRIPT_ENDPOINT = "sessionward.client_script"
_ENVIRON_KEY = "sessionward.request_state"
_SAFE_SKIP_METHODS = frozenset({"OPTIONS"})
_ANTI_CSRF_ENVIRON = "HTTP_" + ANTI_CSRF_HEADER.upper().replace("-", "_")

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass
class SessionWardExtension:
    """What :func:`init` stores in ``app.extensions["sessionward"]``.

    ``engine`` is the app's :class:`~sessionward.SessionWard` (close it at shutdown with
    :meth:`close`), ``handler`` the request-level :class:`~sessionward.session.SessionHandler`.
    """

    engine: SessionWard
    handler: SessionHandler
    config: Config

    def close(self) -> None:
        """Close the engine (and the store it opened from a URL)."""
        self.engine.close()


class _RequestState:
    """The session work of one request, kept in that request's WSGI environ."""

    __slots__ = ("effects", "session")

    def __init__(self, config: Config) -> None:
        self.effects: ResponseEffects | None = ResponseEffects(config)
        self.session: Session | None = None


# -- set-up ------------------------------------------------------------------------------


def init(
    app: Flask,
    config: Config | None = None,
    *,
    store: Store | str | None = None,
    on_token_theft_detected: TheftHook | None = None,
    error_handler: ErrorHandler | None = None,
    **options: Any,
) -> SessionWardExtension:
    """Install sessionward on ``app`` and return the extension object.

    The configuration comes from ``config`` (a :class:`~sessionward.Config`), updated by
    keyword ``options`` named as the ``Config`` fields; with neither, from
    ``app.config["SESSIONWARD"]`` (a ``Config`` or a mapping of option names) when set, else
    the defaults. ``store`` (a store object or URL) overrides ``config.store``.

    Registers: the refresh route (``POST`` at ``config.refresh_api_path``, endpoint
    ``sessionward.refresh``; ``OPTIONS`` there answers a CORS preflight with
    :func:`preflight`), the browser client (``GET``
    :data:`~sessionward.browser.CLIENT_SCRIPT_PATH`, endpoint
    ``sessionward.client_script``), an error handler for :class:`~sessionward.errors.SessionWardError`
    (SPEC §4.4; ``on_token_theft_detected(handle, user_id)`` is called on theft,
    ``error_handler(error, default_answer)`` may replace any answer), and the
    ``after_request`` hook that writes pending cookies and headers.
    """
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError("sessionward.flask.init() has already been called for this app")
    resolved = _resolve_config(app, config, options)
    engine = SessionWard(resolved, store=store)
    try:
        extension = SessionWardExtension(
            engine, SessionHandler(engine, on_token_theft_detected, error_handler), resolved
        )
        app.extensions[EXTENSION_KEY] = extension
        app.add_url_rule(
            resolved.refresh_api_path,
            endpoint=REFRESH_ENDPOINT,
            view_func=_refresh_view,
            methods=["POST", "OPTIONS"],
            provide_automatic_options=False,
        )
        app.add_url_rule(
            CLIENT_SCRIPT_PATH, endpoint=CLIENT_SCRIPT_ENDPOINT, view_func=_client_script_view,
            methods=["GET"],
        )
        app.register_error_handler(SessionWardError, _handle_session_error)
        app.after_request(_apply_pending_effects)
        got_request_exception.connect(_drop_effects_on_crash, app)
    except BaseException:
        app.extensions.pop(EXTENSION_KEY, None)
        engine.close()
        raise
    return extension


def _resolve_config(app: Flask, config: Config | None, options: Mapping[str, Any]) -> Config:
    if config is None and not options:
        from_app = app.config.get("SESSIONWARD")
        if isinstance(from_app, Config):
            return from_app
        if isinstance(from_app, Mapping):
            return Config.from_mapping(from_app)
        return Config()
    if not options:
        assert config is not None
        return config
    base = {} if config is None else {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return Config.from_mapping({**base, **options})


def _extension() -> SessionWardExtension:
    # _get_current_object(): one context-variable read, where an attribute read through the
    # proxy first fails (AttributeError) and then resolves through __getattr__.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return cast(SessionWardExtension, app.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "sessionward is not installed on this app: call sessionward.flask.init(app) first"
        ) from None


def _request_state(
    extension: SessionWardExtension | None = None, req: WerkzeugRequest | None = None
) -> _RequestState:
    """This request's state, created on first use.

    It lives in the request's WSGI environ: tied to the request itself (an app context can
    outlive a request), and reached without going through Flask's context proxies.
    """
    environ = (req if req is not None else _current_request()).environ
    state: _RequestState | None = environ.get(_ENVIRON_KEY)
    if state is None:
        state = environ[_ENVIRON_KEY] = _RequestState((extension or _extension()).config)
    elif state.effects is None:
        state.effects = ResponseEffects((extension or _extension()).config)
    return state


def _effects(state: _RequestState) -> ResponseEffects:
    assert state.effects is not None
    return state.effects


# -- applying effects to responses --------------------------------------------------------


def _canonical(name: str) -> str:
    if name in PROTOCOL_HEADERS:
        return name
    return "-".join(part.capitalize() for part in name.split("-"))


def _apply(response: WerkzeugResponse, effects: ResponseEffects) -> None:
    """Write ``effects`` onto ``response``: one ``Set-Cookie`` per cookie name (replacing
    any earlier one of that name) and the other headers overwritten, so applying the same
    effects twice changes nothing."""
    headers = response.headers
    updates = effects.response_headers(headers.get("Access-Control-Expose-Headers"))
    new_cookies = [value for name, value in updates if name == "set-cookie"]
    if new_cookies:
        names = {value.split("=", 1)[0].strip() for value in new_cookies}
        kept = [c for c in headers.getlist("Set-Cookie") if c.split("=", 1)[0].strip() not in names]
        del headers["Set-Cookie"]
        for value in [*kept, *new_cookies]:
            headers.add("Set-Cookie", value)
    for name in PROTOCOL_HEADERS:
        del headers[name]
    for name, value in updates:
        if name != "set-cookie":
            headers[_canonical(name)] = value


def _current_request() -> WerkzeugRequest:
    """:data:`flask.request` itself (cheaper than attribute reads through the proxy)."""
    req: WerkzeugRequest = request._get_current_object()  # type: ignore[attr-defined]
    return req


def _apply_pending_effects(response: WerkzeugResponse) -> WerkzeugResponse:
    state: _RequestState | None = _current_request().environ.get(_ENVIRON_KEY)
    if state is not None and state.effects is not None and state.effects.pending:
        _apply(response, state.effects)
    return response


def _drop_effects_on_crash(sender: Flask, exception: BaseException, **extra: Any) -> None:
    """An unhandled exception becomes a 500 page: it must not carry session cookies."""
    state: _RequestState | None = request.environ.get(_ENVIRON_KEY)
    if state is not None:
        state.effects = None


def preflight(response: WerkzeugResponse) -> WerkzeugResponse:
    """Add the CORS preflight headers the session protocol needs to ``response`` and return it.

    Merges ``anti-csrf, fdi-version, supertokens-sdk-name, supertokens-sdk-version`` into
    ``Access-Control-Allow-Headers`` and sets ``Access-Control-Allow-Credentials: true``.
    The allowed origin stays the application's (an exact allow-list, never ``*``).
    """
    for name, value in preflight_headers(response.headers.get("Access-Control-Allow-Headers")):
        response.headers[_canonical(name)] = value
    return response


# -- errors ------------------------------------------------------------------------------


def _handle_session_error(error: SessionWardError) -> WerkzeugResponse:
    extension = _extension()
    state = _request_state(extension)
    # The answer decides the session cookies alone: tokens minted earlier in a request that
    # ends in an error are not delivered (a 503 or a "try refresh" leaves cookies untouched).
    effects = ResponseEffects(extension.config)
    state.effects = effects
    answer = extension.handler.answer_error(effects, error)
    if isinstance(error, GeneralError) and not isinstance(error, StorageUnavailableError):
        current_app.logger.error("sessionward error answered with %s", answer.status, exc_info=error)
    response = current_app.response_class(answer.body, status=answer.status, mimetype="application/json")
    for name, value in answer.headers:
        response.headers[_canonical(name)] = value
    _apply(response, effects)
    return response


# -- the refresh route -------------------------------------------------------------------


def _refresh_view() -> WerkzeugResponse:
    if request.method == "OPTIONS":
        return preflight(current_app.response_class(status=204))
    response = current_app.response_class(b"{}", status=200, mimetype="application/json")
    refresh_session(request, response)
    return response


def _client_script_view() -> WerkzeugResponse:
    return current_app.response_class(client_script(), status=200, headers=list(CLIENT_SCRIPT_HEADERS))


# -- request-level API (SPEC §3.1) -------------------------------------------------------


def _cookie_header(req: WerkzeugRequest) -> str | None:
    """The raw ``Cookie`` header, read from the WSGI environ (not Werkzeug's cookie parser;
    a repeated header arrives comma-joined, which the transport layer splits)."""
    value: str | None = req.environ.get("HTTP_COOKIE")
    return value


def create_new_session(
    response: WerkzeugResponse | None,
    user_id: str,
    jwt_payload: dict[str, Any] | None = None,
    session_data: dict[str, Any] | None = None,
) -> Session:
    """Create a session for ``user_id`` and set its cookies and headers.

    They are written to ``response`` at once (when given) and, by the ``after_request``
    hook, to whatever response the view finally returns. Raises ``GeneralError`` on
    failure (``StorageUnavailableError`` when the store is down).
    """
    extension = _extension()
    state = _request_state(extension)
    effects = _effects(state)
    session = extension.handler.create(effects, user_id, jwt_payload, session_data)
    state.session = session
    if response is not None:
        _apply(response, effects)
    return session


def get_session(
    req: WerkzeugRequest, response: WerkzeugResponse | None = None, anti_csrf_check: bool | None = None
) -> Session:
    """Verify the session of ``req`` (normally :data:`flask.request`).

    ``anti_csrf_check=None`` checks the ``anti-csrf`` header unless the method is GET, HEAD
    or OPTIONS (and only when ``enable_anti_csrf`` is on). Raises ``UnauthorizedError`` or
    ``TryRefreshTokenError``. A replacement access token minted by verification is written
    to ``response`` when given, and in any case to the response the view returns.
    """
    extension = _extension()
    state = _request_state(extension, req)
    effects = _effects(state)
    session = extension.handler.verify(
        effects, _cookie_header(req), req.environ.get(_ANTI_CSRF_ENVIRON), req.method, anti_csrf_check
    )
    state.session = session
    if response is not None and effects.pending:
        _apply(response, effects)
    return session


def refresh_session(req: WerkzeugRequest, response: WerkzeugResponse | None = None) -> Session:
    """Rotate the tokens of a refresh request (the route :func:`init` mounts does this).

    Raises ``UnauthorizedError`` or ``TokenTheftDetectedError``.
    """
    extension = _extension()
    state = _request_state(extension, req)
    effects = _effects(state)
    session = extension.handler.refresh(effects, _cookie_header(req))
    state.session = session
    if response is not None:
        _apply(response, effects)
    return session


def _current_session() -> Session | None:
    state: _RequestState | None = _current_request().environ.get(_ENVIRON_KEY)
    return None if state is None else state.session


class _SessionProxy(LocalProxy["Session | None"]):
    """The proxy behind :data:`current_session`.

    Its four data attributes are properties: through a plain ``LocalProxy`` every read
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


current_session: Session = cast(Session, _SessionProxy(_current_session))
"""The :class:`~sessionward.session.Session` of the current request (a proxy, like
``flask_login.current_user``): set by :func:`verify_session`, :func:`get_session`,
:func:`create_new_session` and the refresh route. Proxies to ``None`` when the request has
no session (``bool(current_session)`` is then ``False``)."""


def verify_session(
    anti_csrf_check: bool | None = None, session_required: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A view decorator that verifies the session before the view runs.

    Inside the view the session is :data:`current_session`. Errors are answered by the
    handler :func:`init` installed (401 ``try refresh token``, 401 ``unauthorised``...).
    With ``session_required=False`` a request without the ``sIdRefreshToken`` cookie (no
    session at all) runs the view with ``current_session`` proxying ``None``; a request that
    has a session but an expired or invalid access token is still answered "try refresh
    token", so the client refreshes. ``OPTIONS`` requests (CORS preflights carry no
    cookies) run the view without verification. Works on sync and ``async`` views.
    """

    def verify() -> None:
        req = _current_request()
        if req.method in _SAFE_SKIP_METHODS:
            return
        if not session_required and not session_cookie_present(_cookie_header(req)):
            return
        get_session(req, None, anti_csrf_check)

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                verify()
                return await view(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            verify()
            return view(*args, **kwargs)

        return wrapper

    return decorator


# -- management calls bound to the current app's engine ----------------------------------


def revoke_session(handle: str) -> bool:
    """End one session; return whether it existed."""
    return _extension().engine.revoke_session(handle)


def revoke_multiple_sessions(handles: list[str]) -> list[str]:
    """End these sessions; return the handles that existed."""
    return _extension().engine.revoke_multiple_sessions(handles)


def revoke_all_sessions_for_user(user_id: str) -> list[str]:
    """End every session of ``user_id``; return their handles."""
    return _extension().engine.revoke_all_sessions_for_user(user_id)


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

