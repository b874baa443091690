"""FastAPI and Starlette integration (pure ASGI, async throughout).

::

    from fastapi import Depends, FastAPI, Request
    from sessionward.fastapi import AsyncSession, create_new_session, init, verify_session

    app = FastAPI()
    init(app, store="sqlite:///sessions.db")

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        session = await create_new_session(request, "alice", {"role": "admin"})
        return {"handle": session.handle}

    @app.get("/me")
    async def me(session: AsyncSession = Depends(verify_session())) -> dict[str, str]:
        return {"user_id": session.user_id}

:func:`init` installs :class:`SessionWardMiddleware`, a pure ASGI middleware (not
``BaseHTTPMiddleware``). For every request it puts a fresh
:class:`~sessionward.transport.ResponseEffects` into ``scope["state"]`` and, when the
response starts, writes the pending cookies and protocol headers onto the
``http.response.start`` headers of *whatever* response the endpoint returned (replacing,
never duplicating, ``Set-Cookie`` of the session cookies and the protocol headers). It also
registers the refresh route, the exception handler for
:class:`~sessionward.errors.SessionWardError` and closes the engine at application shutdown.

Plain Starlette works the same way (``init(Starlette(...))``); there, call
``await get_session(request)`` in the endpoint instead of using ``Depends``.

Every public name is importable from here; the submodules (``middleware``, ``api``,
``dependencies``, ``app``) are an internal layout. See ``docs/fastapi.md``.
"""

from __future__ import annotations

from ..session import AsyncSession, ErrorHandler
from .api import (
    create_new_session,
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
from .app import init, logger
from .dependencies import verify_session
from .middleware import (
    STATE_CONTEXT_KEY,
    STATE_SESSION_KEY,
    SessionWardMiddleware,
    TheftHook,
)

__all__ = [
    "STATE_CONTEXT_KEY",
    "STATE_SESSION_KEY",
    "AsyncSession",
    "ErrorHandler",
    "Session",
    "SessionWardMiddleware",
    "TheftHook",
    "create_new_session",
    "get_all_session_handles_for_user",
    "get_all_sessions_for_user",
    "get_engine",
    "get_jwt_payload",
    "get_session",
    "get_session_data",
    "get_session_information",
    "init",
    "logger",
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

Session = AsyncSession
"""The request-level session type of this module (an :class:`~sessionward.session.AsyncSession`)."""
