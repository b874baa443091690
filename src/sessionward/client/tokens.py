"""The tokens a header-mode client holds, and how responses change them.

A response that creates or refreshes a session carries ``st-access-token``,
``st-refresh-token`` and ``front-token`` (standard base64 of the JSON ``{"uid", "ate",
"up"}``); one that ends it carries ``front-token: remove`` or empty token headers. Values are
parsed strictly: a repeated header or a value with characters no token has leaves the stored
tokens untouched.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

import httpx

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "AUTH_MODE_HEADER",
    "FRONT_TOKEN_HEADER",
    "REFRESH_TOKEN_HEADER",
    "FrontToken",
    "StoredTokens",
    "TokenUpdate",
    "decode_front_token",
    "is_origin",
    "is_token",
    "origin_of",
    "token_update",
]

ACCESS_TOKEN_HEADER = "st-access-token"
REFRESH_TOKEN_HEADER = "st-refresh-token"
FRONT_TOKEN_HEADER = "front-token"
AUTH_MODE_HEADER = "st-auth-mode"
_REMOVE = "remove"
# Visible ASCII without the separators a header list would split on; far above any real token.
_TOKEN = re.compile(r"[!-+\--~]{1,16384}")
_ORIGIN = re.compile(r"https?://[!-~]+")


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """The session a client holds, bound to the origin (``scheme://host[:port]``) that issued
    it: its tokens are only ever sent there."""

    origin: str
    access_token: str
    refresh_token: str | None
    front_token: str | None

    def __repr__(self) -> str:
        return f"StoredTokens(origin={self.origin!r}, refresh_token={self.refresh_token is not None})"


@dataclass(frozen=True, slots=True)
class TokenUpdate:
    """What one response says about the session: ``clear`` (it ended), or the new values (a
    ``None`` field is unchanged)."""

    clear: bool
    access_token: str | None = None
    refresh_token: str | None = None
    front_token: str | None = None

    def __repr__(self) -> str:
        return f"TokenUpdate(clear={self.clear})"


@dataclass(frozen=True, slots=True)
class FrontToken:
    """The readable part of the ``front-token``: user id, access-token expiry (ms since the
    epoch) and public JWT payload."""

    user_id: str
    access_token_expires_at: int
    jwt_payload: dict[str, Any]


def is_token(value: object) -> TypeGuard[str]:
    """Whether ``value`` may be a token: 1 to 16384 visible ASCII characters, no comma."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def is_origin(value: object) -> TypeGuard[str]:
    """Whether ``value`` looks like an origin :func:`origin_of` produces."""
    return isinstance(value, str) and _ORIGIN.fullmatch(value) is not None and value.count("/") == 2


def origin_of(url: httpx.URL) -> str:
    """``scheme://host[:port]`` of ``url`` (default ports left out, host lowercased)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def token_update(headers: httpx.Headers) -> TokenUpdate | None:
    """What ``headers`` say about the session, or ``None`` when they say nothing usable."""
    values: dict[str, str] = {}
    for name in (ACCESS_TOKEN_HEADER, REFRESH_TOKEN_HEADER, FRONT_TOKEN_HEADER):
        found = headers.get_list(name)
        if len(found) > 1:
            return None
        if found:
            values[name] = found[0].strip()
    if not values:
        return None
    if values.get(FRONT_TOKEN_HEADER) == _REMOVE or "" in (
        values.get(ACCESS_TOKEN_HEADER),
        values.get(REFRESH_TOKEN_HEADER),
    ):
        return TokenUpdate(clear=True)
    if not all(is_token(value) for value in values.values()):
        return None
    return TokenUpdate(
        clear=False,
        access_token=values.get(ACCESS_TOKEN_HEADER),
        refresh_token=values.get(REFRESH_TOKEN_HEADER),
        front_token=values.get(FRONT_TOKEN_HEADER),
    )


def decode_front_token(value: str | None) -> FrontToken | None:
    """The content of a ``front-token`` value, or ``None`` when it is missing or malformed."""
    if value is None:
        return None
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    user_id, expiry, payload = decoded.get("uid"), decoded.get("ate"), decoded.get("up")
    if not isinstance(user_id, str) or type(expiry) is not int or not isinstance(payload, dict):
        return None
    return FrontToken(user_id, expiry, payload)
