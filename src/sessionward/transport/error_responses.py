"""Session errors on the wire: the status, JSON body and headers a session error is
answered with, and how every adapter logs it; also the usage error of an adapter's
``verify_session`` used without being called."""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

from ..config import Config
from ..errors import (
    GeneralError,
    ReauthenticationRequiredError,
    SessionWardError,
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)

__all__ = [
    "REAUTHENTICATION_STATUS",
    "RETRY_AFTER_SECONDS",
    "ErrorResponse",
    "bare_factory_error",
    "error_response",
    "log_error_answer",
]

RETRY_AFTER_SECONDS = 5
#: The status of a session that is valid but too old for the route (``max_auth_age``).
REAUTHENTICATION_STATUS = 403


def log_error_answer(logger: logging.Logger, error: SessionWardError, status: int) -> None:
    """Log a session error the way every adapter does: a store outage as a warning, an
    internal error with its traceback, a rejected session at debug level."""
    if isinstance(error, StorageUnavailableError):
        logger.warning("session store unavailable (answered %d): %s", status, error)
    elif isinstance(error, GeneralError):
        logger.error("session error (answered %d): %s", status, error, exc_info=error)
    else:
        logger.debug("%s (answered %d): %s", type(error).__name__, status, error)


def bare_factory_error(usage: str) -> TypeError:
    """The error for ``verify_session`` used without being called first."""
    return TypeError(
        f"verify_session is a factory: write {usage} with the parentheses "
        f"(it takes the options anti_csrf_check and session_required)"
    )


class ErrorResponse(NamedTuple):
    """How a session error is answered: status, JSON body, whether the session cookies are
    cleared, extra headers."""

    status: int
    body: bytes
    clear_cookies: bool
    headers: tuple[tuple[str, str], ...]


def _json(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


def error_response(error: SessionWardError, config: Config) -> ErrorResponse:
    """The default answer to ``error``: status, JSON body, whether to clear cookies.

    ``ReauthenticationRequiredError`` (``max_auth_age`` exceeded) is a 403 with
    ``{"message": "re-authentication required"}`` that clears nothing: the session is
    fine, the client must not refresh but ask the user to authenticate again."""
    if isinstance(error, ReauthenticationRequiredError):
        return ErrorResponse(REAUTHENTICATION_STATUS, _json("re-authentication required"), False, ())
    status = config.session_expired_status_code
    if isinstance(error, TryRefreshTokenError):
        return ErrorResponse(status, _json("try refresh token"), False, ())
    if isinstance(error, TokenTheftDetectedError):
        return ErrorResponse(status, _json("token theft detected"), True, ())
    if isinstance(error, UnauthorizedError):
        return ErrorResponse(status, _json("unauthorised"), error.clear_cookies, ())
    if isinstance(error, StorageUnavailableError):
        return ErrorResponse(
            503,
            _json("session store unavailable"),
            False,
            (("retry-after", str(RETRY_AFTER_SECONDS)),),
        )
    return ErrorResponse(500, _json("internal error"), False, ())
