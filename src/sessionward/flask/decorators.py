"""``@verify_session()``: the view decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from ..transport.error_responses import bare_factory_error
from ..transport.request import session_cookie_present
from .api import get_session
from .state import _AUTH_MODE_ENVIRON, _AUTHORIZATION_ENVIRON, _cookie_header, _current_request, _extension

__all__ = ["verify_session"]

P = ParamSpec("P")
R = TypeVar("R")

_SAFE_SKIP_METHODS = frozenset({"OPTIONS"})


def verify_session(
    anti_csrf_check: bool | None = None,
    session_required: bool = True,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A view decorator that verifies the session before the view runs.

    Inside the view the session is ``current_session``. Errors are answered by the
    handler ``init`` installed (401 ``try refresh token``, 401 ``unauthorised``...).
    With ``session_required=False`` a request without a session at all (2020 protocol: no
    ``sIdRefreshToken`` cookie; current cookie mode: no access cookie; header mode: no
    Bearer token) runs the view with ``current_session`` proxying ``None``; a request that
    has a session but an expired or invalid access token is still answered "try refresh
    token", so the client refreshes. ``OPTIONS`` requests (CORS preflights carry no
    cookies) run the view without verification. ``check_database=True`` also reads the
    session's row (one store read: a revocation anywhere is refused at once);
    ``max_auth_age`` (seconds) answers 403 ``{"message": "re-authentication required"}``
    when the user authenticated longer ago (see ``Session.mark_reauthenticated``). Works
    on sync and ``async`` views.
    ``@verify_session`` without the parentheses raises ``TypeError`` at decoration.
    """
    if callable(anti_csrf_check):
        raise bare_factory_error("@verify_session()")

    def verify() -> None:
        req = _current_request()
        if req.method in _SAFE_SKIP_METHODS:
            return
        if not session_required:
            environ = req.environ
            if not session_cookie_present(
                _cookie_header(req),
                environ.get(_AUTH_MODE_ENVIRON),
                environ.get(_AUTHORIZATION_ENVIRON),
                _extension().config,
            ):
                return
        get_session(req, None, anti_csrf_check, check_database=check_database, max_auth_age=max_auth_age)

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
