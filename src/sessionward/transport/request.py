"""Reading a request: the session cookies from the raw ``Cookie`` header, the protocol
request headers, and the token each kind of route needs (or the protocol error).

Parsing the raw ``Cookie`` header here, once, gives every framework the same verdict on
hostile input such as duplicate cookie names; reading the protocol request headers through
:func:`single_header` does the same for a header sent more than once.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import unquote

from ..config import Config
from ..cookies import ACCESS_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE
from ..errors import TryRefreshTokenError, UnauthorizedError
from .protocol import WireMode, bearer_token, choose_mode, migrating, session_present

_LEGACY = WireMode.LEGACY
_COOKIE = WireMode.COOKIE
_HEADER = WireMode.HEADER

__all__ = [
    "DUPLICATE",
    "SAFE_METHODS",
    "RequestTokens",
    "parse_session_cookies",
    "path_matches",
    "session_cookie_present",
    "single_header",
    "stale_cookies_on_refresh",
    "tokens_for_refresh",
    "tokens_for_verification",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_COOKIES = frozenset({ACCESS_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE})


class _Duplicate:
    """Marker for a cookie name sent more than once."""

    def __repr__(self) -> str:
        return "DUPLICATE"


DUPLICATE = _Duplicate()


class RequestTokens(NamedTuple):
    """The session cookies of a request: a value, ``None`` (absent) or :data:`DUPLICATE`."""

    access_token: str | _Duplicate | None
    refresh_token: str | _Duplicate | None
    id_refresh_token: str | _Duplicate | None


_NO_TOKENS = RequestTokens(None, None, None)
_MIGRATE = (
    f"a session of the 2020 protocol ({ID_REFRESH_TOKEN_COOKIE} cookie) on a current-protocol "
    f"request: the client refreshes, which moves the session to the current protocol"
)
# Parsed Cookie headers, keyed by the exact header string (or, for ASGI adapters, the raw
# header bytes, in a dict of their own): at most this many in each, each at most this long
# (a longer one is parsed every time), so memory stays bounded (a few MB).
_PARSED_CACHE_SIZE = 1024
_PARSED_MAX_LENGTH = 4096
_parsed_headers: dict[str, RequestTokens] = {}
_parsed_raw_headers: dict[bytes, RequestTokens] = {}


def parse_session_cookies(cookie_header: str | bytes | None) -> RequestTokens:
    """Read the three session cookies from the raw ``Cookie`` header value(s).

    ``bytes`` (an ASGI header value as received) are read as latin-1, like the header
    strings of WSGI. A name sent twice (cookie tossing, a stale cookie on another path or
    domain) is reported as :data:`DUPLICATE` rather than picking one, so no framework ever
    lets an attacker-chosen copy win.
    """
    if not cookie_header:
        return _NO_TOKENS
    # A client repeats the same header on every request until its access token changes:
    # one hash of the header replaces the parse, and the token strings handed on are the
    # same objects each time, so the engine's cache lookup reuses their cached hash too.
    # Raw bytes are looked up as they are: no decoding on a hit.
    text = isinstance(cookie_header, str)
    cache: dict[Any, RequestTokens] = _parsed_headers if text else _parsed_raw_headers
    tokens = cache.get(cookie_header)
    if tokens is None:
        tokens = _parse(cookie_header if isinstance(cookie_header, str) else cookie_header.decode("latin-1"))
        # A refresh token reaches only the refresh route, once per access-token lifetime:
        # remembering it would gain nothing and keep a long-lived secret in memory.
        if tokens.refresh_token is None and len(cookie_header) <= _PARSED_MAX_LENGTH:
            if len(cache) >= _PARSED_CACHE_SIZE:
                # Emptied wholesale: O(1) amortised, and safe against concurrent threads.
                cache.clear()
            cache[cookie_header] = tokens
    return tokens


def _parse(cookie_header: str) -> RequestTokens:
    found: dict[str, str | _Duplicate] = {}
    # WSGI servers join repeated Cookie headers with ","; our values never contain one
    # (they are percent-encoded), so "," separates pairs just like ";".
    if "," in cookie_header:
        cookie_header = cookie_header.replace(",", ";")
    for pair in cookie_header.split(";"):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in _SESSION_COOKIES:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if "%" in value:
            try:
                decoded = unquote(value, errors="strict")
            except UnicodeDecodeError:
                decoded = value  # not a token we issued: verification rejects it
            value = decoded
        found[name] = DUPLICATE if name in found else value
    return RequestTokens(
        found.get(ACCESS_TOKEN_COOKIE),
        found.get(REFRESH_TOKEN_COOKIE),
        found.get(ID_REFRESH_TOKEN_COOKIE),
    )


def session_cookie_present(
    cookie_header: str | bytes | None,
    auth_mode: str | None = None,
    authorization: str | None = None,
    config: Config | None = None,
) -> bool:
    """Whether the request has a session at all, in the mode it speaks
    (:func:`~sessionward.transport.protocol.session_present`): for a 2020 request, exactly
    one ``sIdRefreshToken`` cookie; in the current cookie mode, exactly one access cookie;
    in header mode, a Bearer token.

    An optional session is absent otherwise (a duplicated cookie counts as absent), so the
    route runs without a session instead of answering 401. ``auth_mode`` and
    ``authorization`` are the raw ``st-auth-mode`` and ``Authorization`` headers;
    ``config`` gives ``token_transfer`` (default ``"any"``).
    """
    transfer = "any" if config is None else config.token_transfer
    tokens = _NO_TOKENS if transfer == "header" else parse_session_cookies(cookie_header)
    bearer = bearer_token(authorization)
    return session_present(
        choose_mode("verify", transfer, auth_mode, bearer, tokens), tokens, bearer, transfer
    )


def single_header(value: str | None) -> str | None:
    """A protocol request header (``anti-csrf`` and the like) if it was sent exactly once.

    Adapters hand over everything they received for the name, joined with ``","`` as
    WSGI servers join repeated header lines (gunicorn with ``","``, Werkzeug's and Django's
    test clients with ``", "``); an ASGI adapter joins the copies it is given the same way.
    No protocol header value contains a comma (tokens are base64url), so a comma means
    the header came more than once, or is garbage: either way it counts as absent, and no
    framework or server lets one copy win.
    """
    if value is None or "," in value:
        return None
    return value


def tokens_for_verification(
    tokens: RequestTokens,
    config: Config,
    method: str,
    anti_csrf_check: bool | None,
    mode: WireMode = WireMode.LEGACY,
    bearer: str | None = None,
) -> tuple[str, bool]:
    """The access token to verify and whether to check anti-CSRF, or the protocol error.

    2020 protocol (``mode`` LEGACY): a missing idRefresh cookie is ``UnauthorizedError``
    that clears nothing (the cookies did not reach this route, which says nothing about the
    session); a missing access cookie is ``TryRefreshTokenError`` (it expired in the
    browser: the client refreshes). Cookie modes: a 2020 session still present (an
    ``sIdRefreshToken`` cookie on a request saying ``st-auth-mode``) or a missing access
    cookie is ``TryRefreshTokenError``. Header mode: the Bearer token, never checked for
    anti-CSRF; without one, ``TryRefreshTokenError`` for a 2020 session to migrate, else
    ``UnauthorizedError`` that clears nothing.
    """
    if mode is _HEADER:
        if bearer is not None:
            return bearer, False
        if migrating(tokens, config.token_transfer):
            raise TryRefreshTokenError(_MIGRATE)
        raise UnauthorizedError(
            "no Authorization: Bearer token (or more than one, or malformed) on a header-mode request",
            clear_cookies=False,
        )
    if mode is _LEGACY:
        if not isinstance(tokens.id_refresh_token, str):
            raise UnauthorizedError(
                f"no {ID_REFRESH_TOKEN_COOKIE} cookie (or more than one): the session cookies did "
                f"not reach this route; check access_token_path and cookie_domain",
                clear_cookies=False,
            )
    elif mode is _COOKIE and migrating(tokens, config.token_transfer):
        raise TryRefreshTokenError(_MIGRATE)
    if not isinstance(tokens.access_token, str):
        raise TryRefreshTokenError(
            f"no {ACCESS_TOKEN_COOKIE} cookie (or more than one): the client should call "
            f"the refresh API at {config.refresh_api_path}"
        )
    if anti_csrf_check is None:
        anti_csrf_check = method.upper() not in SAFE_METHODS
    return tokens.access_token, anti_csrf_check


def tokens_for_refresh(
    tokens: RequestTokens, config: Config, mode: WireMode = WireMode.LEGACY, bearer: str | None = None
) -> str:
    """The refresh token of a refresh request, or ``UnauthorizedError`` touching nothing.

    Header mode reads the Bearer token, or (without one) the refresh cookie of a 2020
    session being migrated; the other modes read the refresh cookie.
    """
    if mode is _HEADER:
        if bearer is not None:
            return bearer
        if migrating(tokens, config.token_transfer) and isinstance(tokens.refresh_token, str):
            return tokens.refresh_token
        raise UnauthorizedError(
            "no Authorization: Bearer <refresh token> (or more than one, or malformed) on a "
            "header-mode refresh request",
            clear_cookies=False,
        )
    if not isinstance(tokens.refresh_token, str):
        raise UnauthorizedError(
            f"no {REFRESH_TOKEN_COOKIE} cookie (or more than one) on the refresh request: "
            f"is the refresh route mounted at refresh_api_path={config.refresh_api_path!r}, "
            f"the path the refresh cookie is scoped to?",
            clear_cookies=False,
        )
    return tokens.refresh_token


def stale_cookies_on_refresh(
    tokens: RequestTokens, config: Config, mode: WireMode, bearer: str | None
) -> tuple[str, ...]:
    """The cookies a refresh answer must expire besides its own: a refresh in the
    current cookie mode expires ``sIdRefreshToken`` (left by the 2020 protocol) when the
    request carried it, or when the refresh route cannot see it (``access_token_path``
    does not cover ``refresh_api_path``); a header-mode refresh that migrates a 2020
    session expires its three cookies."""
    if mode is _COOKIE:
        if tokens.id_refresh_token is not None or not path_matches(
            config.refresh_api_path, config.access_token_path
        ):
            return (ID_REFRESH_TOKEN_COOKIE,)
    elif mode is _HEADER and bearer is None and migrating(tokens, config.token_transfer):
        return (ACCESS_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE)
    return ()


def path_matches(request_path: str, cookie_path: str) -> bool:
    """Whether a cookie of ``cookie_path`` is sent with a request for ``request_path``
    (RFC 6265, section 5.1.4)."""
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )
