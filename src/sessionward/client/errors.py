"""The errors of :mod:`sessionward.client`.

Each one that concerns an HTTP exchange carries the :class:`httpx.Response` it is about (its
body already read); messages give statuses and paths, never a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SessionWardError

if TYPE_CHECKING:
    import httpx

__all__ = ["RefreshError", "SessionExpiredError", "SignInError", "TokenFileError"]


class SignInError(SessionWardError):
    """The sign-in request was answered without session tokens (wrong credentials, a
    server error, a route that does not create a header-mode session).

    ``response`` is that answer.
    """

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"the sign-in request was answered {response.status_code} without session tokens")
        self.response = response


class RefreshError(SessionWardError):
    """The refresh route answered neither 2xx with new tokens nor the session-expired status
    (a 503 while the session store is down, for instance).

    The session is kept: a later request tries again. ``response`` is the refresh route's
    answer.
    """

    def __init__(self, response: httpx.Response, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"the session refresh was answered {response.status_code}{detail}")
        self.response = response


class SessionExpiredError(SessionWardError):
    """The session is over: the refresh route refused the refresh token (the session was
    revoked, expired, or ended by a token-theft verdict), or the server removed the tokens.

    The stored tokens are already cleared; sign in again. ``response`` is the API's original
    session-expired answer to the request (status and JSON body, for instance
    ``{"message": "try refresh token"}``).
    """

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(
            f"the session is over ({response.request.method} {response.request.url.path} "
            f"was answered {response.status_code} and the session could not be refreshed): sign in again"
        )
        self.response = response


class TokenFileError(SessionWardError):
    """The token file cannot be used safely: other users may read or write it, it belongs to
    another user, it is not a regular file, or it cannot be written."""
