"""The app's extension object and the per-request state, and writing effects onto a
Werkzeug response.

Per-request state (the pending :class:`~sessionward.transport.ResponseEffects` and the
request's :class:`~sessionward.session.Session`) lives in the request's WSGI environ, tied
to the request it belongs to, never in module globals.
"""

from __future__ import annotations

import dataclasses
from typing import cast

from flask import Flask, current_app, request
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from ..config import Config
from ..engine.sync import SessionWard
from ..engine.types import ClientInfo
from ..errors import GeneralError
from ..session import Session, SessionHandler
from ..transport.headers import ANTI_CSRF_HEADER, AUTH_MODE_HEADER, AUTHORIZATION_HEADER
from ..transport.response import ResponseEffects, final_response_headers

__all__ = ["EXTENSION_KEY", "SessionWardExtension"]

EXTENSION_KEY = "sessionward"
"""Key of the :class:`SessionWardExtension` in ``app.extensions``."""

_ENVIRON_KEY = "sessionward.request_state"
_ANTI_CSRF_ENVIRON = "HTTP_" + ANTI_CSRF_HEADER.upper().replace("-", "_")
_AUTH_MODE_ENVIRON = "HTTP_" + AUTH_MODE_HEADER.upper().replace("-", "_")
_AUTHORIZATION_ENVIRON = "HTTP_" + AUTHORIZATION_HEADER.upper()
_FORWARDED_FOR_ENVIRON = "HTTP_X_FORWARDED_FOR"
_USER_AGENT_ENVIRON = "HTTP_USER_AGENT"


@dataclasses.dataclass
class SessionWardExtension:
    """What :func:`~sessionward.flask.init` stores in ``app.extensions["sessionward"]``.

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
        self.effects = ResponseEffects(config)
        self.session: Session | None = None


def _extension(app: Flask | None = None) -> SessionWardExtension:
    if app is None:
        # _get_current_object(): one context-variable read, where an attribute read through
        # the proxy first fails (AttributeError) and then resolves through __getattr__.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return cast(SessionWardExtension, app.extensions[EXTENSION_KEY])
    except KeyError:
        raise GeneralError("sessionward.flask.init() was not called for this app") from None


def _current_request() -> WerkzeugRequest:
    """:data:`flask.request` itself (cheaper than attribute reads through the proxy)."""
    req: WerkzeugRequest = request._get_current_object()  # type: ignore[attr-defined]
    return req


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
    return state


def _apply(response: WerkzeugResponse, effects: ResponseEffects, secure_request: bool | None) -> None:
    """Write ``effects`` onto ``response`` (see ``final_response_headers``): applying the
    same effects twice changes nothing."""
    headers = response.headers
    final = final_response_headers(effects, headers.items(), secure_request)
    headers.clear()
    headers.extend(final)


def _cookie_header(req: WerkzeugRequest) -> str | None:
    """The raw ``Cookie`` header, read from the WSGI environ (not Werkzeug's cookie parser;
    a repeated header arrives comma-joined, which the transport layer splits)."""
    value: str | None = req.environ.get("HTTP_COOKIE")
    return value


def _client(handler: SessionHandler, environ: dict[str, object]) -> ClientInfo:
    """The request's client: ``REMOTE_ADDR``, ``X-Forwarded-For`` (the WSGI server joins
    repeated headers with ``","``) and ``User-Agent``."""

    def text(key: str) -> str | None:
        value = environ.get(key)
        return value if isinstance(value, str) else None

    return handler.client_info(text("REMOTE_ADDR"), text(_FORWARDED_FOR_ENVIRON), text(_USER_AGENT_ENVIRON))
