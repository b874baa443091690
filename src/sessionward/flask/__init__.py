"""Flask integration: ``init(app)``, ``verify_session``, ``current_session``.

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

Every public name is importable from here; the submodules (``state``, ``api``,
``decorators``, ``app``) are an internal layout.
"""

from __future__ import annotations

from ..session import ErrorHandler, Session, TheftHook
from .api import (
    create_new_session,
    current_session,
    get_all_session_handles_for_user,
    get_all_sessions_for_user,
    get_engine,
    get_jwt_payload,
    get_session,
    get_session_data,
    get_session_information,
    preflight,
    refresh_session,
    revoke_all_sessions_for_user,
    revoke_multiple_sessions,
    revoke_other_sessions,
    revoke_session,
    update_jwt_payload,
    update_session_data,
)
from .app import CLIENT_SCRIPT_ENDPOINT, JWKS_ENDPOINT, REFRESH_ENDPOINT, SIGN_OUT_ENDPOINT, init
from .decorators import verify_session
from .state import EXTENSION_KEY, SessionWardExtension

__all__ = [
    "CLIENT_SCRIPT_ENDPOINT",
    "EXTENSION_KEY",
    "JWKS_ENDPOINT",
    "REFRESH_ENDPOINT",
    "SIGN_OUT_ENDPOINT",
    "ErrorHandler",
    "Session",
    "SessionWardExtension",
    "TheftHook",
    "create_new_session",
    "current_session",
    "get_all_session_handles_for_user",
    "get_all_sessions_for_user",
    "get_engine",
    "get_jwt_payload",
    "get_session",
    "get_session_data",
    "get_session_information",
    "init",
    "preflight",
    "refresh_session",
    "revoke_all_sessions_for_user",
    "revoke_multiple_sessions",
    "revoke_other_sessions",
    "revoke_session",
    "update_jwt_payload",
    "update_session_data",
    "verify_session",
]
