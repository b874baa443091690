"""``Set-Cookie`` values for the session cookies, and the browser's size limit.

A leaf module: the transport layer writes cookies with it, and the engine measures with it
how large the largest access cookie of a session can grow (the payload size budget), so
both agree on every attribute byte.
"""

from __future__ import annotations

import email.utils
from urllib.parse import quote

from .config import Config

__all__ = [
    "ACCESS_TOKEN_COOKIE",
    "ID_REFRESH_TOKEN_COOKIE",
    "MAX_COOKIE_BYTES",
    "REFRESH_TOKEN_COOKIE",
    "set_cookie_header",
]

ACCESS_TOKEN_COOKIE = "sAccessToken"
REFRESH_TOKEN_COOKIE = "sRefreshToken"
ID_REFRESH_TOKEN_COOKIE = "sIdRefreshToken"
#: Browsers refuse a cookie whose name, value and attributes exceed this many bytes.
MAX_COOKIE_BYTES = 4096
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"
# Characters left as they are in cookie values: RFC 6265 cookie-octets minus '%'.
_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def set_cookie_header(
    config: Config, name: str, value: str, path: str, expires_at_ms: int | None, *, persistent: bool = True
) -> str:
    """The ``Set-Cookie`` value for one session cookie (``expires_at_ms=None`` clears it).

    The value is percent-encoded; ``Domain``, ``Secure`` and ``SameSite`` come from
    ``config``; the cookie is always ``HttpOnly``. ``persistent=False`` leaves out
    ``Expires`` (a browser-session cookie, gone when the browser closes) unless the cookie
    is being cleared. The size is not checked here.
    """
    parts = [f"{name}={quote(value, safe=_COOKIE_SAFE)}", f"Path={path}"]
    if expires_at_ms is None:
        parts.append(f"Expires={_EXPIRED}")
    elif persistent:
        parts.append(f"Expires={email.utils.formatdate(expires_at_ms / 1000, usegmt=True)}")
    if config.cookie_domain is not None:
        parts.append(f"Domain={config.cookie_domain}")
    if config.cookie_secure:
        parts.append("Secure")
    parts.append("HttpOnly")
    parts.append(f"SameSite={config.cookie_same_site.capitalize()}")
    return "; ".join(parts)
