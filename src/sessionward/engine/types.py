"""Result types of the engine API; attribute names are part of the contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ChangeFeedState",
    "ClientInfo",
    "KeyInfo",
    "SessionInformation",
    "SessionTokens",
    "Token",
    "VerifiedSession",
]

#: The longest user agent the engine keeps (longer ones are cut to this many characters).
MAX_USER_AGENT_LENGTH = 512
#: The longest IP address text the engine keeps (an IPv6 address with a zone fits).
MAX_IP_LENGTH = 64


class ClientInfo(NamedTuple):
    """The client a session is used from, as the HTTP layer saw it: its IP address and its
    ``User-Agent`` header (either ``None`` when unknown).

    Given to ``create_new_session`` and ``refresh_session``, and (through a zero-argument
    callable) to ``get_session``; the engine records it in the session's row when it
    writes there anyway (creation, rotation), never with a store write of its own. User
    agents are cut to 512 characters, IP addresses to 64.
    """

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Token:
    """A token and when it expires (ms since the epoch)."""

    value: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """Everything a client must receive after ``create_new_session`` or ``refresh_session``."""

    handle: str
    user_id: str
    jwt_payload: dict[str, Any]
    access_token: Token
    refresh_token: Token
    id_refresh_token: Token
    anti_csrf_token: str | None
    front_token: str
    #: When the user last authenticated, in ms since the epoch, as the access token carries
    #: it (whole seconds).
    auth_time: int = 0
    #: ``False`` for a session created with ``persistent=False``: its cookies should end
    #: with the browser session (no ``Expires``/``Max-Age``).
    persistent: bool = True


class VerifiedSession(NamedTuple):
    """The outcome of a successful ``get_session`` (an immutable named tuple: it is built on
    every verification, where a frozen dataclass would cost measurably more).

    ``new_access_token`` (with its ``front_token``) is set when verification minted a
    replacement access token (the first use of a token issued by a refresh) that the
    client must receive. ``jwt_payload`` may be shared with the engine's verified-token
    cache: treat it as read-only. ``auth_time`` is when the user last authenticated (ms
    since the epoch, whole seconds, from the token's ``auth_time`` claim); 0 when unknown
    (a token issued without the claim), which fails any ``max_auth_age``.
    ``persistent`` tells whether the session's cookies outlive the browser when the
    engine read the session's row to answer (a promotion), else ``None`` (not known).
    """

    handle: str
    user_id: str
    jwt_payload: dict[str, Any]
    new_access_token: Token | None = None
    front_token: str | None = None
    auth_time: int = 0
    persistent: bool | None = None


@dataclass(frozen=True, slots=True)
class SessionInformation:
    """What the store knows about a session (times in ms since the epoch).

    ``last_active_at``: the session's latest rotation (refresh or first use of a refreshed
    access token), else its creation; never updated per request. ``ip`` and
    ``user_agent``: the client as last seen at a rotation, else as seen at creation
    (``created_ip``, ``created_user_agent``); ``None`` when not recorded. ``auth_time``: when
    the user last authenticated (the creation, or the latest ``mark_reauthenticated``).
    ``persistent``: whether its cookies outlive the browser session. ``refresh_validity``:
    the session's idle lifetime in ms (its own, or the configured ``refresh_token_validity``).
    """

    handle: str
    user_id: str
    session_data: dict[str, Any]
    jwt_payload: dict[str, Any]
    created_at: int
    expires_at: int
    last_active_at: int = 0
    ip: str | None = None
    user_agent: str | None = None
    created_ip: str | None = None
    created_user_agent: str | None = None
    auth_time: int = 0
    persistent: bool = True
    refresh_validity: int = 0


class KeyInfo(NamedTuple):
    """A verification key as listed by ``signing_keys()`` (never the private material).

    ``not_before`` is in seconds since the epoch; ``signing`` tells whether this key signs
    new tokens in this engine now.
    """

    kid: str
    algorithm: str
    not_before: int
    signing: bool


@dataclass(frozen=True, slots=True)
class ChangeFeedState:
    """What ``change_feed_state()`` reports about an engine's change feed.

    ``enabled``: ``Config.change_feed`` is on and the store offers a feed. ``connected``:
    the listener's connection is up and has caught up. ``live``: verification trusts the
    feed now (connected, and heard from within ``change_feed_max_lag``); when false it reads
    the store instead. ``last_seq``: the last change applied. ``lag_ms``: the age of what the
    listener knows of the log: ms since its last successful read was asked (``None``
    before the first).
    ``disconnects``: connections lost or refused so far. ``revoked_tracked``: revoked
    sessions held in memory (each until its last access token has expired). ``stopped``:
    why the listener stopped for good (its store was closed, the store's schema is gone),
    ``None`` otherwise; verification reads the store from then on.
    """

    enabled: bool
    connected: bool
    live: bool
    last_seq: int
    lag_ms: float | None
    disconnects: int
    revoked_tracked: int
    stopped: str | None = None
