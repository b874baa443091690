"""``@verify_session()``: the view decorator (sync and async views)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import HttpRequest  # type: ignore[import-untyped]

from ..transport.error_responses import bare_factory_error
from ..transport.request import session_cookie_present
from ..transport.response import ResponseEffects
from .api import EFFECTS_ATTR, SESSION_ATTR, cookie_header, get_session, protocol_headers
from .engine import get_handler

__all__ = ["verify_session"]

V = TypeVar("V", bound=Callable[..., Any])


def _verify_into_request(
    request: HttpRequest,
    anti_csrf_check: bool | None,
    session_required: bool,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> None:
    if not isinstance(getattr(request, EFFECTS_ATTR, None), ResponseEffects):
        raise ImproperlyConfigured(
            "verify_session needs 'sessionward.django.SessionWardMiddleware' in settings.MIDDLEWARE"
        )
    if not session_required:
        _, auth_mode, authorization = protocol_headers(request)
        config = get_handler().config
        if not session_cookie_present(cookie_header(request), auth_mode, authorization, config):
            setattr(request, SESSION_ATTR, None)
            return
    get_session(
        request, anti_csrf_check=anti_csrf_check, check_database=check_database, max_auth_age=max_auth_age
    )


def verify_session(
    anti_csrf_check: bool | None = None,
    session_required: bool = True,
    *,
    check_database: bool = False,
    max_auth_age: int | None = None,
) -> Callable[[V], V]:
    """View decorator: verify the session and put it on ``request.sessionward``.

    Works on sync and async views (in async views the engine call runs in a worker thread
    via ``asgiref.sync.sync_to_async``, never on the event loop). With
    ``session_required=False`` a request without a session at all (2020 protocol: no
    ``sIdRefreshToken`` cookie; current cookie mode: no access cookie; header mode: no
    Bearer token) gets ``request.sessionward = None``; a present but expired session still answers
    "try refresh token". ``check_database=True`` also reads the session's row (one store
    read: a revocation anywhere is refused at once); ``max_auth_age`` (seconds) answers
    403 ``{"message": "re-authentication required"}`` when the user authenticated longer
    ago (see ``Session.mark_reauthenticated``). Errors are answered by the middleware. ``@verify_session``
    without the parentheses raises ``TypeError`` at decoration.
    """
    if callable(anti_csrf_check):
        raise bare_factory_error("@verify_session()")

    def decorator(view: V) -> V:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                await sync_to_async(_verify_into_request, thread_sensitive=False)(
                    request, anti_csrf_check, session_required, check_database, max_auth_age
                )
                return await view(request, *args, **kwargs)

            return cast(V, async_view)

        @functools.wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            _verify_into_request(request, anti_csrf_check, session_required, check_database, max_auth_age)
            return view(request, *args, **kwargs)

        return cast(V, sync_view)

    return decorator
