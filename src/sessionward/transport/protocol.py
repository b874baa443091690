"""Which generation of the frontend protocol a request speaks, and in which mode.

One backend serves both generations of the SuperTokens frontend protocol:

- :attr:`WireMode.LEGACY`: the 2020 protocol (``supertokens-website`` 4.x/5.x): three
  cookies and the ``id-refresh-token`` header;
- :attr:`WireMode.COOKIE`: the current protocol in cookie mode (``st-auth-mode: cookie``):
  two cookies, ``front-token`` (``remove`` when the session ends);
- :attr:`WireMode.INFERRED_COOKIE`: a request without ``st-auth-mode`` whose cookies are
  those of the current cookie mode (an access cookie and no ``sIdRefreshToken``: a page
  navigation the SDK did not intercept); answered like cookie mode, except that it never
  sends ``front-token: remove`` (a 2020 client would choke on it);
- :attr:`WireMode.HEADER`: the current protocol in header mode: ``Authorization: Bearer``
  in, ``st-access-token`` / ``st-refresh-token`` out, no cookies, no anti-CSRF.

:func:`choose_mode` decides, from the request alone; docs/protocol.md has the table.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Literal

from ..config import Config

if TYPE_CHECKING:
    from .request import RequestTokens

__all__ = [
    "SIGN_OUT_BODY",
    "Operation",
    "WireMode",
    "bearer_token",
    "choose_mode",
    "migrating",
    "session_present",
    "sign_out_path",
]

Operation = Literal["verify", "create", "refresh"]
"""What the request does with the session: verify it, create one, or refresh one."""


class WireMode(enum.Enum):
    """How a request's tokens travel, and so how its response is written."""

    LEGACY = "2020"
    COOKIE = "cookie"
    INFERRED_COOKIE = "inferred-cookie"
    HEADER = "header"


# Module-level aliases: reading a member through the Enum class costs about as much as the
# rest of a mode decision, and these functions run on every request.
_LEGACY = WireMode.LEGACY
_COOKIE = WireMode.COOKIE
_INFERRED_COOKIE = WireMode.INFERRED_COOKIE
_HEADER = WireMode.HEADER

# RFC 6750 token68 after the scheme and exactly one space; the scheme is case-insensitive.
_BEARER = re.compile(r"bearer ([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``.

    Anything but exactly the scheme, one space and a token (other schemes, extra spaces,
    an empty token, characters a token never has) is no token. A header sent more than
    once arrives comma-joined (see :func:`~sessionward.transport.single_header`) and
    never matches either.
    """
    if authorization is None:
        return None
    match = _BEARER.fullmatch(authorization)
    return None if match is None else match.group(1)


def choose_mode(
    operation: Operation,
    transfer: str,
    auth_mode: str | None,
    bearer: str | None,
    tokens: RequestTokens,
) -> WireMode:
    """The protocol and mode a request speaks, for ``operation``.

    ``transfer`` is :attr:`Config.token_transfer <sessionward.Config>`;
    ``auth_mode`` is the raw ``st-auth-mode`` header (``None`` when absent; any value but
    exactly ``cookie`` or ``header``, a repeated header included, counts as absent);
    ``bearer`` is :func:`bearer_token` of the ``Authorization`` header; ``tokens`` the
    request's session cookies. The rules:

    - ``transfer="header"``: always header mode; ``"cookie"``: never header mode
      (``st-auth-mode: header`` is answered in cookie mode, a Bearer token is ignored);
    - ``st-auth-mode`` present: that mode;
    - otherwise ``create`` answers in the 2020 protocol; a Bearer token means header mode;
      ``refresh`` answers in the 2020 protocol; ``verify`` with an access cookie and no
      ``sIdRefreshToken`` cookie is :attr:`WireMode.INFERRED_COOKIE`, anything else
      (the 2020 cookies, or no tokens at all) the 2020 protocol.
    """
    if auth_mode is None and bearer is None:  # the 2020 protocol's requests, first
        if transfer == "header":
            return _HEADER
        if operation == "verify" and tokens.id_refresh_token is None and tokens.access_token is not None:
            return _INFERRED_COOKIE
        return _LEGACY
    if transfer == "header":
        return _HEADER
    if auth_mode == "cookie" or auth_mode == "header":
        if auth_mode == "header" and transfer == "any":
            return _HEADER
        return _COOKIE
    if operation == "create":
        return _LEGACY
    if bearer is not None and transfer == "any":
        return _HEADER
    if operation == "verify" and tokens.id_refresh_token is None and tokens.access_token is not None:
        return _INFERRED_COOKIE
    return _LEGACY


def migrating(tokens: RequestTokens, transfer: str) -> bool:
    """Whether a current-protocol request still carries a 2020 session: exactly one
    ``sIdRefreshToken`` cookie, and cookies may be read (``transfer``, the
    ``token_transfer`` option, is not ``"header"``)."""
    return transfer != "header" and isinstance(tokens.id_refresh_token, str)


def session_present(mode: WireMode, tokens: RequestTokens, bearer: str | None, transfer: str) -> bool:
    """Whether a request in ``mode`` has a session at all (an optional session is absent
    otherwise and the route runs without one).

    2020: exactly one ``sIdRefreshToken`` cookie. Cookie mode: exactly one access cookie,
    or a 2020 session to migrate. Inferred cookie mode: exactly one access cookie. Header
    mode: a Bearer token, or (without one) a 2020 session to migrate. A name sent twice
    counts as absent.
    """
    if mode is _LEGACY:
        return isinstance(tokens.id_refresh_token, str)
    if mode is _HEADER:
        return bearer is not None or migrating(tokens, transfer)
    if mode is _COOKIE and migrating(tokens, transfer):
        return True
    return isinstance(tokens.access_token, str)


_REFRESH_SUFFIX = "/session/refresh"
#: The body of the sign-out route's answer (200, ``application/json``).
SIGN_OUT_BODY = b'{"status":"OK"}'


def sign_out_path(config: Config) -> str | None:
    """The path of the sign-out route: ``refresh_api_path`` with ``/session/refresh``
    replaced by ``/signout`` (``/auth/session/refresh`` → ``/auth/signout``, the default
    ``/session/refresh`` → ``/signout``); ``None`` (no sign-out route) when
    ``refresh_api_path`` does not end with ``/session/refresh``."""
    path = config.refresh_api_path
    if not path.endswith(_REFRESH_SUFFIX):
        return None
    return path[: -len(_REFRESH_SUFFIX)] + "/signout"
