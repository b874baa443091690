"""Minting tokens, with no I/O: access tokens, and the full token set handed to a client
for a new or refreshed session (access, refresh and idRefresh tokens, anti-CSRF token,
front-token)."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..errors import GeneralError
from ..stores.base import SessionRow
from ..tokens.access import AccessTokenCodec
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.front import front_token
from ..tokens.keys import SigningKey
from ..tokens.refresh import RefreshTokenCodec, new_id_refresh_token
from .types import SessionTokens, Token

__all__ = ["TokenMinter", "idle_deadline"]


def idle_deadline(row: SessionRow, now_ms: int, config: Config) -> int:
    """The session's deadline when its refresh token is used at ``now_ms``: the session's
    idle lifetime (its own when shortened, else the configured one) from now, capped by its
    absolute lifetime (as :meth:`~sessionward.stores.base.Promotion.deadline`)."""
    deadline = now_ms + config.refresh_token_validity * 1000
    if row.refresh_validity is not None:
        deadline = min(deadline, now_ms + row.refresh_validity)
    if config.session_max_lifetime is not None:
        deadline = min(deadline, row.created_at_time + config.session_max_lifetime * 1000)
    return deadline


class TokenMinter:
    """Mints the tokens of one engine from its access-token codec and its refresh-token
    codec (the latter set at start-up, once the secret is loaded from the store)."""

    def __init__(self, config: Config, access_codec: AccessTokenCodec) -> None:
        self.config = config
        self.access_codec = access_codec
        self.codec: RefreshTokenCodec | None = None

    @property
    def refresh_codec(self) -> RefreshTokenCodec:
        """The refresh-token codec; ``GeneralError`` before start-up."""
        codec = self.codec
        if codec is None:
            raise GeneralError("the engine has not started")
        return codec

    def access_token(
        self,
        key: SigningKey,
        user_id: str,
        handle: str,
        refresh_hash1: str,
        parent_hash1: str | None,
        payload: dict[str, Any],
        now: float,
        expires_at: int | None = None,
        auth_time: int | None = None,
    ) -> Token:
        """A signed access token bound to the refresh token whose hash is ``refresh_hash1``
        (``expires_at`` in seconds: default, the configured validity from ``now``;
        ``auth_time``, the claim in seconds, omitted when ``None``)."""
        csrf = self.refresh_codec.anti_csrf_token(refresh_hash1) if self.config.enable_anti_csrf else None
        return self._access_token(
            key, user_id, handle, refresh_hash1, parent_hash1, payload, None, csrf, now, expires_at, auth_time
        )

    def _access_token(
        self,
        key: SigningKey,
        user_id: str,
        handle: str,
        refresh_hash1: str,
        parent_hash1: str | None,
        payload: dict[str, Any],
        payload_json: str | None,
        csrf: str | None,
        now: float,
        expires_at: int | None = None,
        auth_time: int | None = None,
    ) -> Token:
        issued_at = int(now)
        exp = issued_at + self.config.access_token_validity if expires_at is None else expires_at
        value = self.access_codec.encode(
            key,
            user_id=user_id,
            session_handle=handle,
            refresh_token_hash1=refresh_hash1,
            parent_refresh_token_hash1=parent_hash1,
            user_data=payload,
            anti_csrf_token=csrf,
            issued_at=min(issued_at, exp),
            expires_at=exp,
            user_data_json=payload_json,
            auth_time=auth_time,
        )
        return Token(value, exp * 1000)

    def session_tokens(
        self,
        key: SigningKey,
        row: SessionRow,
        refresh_token: str,
        parent_hash1: str | None,
        now: float,
        refresh_expiry: int | None = None,
        refresh_hash1: str | None = None,
        id_refresh_random: bytes | None = None,
    ) -> SessionTokens:
        """Everything a client gets for ``refresh_token`` of the session in ``row``
        (``refresh_expiry`` in ms: default, the idle deadline from ``now``; ``refresh_hash1``:
        ``H(refresh_token)`` when the caller has it; ``id_refresh_random``: the random bytes
        of the idRefresh token when the caller has read them, see
        :func:`~sessionward.tokens.refresh.new_id_refresh_token`). The row's
        ``jwt_user_payload_json``, when set, is used instead of serialising the payload
        again. The access token's ``auth_time`` claim comes from the row."""
        if refresh_hash1 is None:
            refresh_hash1 = hash_hex(refresh_token)
        csrf = self.refresh_codec.anti_csrf_token(refresh_hash1) if self.config.enable_anti_csrf else None
        payload = row.jwt_user_payload
        payload_json = row.jwt_user_payload_json
        auth_time = row.authenticated_at // 1000
        access = self._access_token(
            key,
            row.user_id,
            row.session_handle,
            refresh_hash1,
            parent_hash1,
            payload,
            payload_json,
            csrf,
            now,
            None,
            auth_time,
        )
        if refresh_expiry is None:
            refresh_expiry = idle_deadline(row, int(now * 1000), self.config)
        return SessionTokens(
            handle=row.session_handle,
            user_id=row.user_id,
            jwt_payload=payload,
            access_token=access,
            refresh_token=Token(refresh_token, refresh_expiry),
            id_refresh_token=Token(new_id_refresh_token(id_refresh_random), refresh_expiry),
            anti_csrf_token=csrf,
            front_token=front_token(row.user_id, access.expires_at, payload, payload_json),
            auth_time=auth_time * 1000,
            persistent=row.persistent,
        )
