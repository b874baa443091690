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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import GeneralError, PayloadTooLargeError, TokenTheftDetectedError, UnauthorizedError
from ..events import RevocationReason, SessionRefreshed, SessionRevoked, TokenTheftDetected
from ..stores.base import Promotion, SessionRow, Store
from ..tokens.access import AccessTokenClaims
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.front import front_token
from ..tokens.keys import SigningKey
from ..tokens.refresh import InvalidRefreshToken
from .decisions import RefreshCase, decide_refresh, row_alive
from .flow import Flow, call
from .rows import promote_row, read_row
from .types import ClientInfo, SessionTokens, VerifiedSession
from .validation import check_client

if TYPE_CHECKING:
    from .core import SessionCore

__all__ = ["promote", "refresh_session"]

logger = logging.getLogger("sessionward.engine")
_MAX_CAS_ATTEMPTS = 4


def refresh_session(
    core: SessionCore, refresh_token: str, client: ClientInfo | None = None
) -> Flow[SessionTokens]:
    """Rotation with idempotent successors, grace window and theft detection. ``client``
    is recorded in the row when this refresh commits a rotation."""
    started = time.perf_counter()
    ip, user_agent = check_client(client)
    config = core.config
    codec = core.refresh_codec
    try:
        content = codec.decrypt(refresh_token)
    except InvalidRefreshToken as exc:
        raise UnauthorizedError(f"invalid refresh token: {exc}") from None
    hash1 = hash_hex(refresh_token)
    hash2 = hash_hex(hash1)
    handle = content.session_handle
    # Read first: the usual case (R2, the current token) writes nothing, and a blind
    # compare-and-set would be a write attempt on every refresh.
    row = yield from read_row(handle)
    for _ in range(_MAX_CAS_ATTEMPTS):
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
            yield from _revoke_for_theft(core, handle, row.user_id)
        _stored_payload_fits(core, (yield from core.keys.signing_key(now_ms / 1000)), row)
        if case is RefreshCase.PREDECESSOR_IN_GRACE:
            current = codec.child_of(refresh_token, content)
            if hash_hex(hash_hex(current)) != row.refresh_token_hash_2:
                yield from _revoke_for_theft(core, handle, row.user_id)
            key, now = yield from core.keys.minting_key()
            # Already committed: its cookie must not outlive the row's deadline.
            tokens = core.minter.session_tokens(key, row, current, None, now, row.expires_at)
            _refreshed(core, row, now, False, started)
            return tokens
        refresh_expiry = None
        promoted = False
        if case is RefreshCase.FIRST_USE_OF_CHILD:
            assert content.parent_hash1 is not None
            # The payload was checked on this row just above: no store-side payload check.
            outcome = yield from promote_row(
                _promotion(
                    core,
                    handle,
                    row.user_id,
                    hash_hex(content.parent_hash1),
                    hash2,
                    now_ms,
                    None,
                    ip,
                    user_agent,
                )
            )
            row = outcome.row
            if not outcome.changed:
                continue  # the row changed under us: decide again on the row the store returned
            assert row is not None
            refresh_expiry = row.expires_at
            promoted = True
        key, now = yield from core.keys.minting_key()
        child = codec.child_of(refresh_token, content)
        tokens = core.minter.session_tokens(key, row, child, hash1, now, refresh_expiry)
        _refreshed(core, row, now, promoted, started)
        return tokens
    raise GeneralError("the session row kept changing during refresh; try again")


def promote(
    core: SessionCore, claims: AccessTokenClaims, client: Callable[[], ClientInfo] | None = None
) -> Flow[VerifiedSession]:
    """First use of an access token issued by a refresh: commit its refresh token.

    The compare-and-set goes first, carrying the checks a prior read would serve (the row
    is alive, its user, the stored payload's size), and the store answers with the row: one
    round trip whatever the outcome. Only a refusal by a row that still holds the parent
    is looked at again (see docs/design/decision-tables.md). ``client`` is called once,
    for the client information the compare-and-set records.
    """
    started = time.perf_counter()
    ip, user_agent = check_client(None if client is None else client())
    config = core.config
    handle = claims.session_handle
    user_id = claims.user_id
    assert claims.parent_refresh_token_hash1 is not None
    expected = hash_hex(claims.parent_refresh_token_hash1)
    target = hash_hex(claims.refresh_token_hash1)
    key = yield from core.keys.signing_key(core.clock())
    limit: int | None = core.budget.max_payload_json(core.access_codec.header_segment(key), key, user_id)
    row: SessionRow | None = None
    changed = False
    for _ in range(_MAX_CAS_ATTEMPTS):
        outcome = yield from promote_row(
            _promotion(
                core, handle, user_id, expected, target, int(core.clock() * 1000), limit, ip, user_agent
            )
        )
        row = outcome.row
        if outcome.changed:
            changed = True
            break
        # Refused: judge the row the store returned, with a clock read after it.
        now_ms = int(core.clock() * 1000)
        if row is not None and (row.user_id != user_id or not row_alive(row, now_ms, config)):
            row = None
        if row is None or row.refresh_token_hash_2 != expected:
            break  # committed already (V2), moved on (V3) or gone (V4)
        # The row still holds the parent: its payload failed the store's length check
        # (which measures the stored text), or it changed during the statement. Check the
        # payload exactly, then compare-and-set again without the length check.
        _stored_payload_fits(core, (yield from core.keys.signing_key(now_ms / 1000)), row)
        limit = None
    if row is None:
        raise UnauthorizedError("the session no longer exists")
    if row.refresh_token_hash_2 != target:
        # The session moved on: this token is stale but genuinely signed; it stays
        # valid until it expires, and no replacement is minted.
        auth_time = claims.auth_time
        return VerifiedSession(
            handle, user_id, claims.user_data, None, None, 0 if auth_time is None else auth_time * 1000
        )
    key, now = yield from core.keys.minting_key()
    auth_seconds = row.authenticated_at // 1000
    replacement = core.minter.access_token(
        key,
        row.user_id,
        handle,
        claims.refresh_token_hash1,
        None,
        row.jwt_user_payload,
        now,
        None,
        auth_seconds,
    )
    if changed:
        _refreshed(core, row, now, True, started)
    return VerifiedSession(
        handle,
        row.user_id,
        row.jwt_user_payload,
        replacement,
        front_token(row.user_id, replacement.expires_at, row.jwt_user_payload),
        auth_seconds * 1000,
        row.persistent,
    )


def _refreshed(core: SessionCore, row: SessionRow, now: float, promoted: bool, started: float) -> None:
    """Emit :class:`~sessionward.events.SessionRefreshed` for ``row`` (``promoted``: this
    call committed a rotation)."""
    core.events.emit(
        SessionRefreshed(
            row.session_handle, row.user_id, int(now * 1000), promoted, time.perf_counter() - started
        )
    )


def _revoke_for_theft(core: SessionCore, handle: str, user_id: str) -> Flow[None]:
    """Delete the session of a replayed refresh token, report it and raise
    :class:`~sessionward.errors.TokenTheftDetectedError`."""
    removed = yield from call(Store.delete_sessions, [handle])
    now_ms = int(core.clock() * 1000)
    core.events.emit(TokenTheftDetected(handle, user_id, now_ms))
    if removed:
        core.events.emit(SessionRevoked(handle, user_id, now_ms, RevocationReason.THEFT))
    raise TokenTheftDetectedError(handle, user_id)


def _promotion(
    core: SessionCore,
    handle: str,
    user_id: str,
    expected: str,
    new: str,
    now_ms: int,
    limit: int | None,
    ip: str | None,
    user_agent: str | None,
) -> Promotion:
    """The compare-and-set committing ``new`` at ``now_ms``: the row must be alive then, and
    gets the idle deadline from then (its own lifetime when shortened), capped by the
    session's absolute lifetime; the client is recorded when known."""
    config = core.config
    max_life = config.session_max_lifetime
    return Promotion(
        handle,
        user_id,
        expected,
        new,
        now_ms,
        now_ms + config.refresh_token_validity * 1000,
        None if max_life is None else max_life * 1000,
        limit,
        ip,
        user_agent,
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
