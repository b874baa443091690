"""The response side of the protocol: :class:`ResponseEffects`, what a request's session work
must write to its response, and :func:`final_response_headers`, the header list a response
goes out with once those effects are applied to it (adapters convert that list to their
framework's header container).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..config import Config
from ..cookies import (
    ACCESS_TOKEN_COOKIE,
    ID_REFRESH_TOKEN_COOKIE,
    MAX_COOKIE_BYTES,
    REFRESH_TOKEN_COOKIE,
    set_cookie_header,
)
from ..engine.types import SessionTokens, Token
from ..errors import GeneralError
from .cors import exposed_headers
from .headers import (
    ACCESS_TOKEN_HEADER,
    ANTI_CSRF_HEADER,
    FRONT_TOKEN_HEADER,
    ID_REFRESH_TOKEN_HEADER,
    PROTOCOL_HEADERS,
    REFRESH_TOKEN_HEADER,
)
from .protocol import WireMode

_LEGACY = WireMode.LEGACY
_COOKIE = WireMode.COOKIE
_HEADER = WireMode.HEADER

__all__ = ["ResponseEffects", "final_response_headers", "set_cookie_name"]


def _set_cookie(
    config: Config, name: str, value: str, path: str, expires_at_ms: int | None, persistent: bool = True
) -> str:
    header = set_cookie_header(config, name, value, path, expires_at_ms, persistent=persistent)
    if len(header.encode()) > MAX_COOKIE_BYTES:
        raise GeneralError(
            f"the {name} cookie would be {len(header.encode())} bytes, over the "
            f"{MAX_COOKIE_BYTES}-byte limit browsers enforce: keep jwt_payload and user ids small"
        )
    return header


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

    ``mode`` is the protocol the request speaks (:class:`~sessionward.transport.protocol.WireMode`,
    set by the request handlers before they write): it decides which cookies and headers
    carry the tokens. ``stale_cookies`` names cookies of another mode that every write of
    this request also expires (a refresh moving a 2020 session to the current protocol).
    """

    config: Config
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    mode: WireMode = WireMode.LEGACY
    stale_cookies: tuple[str, ...] = ()

    @property
    def pending(self) -> bool:
        """Whether anything must be written to the response."""
        return bool(self.cookies or self.headers)

    @property
    def effects(self) -> ResponseEffects:
        """These effects themselves (what a verification writes to later, see
        :class:`sessionward.session.EffectsTarget`)."""
        return self

    def set_session(self, tokens: SessionTokens) -> None:
        """Cookies and headers for a new or refreshed session, in the request's mode.

        A session with ``tokens.persistent`` false gets browser-session cookies (no
        ``Expires``)."""
        config = self.config
        mode = self.mode
        persistent = tokens.persistent
        self.set_access_token(tokens.access_token, tokens.front_token, persistent)
        if mode is _HEADER:
            self.headers[REFRESH_TOKEN_HEADER] = tokens.refresh_token.value
        else:
            self.cookies[REFRESH_TOKEN_COOKIE] = _set_cookie(
                config,
                REFRESH_TOKEN_COOKIE,
                tokens.refresh_token.value,
                config.refresh_api_path,
                tokens.refresh_token.expires_at,
                persistent,
            )
            if mode is _LEGACY:
                id_refresh = tokens.id_refresh_token
                self.cookies[ID_REFRESH_TOKEN_COOKIE] = _set_cookie(
                    config,
                    ID_REFRESH_TOKEN_COOKIE,
                    id_refresh.value,
                    config.access_token_path,
                    id_refresh.expires_at,
                    persistent,
                )
                self.headers[ID_REFRESH_TOKEN_HEADER] = f"{id_refresh.value};{id_refresh.expires_at}"
            if tokens.anti_csrf_token is not None:
                self.headers[ANTI_CSRF_HEADER] = tokens.anti_csrf_token
        if self.stale_cookies:
            self._expire(self.stale_cookies)

    def set_access_token(self, token: Token, front_token: str, persistent: bool = True) -> None:
        """The access cookie (header mode: ``st-access-token``) and ``front-token`` for a
        newly minted access token (``persistent=False``: a browser-session cookie)."""
        if self.mode is _HEADER:
            self.headers[ACCESS_TOKEN_HEADER] = token.value
        else:
            self.cookies[ACCESS_TOKEN_COOKIE] = _set_cookie(
                self.config,
                ACCESS_TOKEN_COOKIE,
                token.value,
                self.config.access_token_path,
                token.expires_at,
                persistent,
            )
        self.headers[FRONT_TOKEN_HEADER] = front_token

    def clear_session(self) -> None:
        """End the session on the client, in the request's mode.

        2020: expire the three cookies (same Path and Domain) and send
        ``id-refresh-token: remove``. Current cookie mode: expire the cookies and send
        ``front-token: remove`` (not when the mode was inferred: the client may be a 2020
        one). Header mode: empty ``st-access-token`` and ``st-refresh-token`` and
        ``front-token: remove``. Any cookie written earlier in the request is expired too,
        and no other protocol header is left.
        """
        mode = self.mode
        self.headers.clear()
        if mode is _HEADER:
            self.headers[ACCESS_TOKEN_HEADER] = ""
            self.headers[REFRESH_TOKEN_HEADER] = ""
            self.headers[FRONT_TOKEN_HEADER] = "remove"
            names: tuple[str, ...] = ()
        elif mode is _LEGACY:
            names = _ALL_COOKIES
            self.headers[ID_REFRESH_TOKEN_HEADER] = "remove"
        else:
            names = _CURRENT_COOKIES
            if mode is _COOKIE:
                self.headers[FRONT_TOKEN_HEADER] = "remove"
        self._expire((*names, *self.cookies, *self.stale_cookies))

    def _expire(self, names: tuple[str, ...]) -> None:
        config = self.config
        for name in names:
            path = config.refresh_api_path if name == REFRESH_TOKEN_COOKIE else config.access_token_path
            self.cookies[name] = _set_cookie(config, name, "", path, None)

    def discard(self) -> None:
        """Forget everything recorded so far: an error answer carries only what the error
        itself dictates (nothing, or the cleared cookies), never tokens minted earlier in
        the request; an adapter calls this before answering an error or a crash. The mode
        and the stale cookies stay: they describe the request."""
        self.cookies.clear()
        self.headers.clear()


_ALL_COOKIES = (ACCESS_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE)
_CURRENT_COOKIES = (ACCESS_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE)
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
    - a response that sets session cookies or token headers (``st-access-token``,
      ``st-refresh-token``) gets ``Cache-Control: no-store``.

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
    # Tokens in cookies or in headers: no cache may keep the response.
    no_store = bool(ours) or ACCESS_TOKEN_HEADER in effects.headers or REFRESH_TOKEN_HEADER in effects.headers
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
        elif lower == _CACHE_CONTROL and no_store:
            if cache_at is not None:
                continue
            cache_at = len(result)
        result.append((name, value))
    expose_value = exposed_headers(expose, effects.headers)
    if expose_at is None:
        if expose_value:
            result.append((_EXPOSE_HEADERS, expose_value))
    elif expose_value:
        result[expose_at] = (result[expose_at][0], expose_value)
    else:
        del result[expose_at]
        if cache_at is not None and cache_at > expose_at:
            cache_at -= 1
    if no_store:
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
