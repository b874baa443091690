"""The names of the session protocol's response headers (lowercase, as sent)."""

from __future__ import annotations

__all__ = ["ANTI_CSRF_HEADER", "FRONT_TOKEN_HEADER", "ID_REFRESH_TOKEN_HEADER", "PROTOCOL_HEADERS"]

ID_REFRESH_TOKEN_HEADER = "id-refresh-token"
ANTI_CSRF_HEADER = "anti-csrf"
FRONT_TOKEN_HEADER = "front-token"
#: Every protocol header a response may carry (and lists in ``Access-Control-Expose-Headers``).
PROTOCOL_HEADERS = (ID_REFRESH_TOKEN_HEADER, ANTI_CSRF_HEADER, FRONT_TOKEN_HEADER)
