"""``init(app)``: the refresh, client-script and JWKS routes, the error handler for session
errors, and the hooks that write pending effects onto the response."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, got_request_exception, request
from werkzeug.wrappers import Response as WerkzeugResponse

from ..browser import CLIENT_SCRIPT_HEADERS, CLIENT_SCRIPT_PATH, client_script
from ..config import Config
from ..engine.sync import SessionWard
from ..errors import GeneralError, SessionWardError
from ..session import ErrorHandler, SessionHandler, TheftHook
from ..stores.base import Store
from ..transport.error_responses import log_error_answer
from ..transport.jwks import jwks_answer
from ..transport.protocol import SIGN_OUT_BODY
from .api import preflight, refresh_session
from .state import (
    _ANTI_CSRF_ENVIRON,
    _AUTH_MODE_ENVIRON,
    _AUTHORIZATION_ENVIRON,
    _ENVIRON_KEY,
    EXTENSION_KEY,
    SessionWardExtension,
    _apply,
    _current_request,
    _extension,
    _request_state,
    _RequestState,
)

__all__ = ["CLIENT_SCRIPT_ENDPOINT", "JWKS_ENDPOINT", "REFRESH_ENDPOINT", "SIGN_OUT_ENDPOINT", "init"]

REFRESH_ENDPOINT = "sessionward.refresh"
SIGN_OUT_ENDPOINT = "sessionward.sign_out"
CLIENT_SCRIPT_ENDPOINT = "sessionward.client_script"
JWKS_ENDPOINT = "sessionward.jwks"

logger = logging.getLogger("sessionward.flask")


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
    ``preflight``), the sign-out route (``POST`` at ``refresh_api_path`` with
    ``/session/refresh`` replaced by ``/signout``, endpoint ``sessionward.sign_out``,
    answering ``200 {"status":"OK"}``; not mounted when ``refresh_api_path`` ends
    otherwise), the browser client (``GET``
    :data:`~sessionward.browser.CLIENT_SCRIPT_PATH`, endpoint
    ``sessionward.client_script``), the public key set (``GET`` at
    ``config.jwks_api_path``, endpoint ``sessionward.jwks``; not registered when that
    option is ``None``), an error handler for
    :class:`~sessionward.errors.SessionWardError` (``on_token_theft_detected(handle,
    user_id)`` is called on theft, ``error_handler(error, default_answer)`` may replace any
    answer), and the ``after_request`` hook that writes pending cookies and headers.
    """
    if EXTENSION_KEY in app.extensions:
        raise GeneralError("sessionward.flask.init() was already called for this app")
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
        sign_out_path = extension.handler.sign_out_path
        if sign_out_path is not None:
            app.add_url_rule(
                sign_out_path,
                endpoint=SIGN_OUT_ENDPOINT,
                view_func=_sign_out_view,
                methods=["POST", "OPTIONS"],
                provide_automatic_options=False,
            )
        app.add_url_rule(
            CLIENT_SCRIPT_PATH,
            endpoint=CLIENT_SCRIPT_ENDPOINT,
            view_func=_client_script_view,
            methods=["GET"],
        )
        _add_jwks_route(app, resolved)
        app.register_error_handler(SessionWardError, _handle_session_error)
        app.after_request(_apply_pending_effects)
        got_request_exception.connect(_drop_effects_on_crash, app)
    except BaseException:
        app.extensions.pop(EXTENSION_KEY, None)
        engine.close()
        raise
    return extension


def _add_jwks_route(app: Flask, config: Config) -> None:
    if config.jwks_api_path is not None:
        app.add_url_rule(config.jwks_api_path, endpoint=JWKS_ENDPOINT, view_func=_jwks_view, methods=["GET"])


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


def _apply_pending_effects(response: WerkzeugResponse) -> WerkzeugResponse:
    req = _current_request()
    state: _RequestState | None = req.environ.get(_ENVIRON_KEY)
    if state is not None and state.effects.pending:
        _apply(response, state.effects, req.is_secure)
    return response


def _drop_effects_on_crash(sender: Flask, exception: BaseException, **extra: Any) -> None:
    """An unhandled exception becomes a 500 page: it must not carry session cookies."""
    state: _RequestState | None = request.environ.get(_ENVIRON_KEY)
    if state is not None:
        state.effects.discard()


def _handle_session_error(error: SessionWardError) -> WerkzeugResponse:
    extension = _extension()
    effects = _request_state(extension).effects
    effects.discard()
    answer = extension.handler.answer_error(effects, error)
    log_error_answer(logger, error, answer.status)
    response = current_app.response_class(answer.body, status=answer.status, mimetype="application/json")
    response.headers.extend(answer.headers)
    # The after_request hook writes the effects (nothing, or the cleared cookies).
    return response


def _refresh_view() -> WerkzeugResponse:
    if request.method == "OPTIONS":
        return preflight(current_app.response_class(status=204))
    response = current_app.response_class(b"{}", status=200, mimetype="application/json")
    refresh_session(request, response)
    return response


def _sign_out_view() -> WerkzeugResponse:
    if request.method == "OPTIONS":
        return preflight(current_app.response_class(status=204))
    extension = _extension()
    environ = request.environ
    extension.handler.sign_out(
        _request_state(extension, request).effects,
        environ.get("HTTP_COOKIE"),
        environ.get(_ANTI_CSRF_ENVIRON),
        environ.get(_AUTH_MODE_ENVIRON),
        environ.get(_AUTHORIZATION_ENVIRON),
    )
    return current_app.response_class(SIGN_OUT_BODY, status=200, mimetype="application/json")


def _client_script_view() -> WerkzeugResponse:
    return current_app.response_class(client_script(), status=200, headers=list(CLIENT_SCRIPT_HEADERS))


def _jwks_view() -> WerkzeugResponse:
    body, headers = jwks_answer(*_extension().engine.jwks_with_max_age())
    return current_app.response_class(body, status=200, headers=list(headers))
