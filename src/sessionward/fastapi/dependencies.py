"""``verify_session()``: the FastAPI dependency (also callable from plain Starlette)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, overload

from starlette.requests import Request

from ..session import AsyncSession
from ..transport.error_responses import bare_factory_error
from .api import _verify
from .middleware import STATE_SESSION_KEY

__all__ = ["verify_session"]

# The default of verify_session's hidden parameter: FastAPI fills a parameter annotated
# ``Request`` with the request, which is how ``Depends(verify_session)`` is recognised.
_NOT_A_DEPENDENCY: Any = None


@overload
def verify_session(
    anti_csrf_check: bool | None = None,
    session_required: Literal[True] = True,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Callable[[Request], Awaitable[AsyncSession]]: ...


@overload
def verify_session(
    anti_csrf_check: bool | None = None,
    *,
    session_required: Literal[False],
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Callable[[Request], Awaitable[AsyncSession | None]]: ...


@overload
def verify_session(
    anti_csrf_check: bool | None,
    session_required: bool,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Callable[[Request], Awaitable[AsyncSession | None]]: ...


def verify_session(
    anti_csrf_check: bool | None = None,
    session_required: bool = True,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
    _misused_as_dependency: Request = _NOT_A_DEPENDENCY,
) -> Callable[[Request], Awaitable[AsyncSession | None]]:
    """A dependency for ``Depends(verify_session())`` returning the request's session.

    With ``session_required=False`` the dependency returns ``None`` when the request has no
    session at all (2020 protocol: no ``sIdRefreshToken`` cookie; current cookie mode: no
    access cookie; header mode: no Bearer token); a session that is present but invalid or
    expired is still answered with the usual 401, so that the frontend refreshes. Outside
    FastAPI (plain Starlette) call it directly: ``await verify_session()(request)``.
    ``Depends(verify_session)``, without the call, fails on the first request with a
    ``TypeError`` saying so. ``check_database=True`` also reads the session's row (one
    store read: a revocation anywhere is refused at once); ``max_auth_age`` (seconds)
    answers 403 ``{"message": "re-authentication required"}`` when the user authenticated
    longer ago (see ``AsyncSession.mark_reauthenticated``).
    """
    if _misused_as_dependency is not _NOT_A_DEPENDENCY or callable(anti_csrf_check):
        raise bare_factory_error("Depends(verify_session())")

    async def session_dependency(request: Request) -> AsyncSession | None:
        # get_session's work, without a call of it (one coroutine fewer per request).
        scope = request.scope
        session = _verify(scope, anti_csrf_check, check_database, max_auth_age, not session_required)
        if session is None:
            return None
        if not isinstance(session, AsyncSession):
            session = await session
        scope["state"][STATE_SESSION_KEY] = session
        return session

    return session_dependency
