"""Result types of the engine API; attribute names are part of the contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["KeyInfo", "SessionInformation", "SessionTokens", "Token", "VerifiedSession"]


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


class VerifiedSession(NamedTuple):
    """The outcome of a successful ``get_session`` (an immutable named tuple: it is built on
    every verification, where a frozen dataclass would cost measurably more).

    ``new_access_token`` (with its ``front_token``) is set when verification minted a
    replacement access token (the first use of a token issued by a refresh) that the
    client must receive. ``jwt_payload`` may be shared with the engine's verified-token
    cache: treat it as read-only.
    """

    handle: str
    user_id: str
    jwt_payload: dict[str, Any]
    new_access_token: Token | None = None
    front_token: str | None = None


@dataclass(frozen=True, slots=True)
class SessionInformation:
    """What the store knows about a session (times in ms since the epoch)."""

    handle: str
    user_id: str
    session_data: dict[str, Any]
    jwt_payload: dict[str, Any]
    created_at: int
    expires_at: int


class KeyInfo(NamedTuple):
    """A verification key as listed by ``signing_keys()`` (never the private material).

    ``not_before`` is in seconds since the epoch; ``signing`` tells whether this key signs
    new tokens in this engine now.
    """

    kid: str
    algorithm: str
    not_before: int
    signing: bool
