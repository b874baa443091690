"""Rotation of refresh tokens, as flows: the refresh itself, and the promotion that commits
a refresh on the first use of the access token it issued.

Refresh tokens are deterministic functions of their parents (see ``tokens.refresh``), so
a refresh writes nothing: it hands out the current token's child, and the rotation is
committed by the first use of that child (:func:`refresh_session`) or of the access token
issued with it (:func:`promote`), through a compare-and-set on the stored ``H(H(token))``.
Parallel and repeated refreshes thus agree on one successor, and a lost response is
recovered by the predecessor grace window (the decision table is in
:mod:`sessionward.engine.decisions`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import GeneralError, PayloadTooLargeError, TokenTheftDetectedError, UnauthorizedError
from ..stores.base import SessionRow, Store
from ..tokens.access import AccessTokenClaims
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.front import front_token
from ..tokens.keys import SigningKey
from ..tokens.refresh import InvalidRefreshToken
from .decisions import RefreshCase, decide_refresh, row_alive
from .flow import Flow, call
from .minting import idle_deadline
from .rows import read_row
from .types import SessionTokens, VerifiedSession

if TYPE_CHECKING:
    from .core import SessionCore

__all__ = ["promote", "refresh_session"]

logger = logging.getLogger("sessionward.engine")
_MAX_CAS_ATTEMPTS = 4


def refresh_session(core: SessionCore, refresh_token: str) -> Flow[SessionTokens]:
    """Rotation with idempotent successors, grace window and theft detection."""
    config = core.config
    codec = core.refresh_codec
    try:
        content = codec.decrypt(refresh_token)
    except InvalidRefreshToken as exc:
        raise UnauthorizedError(f"invalid refresh token: {exc}") from None
    hash1 = hash_hex(refresh_token)
    hash2 = hash_hex(hash1)
    handle = content.session_handle
    for _ in range(_MAX_CAS_ATTEMPTS):
        row = yield from read_row(handle)
        # Read after the row: a clock read before a wait on the store would judge a
        # rotation committed meanwhile as being from the future.
        now_ms = int(core.clock() * 1000)
        case = decide_refresh(row, content, hash2, now_ms, config)
        if case is RefreshCase.NO_SESSION:
            raise UnauthorizedError("the session does not exist (revoked or expired)")
        assert row is not None
        if case is RefreshCase.EXPIRED:
            raise UnauthorizedError("the session has expired")
        if case is RefreshCase.THEFT:
            yield from call(Store.delete_sessions, [handle])
            raise TokenTheftDetectedError(handle, row.user_id)
        _stored_payload_fits(core, (yield from core.keys.signing_key(now_ms / 1000)), row)
        if case is RefreshCase.PREDECESSOR_IN_GRACE:
            current = codec.child_of(refresh_token, content)
            if hash_hex(hash_hex(current)) != row.refresh_token_hash_2:
                yield from call(Store.delete_sessions, [handle])
                raise TokenTheftDetectedError(handle, row.user_id)
            key, now = yield from core.keys.minting_key()
            # Already committed: its cookie must not outlive the row's deadline.
            return core.minter.session_tokens(key, row, current, None, now, row.expires_at)
        refresh_expiry = None
        if case is RefreshCase.FIRST_USE_OF_CHILD:
            assert content.parent_hash1 is not None
            deadline = idle_deadline(row, now_ms, config)
            expected = hash_hex(content.parent_hash1)
            if not (yield from call(Store.promote, handle, expected, hash2, now_ms, deadline)):
                continue  # the row changed under us: decide again on a fresh read
            row = _promoted(row, hash2, now_ms, deadline)
            refresh_expiry = deadline
        key, now = yield from core.keys.minting_key()
        child = codec.child_of(refresh_token, content)
        return core.minter.session_tokens(key, row, child, hash1, now, refresh_expiry)
    raise GeneralError("the session row kept changing during refresh; try again")


def promote(core: SessionCore, claims: AccessTokenClaims) -> Flow[VerifiedSession]:
    """First use of an access token issued by a refresh: commit its refresh token."""
    config = core.config
    handle = claims.session_handle
    assert claims.parent_refresh_token_hash1 is not None
    expected = hash_hex(claims.parent_refresh_token_hash1)
    target = hash_hex(claims.refresh_token_hash1)
    row = yield from read_row(handle)
    now_ms = int(core.clock() * 1000)
    if row is not None and not row_alive(row, now_ms, config):
        row = None
    if row is not None and row.refresh_token_hash_2 == expected:
        _stored_payload_fits(core, (yield from core.keys.signing_key(now_ms / 1000)), row)
        deadline = idle_deadline(row, now_ms, config)
        if (yield from call(Store.promote, handle, expected, target, now_ms, deadline)):
            row = _promoted(row, target, now_ms, deadline)
        else:
            row = yield from read_row(handle)
    if row is None or row.user_id != claims.user_id:
        raise UnauthorizedError("the session no longer exists")
    if row.refresh_token_hash_2 != target:
        # The session moved on: this token is stale but genuinely signed; it stays
        # valid until it expires, and no replacement is minted.
        return VerifiedSession(handle, claims.user_id, claims.user_data)
    key, now = yield from core.keys.minting_key()
    replacement = core.minter.access_token(
        key, row.user_id, handle, claims.refresh_token_hash1, None, row.jwt_user_payload, now
    )
    return VerifiedSession(
        handle,
        row.user_id,
        row.jwt_user_payload,
        replacement,
        front_token(row.user_id, replacement.expires_at, row.jwt_user_payload),
    )


def _stored_payload_fits(core: SessionCore, key: SigningKey, row: SessionRow) -> None:
    """A stored payload that no longer fits (written by an older version, or before a
    configuration change) ends the session with ``UnauthorizedError``, never a 500."""
    try:
        core.check_payload_size(key, row.user_id, row.jwt_user_payload)
    except PayloadTooLargeError as exc:
        logger.error(
            "session %s cannot be given a new access token: its stored JWT payload would "
            "make a %d-byte cookie (limit %d); shrink it with update_jwt_payload or sign "
            "the user in again",
            row.session_handle,
            exc.size,
            exc.limit,
        )
        raise UnauthorizedError("the session's stored JWT payload is over the size limit") from None


def _promoted(row: SessionRow, new_hash_2: str, now_ms: int, deadline: int) -> SessionRow:
    """The row as a successful ``promote`` call left it in the store."""
    return replace(
        row,
        refresh_token_hash_2=new_hash_2,
        prev_refresh_token_hash_2=row.refresh_token_hash_2,
        rotated_at=now_ms,
        expires_at=deadline,
    )
