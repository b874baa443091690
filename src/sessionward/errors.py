"""Exceptions raised by sessionward.

Every error a caller can act on derives from :class:`SessionWardError`. Messages are meant
for logs: they never contain a token, a key or a hash of either.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GeneralError",
    "PayloadTooLargeError",
    "ReauthenticationRequiredError",
    "SessionWardError",
    "StorageUnavailableError",
    "TokenTheftDetectedError",
    "TryRefreshTokenError",
    "UnauthorizedError",
]


class SessionWardError(Exception):
    """Base class of every sessionward error."""


class GeneralError(SessionWardError):
    """Something went wrong that is not the client's fault (answered as a 500)."""


class StorageUnavailableError(GeneralError):
    """The session store could not be reached or timed out.

    Never a verdict on the session: nothing was advanced, and the same request may succeed
    once the store is back (answered as a 503 with ``Retry-After``).
    """


class PayloadTooLargeError(GeneralError):
    """A JWT payload too large for the session's access-token cookie, refused before
    anything was written.

    Browsers drop cookies over 4096 bytes; the check counts the session's largest access
    token (the one a refresh issues), its user id and every cookie attribute.

    Attributes:
        size: the cookie size in bytes the payload would lead to.
        limit: the limit (4096).
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ConfigError(SessionWardError, ValueError):
    """Invalid configuration, raised at start-up; the message names the option."""


class UnauthorizedError(SessionWardError):
    """There is no valid session: the client must log in again.

    Attributes:
        clear_cookies: whether the HTTP layer clears the session cookies. ``False`` when
            the request merely lacked a cookie: a concurrent request may just have
            created a session that must not be wiped.
    """

    def __init__(self, message: str = "unauthorised", *, clear_cookies: bool = True) -> None:
        super().__init__(message)
        self.clear_cookies = clear_cookies


class TryRefreshTokenError(SessionWardError):
    """The access token is missing, expired or invalid: the client should refresh."""


class TokenTheftDetectedError(SessionWardError):
    """A superseded refresh token was replayed; the session has been revoked.

    Attributes:
        session_handle: the handle of the revoked session.
        user_id: the user the session belonged to.
    """

    def __init__(self, session_handle: str, user_id: str) -> None:
        super().__init__(f"token theft detected for session {session_handle}; session revoked")
        self.session_handle = session_handle
        self.user_id = user_id


class ReauthenticationRequiredError(SessionWardError):
    """The session is valid, but the user proved who they are longer ago than the caller
    allows (``get_session(..., max_auth_age=...)``): ask them to sign in again (or to
    re-enter their password) and then mark the session re-authenticated. Never a reason to
    refresh; the integrations answer it with a 403.

    Attributes:
        auth_time: when the user last authenticated, ms since the epoch (0: unknown, a
            token issued before the time was recorded).
        max_auth_age: the largest age the caller accepted, in seconds.
    """

    def __init__(self, auth_time: int, max_auth_age: int) -> None:
        super().__init__(f"re-authentication required: authenticated more than {max_auth_age} s ago")
        self.auth_time = auth_time
        self.max_auth_age = max_auth_age
