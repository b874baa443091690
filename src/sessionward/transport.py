"""The wire protocol, framework-neutral: reading tokens from a request, writing cookies and
headers, mapping errors to status codes and bodies.

Adapters hand this module plain strings (the raw ``Cookie`` header, a few request
headers, the method) and convert what it returns: the final header list of a response
(:func:`final_response_headers`) to their framework's header container. Parsing the raw
``Cookie`` header here, once, gives every framework the same verdict on hostile input
such as duplicate cookie names; reading the protocol request headers through
:func:`single_header` does the same for a header sent more than once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import unquote

from .config import Config
from .cookies import (
    ACCESS_TOKEN_COOKIE,
    ID_REFRESH_TOKEN_COOKIE,
    MAX_COOKIE_BYTES,
    REFRESH_TOKEN_COOKIE,
    set_cookie_header,
)
from .engine.types import SessionTokens, Token
from .errors import (
    GeneralError,
    SessionWardError,
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)

__all__ = [
    "ACCESS_TOKEN_COOKIE",
    "ANTI_CSRF_HEADER",
    "FRONT_TOKEN_HEADER",
    "ID_REFRESH_TOKEN_COOKIE",
    "ID_REFRESH_TOKEN_HEADER",
    "MAX_COOKIE_BYTES",
    "PREFLIGHT_ALLOW_HEADERS",
    "PROTOCOL_HEADERS",
    "REFRESH_TOKEN_COOKIE",
    "ErrorResponse",
    "RequestTokens",
    "ResponseEffects",
    "bare_factory_error",
    "error_response",
    "final_response_headers",
    "log_error_answer",
    "merge_header_list",
    "parse_session_cookies",
    "session_cookie_present",
    "set_cookie_name",
    "single_header",
    "tokens_for_refresh",
    "tokens_for_verification",
]

ID_REFRESH_TOKEN_HEADER = "id-refresh-token"
ANTI_CSRF_HEADER = "anti-csrf"
FRONT_TOKEN_HEADER = "front-token"
PROTOCOL_HEADERS = (ID_REFRESH_TOKEN_HEADER, ANTI_CSRF_HEADER, FRONT_TOKEN_HEADER)
PREFLIGHT_ALLOW_HEADERS = ("anti-csrf", "fdi-version", "supertokens-sdk-name", "supertokens-sdk-version")
RETRY_AFTER_SECONDS = 5
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
# Parsed Cookie headers, keyed by the exact header string: at most this many, each at most
# this long (a longer one is parsed every time), so memory stays bounded (a few MB).
_PARSED_CACHE_SIZE = 1024
_PARSED_MAX_LENGTH = 4096
_parsed_headers: dict[str, RequestTokens] = {}


def parse_session_cookies(cookie_header: str | None) -> RequestTokens:
    """Read the three session cookies from the raw ``Cookie`` header value(s).

    A name sent twice (cookie tossing, a stale cookie on another path or domain) is
    reported as :data:`DUPLICATE` rather than picking one, so no framework ever lets an
    attacker-chosen copy win.
    """
    if not cookie_header:
        return _NO_TOKENS
    # A client repeats the same header on every request until its access token changes:
    # one hash of the header replaces the parse, and the token strings handed on are the
    # same objects each time, so the engine's cache lookup reuses their cached hash too.
    tokens = _parsed_headers.get(cookie_header)
    if tokens is None:
        tokens = _parse(cookie_header)
        # A refresh token reaches only the refresh route, once per access-token lifetime:
        # remembering it would gain nothing and keep a long-lived secret in memory.
        if tokens.refresh_token is None and len(cookie_header) <= _PARSED_MAX_LENGTH:
            if len(_parsed_headers) >= _PARSED_CACHE_SIZE:
                # Emptied wholesale: O(1) amortised, and safe against concurrent threads.
                _parsed_headers.clear()
            _parsed_headers[cookie_header] = tokens
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


def session_cookie_present(cookie_header: str | None) -> bool:
    """Whether the request has a session at all: exactly one ``sIdRefreshToken`` cookie.

    An optional session is absent without it (a duplicated cookie counts as absent), so
    the route runs without a session instead of answering 401.
    """
    return isinstance(parse_session_cookies(cookie_header).id_refresh_token, str)


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
    tokens: RequestTokens, config: Config, method: str, anti_csrf_check: bool | None
) -> tuple[str, bool]:
    """The access token to verify and whether to check anti-CSRF, or the protocol error.

    A missing idRefresh cookie is ``UnauthorizedError`` that clears nothing (the cookies
    did not reach this route, which says nothing about the session); a missing access
    cookie is ``TryRefreshTokenError`` (it expired in the browser: the client refreshes).
    """
    if not isinstance(tokens.id_refresh_token, str):
        raise UnauthorizedError(
            f"no {ID_REFRESH_TOKEN_COOKIE} cookie (or more than one): the session cookies did "
            f"not reach this route; check access_token_path and cookie_domain",
            clear_cookies=False,
        )
    if not isinstance(tokens.access_token, str):
        raise TryRefreshTokenError(
            f"no {ACCESS_TOKEN_COOKIE} cookie (or more than one): the client should call "
            f"the refresh API at {config.refresh_api_path}"
        )
    if anti_csrf_check is None:
        anti_csrf_check = method.upper() not in SAFE_METHODS
    return tokens.access_token, anti_csrf_check


def tokens_for_refresh(tokens: RequestTokens, config: Config) -> str:
    """The refresh token of a refresh request, or ``UnauthorizedError`` touching nothing."""
    if not isinstance(tokens.refresh_token, str):
        raise UnauthorizedError(
            f"no {REFRESH_TOKEN_COOKIE} cookie (or more than one) on the refresh request: "
            f"is the refresh route mounted at refresh_api_path={config.refresh_api_path!r}, "
            f"the path the refresh cookie is scoped to?",
            clear_cookies=False,
        )
    return tokens.refresh_token


def _set_cookie(config: Config, name: str, value: str, path: str, expires_at_ms: int | None) -> str:
    header = set_cookie_header(config, name, value, path, expires_at_ms)
    if len(header.encode()) > MAX_COOKIE_BYTES:
        raise GeneralError(
            f"the {name} cookie would be {len(header.encode())} bytes, over the "
            f"{MAX_COOKIE_BYTES}-byte limit browsers enforce: keep jwt_payload and user ids small"
        )
    return header


def merge_header_list(existing: str | None, names: Iterable[str]) -> str:
    """Merge comma-separated header list values without duplicates (case-insensitive)."""
    merged: list[str] = []
    seen: set[str] = set()
    for item in [*(existing or "").split(","), *names]:
        item = item.strip()
        if item and item.lower() not in seen:
            seen.add(item.lower())
            merged.append(item)
    return ", ".join(merged)


def _without(header_list: str, names: Iterable[str]) -> str:
    dropped = {name.lower() for name in names}
    items = (item.strip() for item in header_list.split(","))
    return ", ".join(item for item in items if item and item.lower() not in dropped)


@dataclass
class ResponseEffects:
    """What a request's session work must do to its response.

    ``cookies`` maps a cookie name to its one ``Set-Cookie`` value (a later write replaces
    an earlier one, so a response never carries two for the same name); ``headers`` are
    the protocol headers, overwritten on the response rather than appended. The effects
    are the final word on the response: a revocation (or an error answer, see
    :meth:`discard`) after tokens were written removes those tokens' cookies and headers,
    even when an adapter had already applied the earlier state to a response (see
    :func:`final_response_headers`). An adapter keeps one object per request, so the last
    change made during the request wins whichever response it was made through.
    """

    config: Config
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """Whether anything must be written to the response."""
        return bool(self.cookies or self.headers)

    def set_session(self, tokens: SessionTokens) -> None:
        """Cookies and headers for a new or refreshed session."""
        config = self.config
        self.set_access_token(tokens.access_token, tokens.front_token)
        self.cookies[REFRESH_TOKEN_COOKIE] = _set_cookie(
            config,
            REFRESH_TOKEN_COOKIE,
            tokens.refresh_token.value,
            config.refresh_api_path,
            tokens.refresh_token.expires_at,
        )
        id_refresh = tokens.id_refresh_token
        self.cookies[ID_REFRESH_TOKEN_COOKIE] = _set_cookie(
            config,
            ID_REFRESH_TOKEN_COOKIE,
            id_refresh.value,
            config.access_token_path,
            id_refresh.expires_at,
        )
        self.headers[ID_REFRESH_TOKEN_HEADER] = f"{id_refresh.value};{id_refresh.expires_at}"
        if tokens.anti_csrf_token is not None:
            self.headers[ANTI_CSRF_HEADER] = tokens.anti_csrf_token

    def set_access_token(self, token: Token, front_token: str) -> None:
        """The access cookie and ``front-token`` for a newly minted access token."""
        self.cookies[ACCESS_TOKEN_COOKIE] = _set_cookie(
            self.config,
            ACCESS_TOKEN_COOKIE,
            token.value,
            self.config.access_token_path,
            token.expires_at,
        )
        self.headers[FRONT_TOKEN_HEADER] = front_token

    def clear_session(self) -> None:
        """Expire the three cookies (same Path and Domain) and send ``id-refresh-token: remove``."""
        config = self.config
        for name, path in (
            (ACCESS_TOKEN_COOKIE, config.access_token_path),
            (REFRESH_TOKEN_COOKIE, config.refresh_api_path),
            (ID_REFRESH_TOKEN_COOKIE, config.access_token_path),
        ):
            self.cookies[name] = _set_cookie(config, name, "", path, None)
        self.headers.pop(FRONT_TOKEN_HEADER, None)
        self.headers.pop(ANTI_CSRF_HEADER, None)
        self.headers[ID_REFRESH_TOKEN_HEADER] = "remove"

    def discard(self) -> None:
        """Forget everything recorded so far: an error answer carries only what the error
        itself dictates (nothing, or the cleared cookies), never tokens minted earlier in
        the request; an adapter calls this before answering an error or a crash."""
        self.cookies.clear()
        self.headers.clear()


_LOGGER = logging.getLogger("sessionward")
_CACHE_CONTROL = "cache-control"
_EXPOSE_HEADERS = "access-control-expose-headers"
_SET_COOKIE = "set-cookie"
_insecure_cookie_warned = False


def set_cookie_name(set_cookie: str) -> str:
    """The cookie name of a ``Set-Cookie`` value."""
    return set_cookie.split("=", 1)[0].strip()


def final_response_headers(
    effects: ResponseEffects, headers: Iterable[tuple[str, str]], secure_request: bool | None
) -> list[tuple[str, str]]:
    """The headers a response goes out with, once ``effects`` are applied to it.

    ``headers`` are all the response's headers, in order, names in any case, one entry per
    ``Set-Cookie``; an adapter converts the result back into its framework's container
    (replacing what was there). The rules:

    - every ``Set-Cookie`` of a cookie in ``effects.cookies`` is replaced by the effects'
      one, and every protocol header (:data:`PROTOCOL_HEADERS`) by the effects' value or
      removed, so applying the effects again after a later change (a revocation, an
      error) leaves exactly their final state, never two copies;
    - ``Access-Control-Expose-Headers`` keeps the application's names and lists exactly the
      protocol headers sent (merged without duplicates, dropped if it ends up empty);
    - a response that sets session cookies gets ``Cache-Control: no-store``.

    ``secure_request`` is whether the request came over https as the framework sees it
    (``None``: not known here). ``Secure`` cookies written to a plain-http request are
    logged once per process: clients do not send them back over http.
    """
    result: list[tuple[str, str]] = []
    if not effects.pending:
        result.extend(headers)
        return result
    if secure_request is False and effects.cookies and effects.config.cookie_secure:
        _warn_insecure_cookie()
    ours = effects.cookies
    expose: list[str] = []
    expose_at: int | None = None
    cache_at: int | None = None
    for name, value in headers:
        lower = name.lower()
        if lower in PROTOCOL_HEADERS or (lower == _SET_COOKIE and set_cookie_name(value) in ours):
            continue
        if lower == _EXPOSE_HEADERS:
            expose.append(value)
            if expose_at is not None:
                continue
            expose_at = len(result)
        elif lower == _CACHE_CONTROL and ours:
            if cache_at is not None:
                continue
            cache_at = len(result)
        result.append((name, value))
    sent = effects.headers
    exposed = [name for name in PROTOCOL_HEADERS if name in sent]
    not_sent = [name for name in PROTOCOL_HEADERS if name not in sent]
    expose_value = merge_header_list(_without(", ".join(expose), not_sent), exposed)
    if expose_at is None:
        if expose_value:
            result.append((_EXPOSE_HEADERS, expose_value))
    elif expose_value:
        result[expose_at] = (result[expose_at][0], expose_value)
    else:
        del result[expose_at]
        if cache_at is not None and cache_at > expose_at:
            cache_at -= 1
    if ours:
        if cache_at is None:
            result.append((_CACHE_CONTROL, "no-store"))
        else:
            result[cache_at] = (result[cache_at][0], "no-store")
        result.extend((_SET_COOKIE, value) for value in ours.values())
    result.extend(effects.headers.items())
    return result


def _warn_insecure_cookie() -> None:
    global _insecure_cookie_warned
    if _insecure_cookie_warned:
        return
    _insecure_cookie_warned = True
    _LOGGER.warning(
        "sessionward set Secure session cookies on a plain-http request: browsers and HTTP "
        "clients do not send Secure cookies back over http, so the next request will be "
        "answered 401. Serve the app over https, or set cookie_secure=False for plain-http "
        "development. (Logged once per process.)"
    )


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
    """The default answer to ``error``: status, JSON body, whether to clear cookies."""
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


def preflight_headers(existing_allow_headers: str | None) -> list[tuple[str, str]]:
    """Headers a CORS preflight (OPTIONS) response needs for the session protocol."""
    return [
        ("access-control-allow-headers", merge_header_list(existing_allow_headers, PREFLIGHT_ALLOW_HEADERS)),
        ("access-control-allow-credentials", "true"),
    ]
