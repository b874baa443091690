"""Django integration.

Set-up::

    INSTALLED_APPS += ["sessionward.django"]
    MIDDLEWARE += ["sessionward.django.SessionWardMiddleware"]
    SESSIONWARD = {"store": "sqlite:///sessionward.db", "access_token_validity": 900}

Views decorated with :func:`verify_session` read the session from ``request.sessionward``.
Every public name is importable from here; the submodules (``settings``, ``engine``,
``responses``, ``api``, ``decorators``, ``middleware``) are an internal layout. See
``docs/django.md``.
"""

from __future__ import annotations

from ..session import Session
from .api import (
    create_new_session,
    get_all_session_handles_for_user,
    get_all_sessions_for_user,
    get_jwt_payload,
    get_session,
    get_session_data,
    get_session_information,
    refresh_session,
    revoke_all_sessions_for_user,
    revoke_multiple_sessions,
    revoke_other_sessions,
    revoke_session,
    update_jwt_payload,
    update_session_data,
)
from .decorators import verify_session
from .engine import get_engine, reset_engine
from .middleware import SessionWardMiddleware
from .responses import SetCookieMorsel, apply_effects, preflight

__all__ = [
    "Session",
    "SessionWardMiddleware",
    "SetCookieMorsel",
    "apply_effects",
    "create_new_session",
    "get_all_session_handles_for_user",
    "get_all_sessions_for_user",
    "get_engine",
    "get_jwt_payload",
    "get_session",
    "get_session_data",
    "get_session_information",
    "preflight",
    "refresh_session",
    "reset_engine",
    "revoke_all_sessions_for_user",
    "revoke_multiple_sessions",
    "revoke_other_sessions",
    "revoke_session",
    "update_jwt_payload",
    "update_session_data",
    "verify_session",
]
