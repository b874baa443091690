"""The names of the session protocol's headers (lowercase, as sent)."""

from __future__ import annotations

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "ANTI_CSRF_HEADER",
    "AUTHORIZATION_HEADER",
    "AUTH_MODE_HEADER",
    "FRONT_TOKEN_HEADER",
    "ID_REFRESH_TOKEN_HEADER",
    "PROTOCOL_HEADERS",
    "REFRESH_TOKEN_HEADER",
]

ID_REFRESH_TOKEN_HEADER = "id-refresh-token"
ANTI_CSRF_HEADER = "anti-csrf"
FRONT_TOKEN_HEADER = "front-token"
#: Header mode: the access and refresh tokens a response issues (empty values clear them).
ACCESS_TOKEN_HEADER = "st-access-token"
REFRESH_TOKEN_HEADER = "st-refresh-token"
#: Every protocol header a response may carry (and lists in ``Access-Control-Expose-Headers``).
PROTOCOL_HEADERS = (
    ID_REFRESH_TOKEN_HEADER,
    ANTI_CSRF_HEADER,
    FRONT_TOKEN_HEADER,
    ACCESS_TOKEN_HEADER,
    REFRESH_TOKEN_HEADER,
)
#: Request headers of the current protocol: the client's token transfer mode
#: (``cookie`` or ``header``) and, in header mode, ``Bearer <token>``.
AUTH_MODE_HEADER = "st-auth-mode"
AUTHORIZATION_HEADER = "authorization"
