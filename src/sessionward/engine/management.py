"""The management calls, as flows: what an application asks about sessions by handle or
by user (information, data and payload updates, revocation, housekeeping), and the
re-signing of an access token with a new payload or a new authentication time.

Every call that changes or ends sessions emits its events
(:mod:`sessionward.events`) once the store has answered."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import GeneralError, TryRefreshTokenError, UnauthorizedError
from ..events import RevocationReason, SessionRevoked, SessionUpdated
from ..stores.base import SessionRow, Store
from ..tokens.access import InvalidAccessToken
from ..tokens.front import front_token
from .decisions import row_alive
from .flow import Flow, call
from .rows import read_row
from .types import SessionInformation, VerifiedSession
from .validation import check_json_object

if TYPE_CHECKING:
    from ..config import Config
    from .core import SessionCore

__all__ = [
    "delete_expired",
    "handles_for_user",
    "live_row",
    "mark_reauthenticated",
    "regenerate_access_token",
    "revoke",
    "revoke_others",
    "revoke_user",
    "session_information",
    "sessions_for_user",
    "update_jwt_payload",
    "update_session_data",
]


def live_row(core: SessionCore, handle: str) -> Flow[SessionRow]:
    """The row of a session that exists and has not expired, else ``UnauthorizedError``."""
    row = yield from read_row(handle)
    if row is None or not row_alive(row, int(core.clock() * 1000), core.config):
        raise UnauthorizedError("the session does not exist")
    return row


def session_information(core: SessionCore, handle: str) -> Flow[SessionInformation]:
    """Everything stored about a live session."""
    row = yield from live_row(core, handle)
    return information(row, core.config)


def information(row: SessionRow, config: Config) -> SessionInformation:
    """The :class:`SessionInformation` of ``row``."""
    configured = config.refresh_token_validity * 1000
    own = row.refresh_validity
    return SessionInformation(
        row.session_handle,
        row.user_id,
        row.session_data,
        row.jwt_user_payload,
        row.created_at_time,
        row.expires_at,
        last_active_at=row.active_at,
        ip=row.created_ip if row.last_ip is None else row.last_ip,
        user_agent=row.created_user_agent if row.last_user_agent is None else row.last_user_agent,
        created_ip=row.created_ip,
        created_user_agent=row.created_user_agent,
        auth_time=row.authenticated_at,
        persistent=row.persistent,
        refresh_validity=configured if own is None else min(own, configured),
    )


def revocation_reason(reason: Any) -> RevocationReason:
    """``reason`` as a :class:`~sessionward.events.RevocationReason` (its value is accepted
    too); ``GeneralError`` otherwise."""
    try:
        return RevocationReason(reason)
    except ValueError:
        choices = ", ".join(repr(r.value) for r in RevocationReason)
        raise GeneralError(f"reason: expected a RevocationReason ({choices}); got {reason!r}"[:300]) from None


def revoke(core: SessionCore, handles: list[str], reason: Any = RevocationReason.USER) -> Flow[list[str]]:
    """Delete these sessions; evaluates to the handles that existed."""
    if isinstance(handles, str) or not all(isinstance(h, str) for h in handles):
        raise GeneralError("handles: expected a list of session handles (strings)")
    why = revocation_reason(reason)
    removed = yield from call(Store.delete_sessions, list(handles))
    _revoked(core, removed, None, why)
    return removed


def revoke_user(core: SessionCore, user_id: str, reason: Any = RevocationReason.USER) -> Flow[list[str]]:
    """Delete every session of ``user_id``; evaluates to their handles."""
    why = revocation_reason(reason)
    removed = yield from call(Store.delete_sessions_for_user, user_id)
    _revoked(core, removed, user_id, why)
    return removed


def revoke_others(core: SessionCore, user_id: str, keep: str) -> Flow[list[str]]:
    """Delete every session of ``user_id`` but ``keep`` in one atomic store operation;
    evaluates to the handles deleted."""
    if not isinstance(user_id, str) or not isinstance(keep, str):
        raise GeneralError("revoke_other_sessions: expected a user id and a session handle (strings)")
    removed = yield from call(Store.delete_other_sessions, user_id, keep)
    _revoked(core, removed, user_id, RevocationReason.OTHER_DEVICES)
    return removed


def _revoked(core: SessionCore, handles: list[str], user_id: str | None, reason: RevocationReason) -> None:
    core.feed.note_revoked(handles)  # refused here at once; other engines learn it from the feed
    now_ms = int(core.clock() * 1000)
    for handle in handles:
        core.events.emit(SessionRevoked(handle, user_id, now_ms, reason))


def handles_for_user(core: SessionCore, user_id: str) -> Flow[list[str]]:
    """The handles of ``user_id``'s live sessions."""
    handles = yield from call(Store.get_handles_for_user, user_id, int(core.clock() * 1000))
    return handles


def sessions_for_user(core: SessionCore, user_id: str) -> Flow[list[SessionInformation]]:
    """What is stored about each of ``user_id``'s live sessions, the most recently active
    first (then the most recently created)."""
    if not isinstance(user_id, str):
        raise GeneralError(f"user_id: expected a string, got {type(user_id).__name__}")
    rows = yield from call(Store.get_sessions_for_user, user_id, int(core.clock() * 1000))
    now_ms = int(core.clock() * 1000)
    config = core.config
    live = [row for row in rows if row.user_id == user_id and row_alive(row, now_ms, config)]
    live.sort(key=lambda row: (row.active_at, row.created_at_time, row.session_handle), reverse=True)
    return [information(row, config) for row in live]


def delete_expired(core: SessionCore) -> Flow[int]:
    """Delete the expired rows; evaluates to how many."""
    removed = yield from call(Store.delete_expired_sessions, int(core.clock() * 1000))
    now_ms = int(core.clock() * 1000)
    for handle, user_id in removed:
        core.events.emit(SessionRevoked(handle, user_id, now_ms, RevocationReason.EXPIRED))
    return len(removed)


def update_session_data(core: SessionCore, handle: str, data: Any) -> Flow[None]:
    """Overwrite a live session's private data."""
    checked = _checked_update("session_data", data)
    row = yield from live_row(core, handle)
    if not (yield from call(Store.update_session_data, handle, checked)):
        raise UnauthorizedError("the session does not exist")
    core.events.emit(SessionUpdated(handle, row.user_id, int(core.clock() * 1000), "session_data"))


def update_jwt_payload(core: SessionCore, handle: str, payload: Any) -> Flow[None]:
    """Check the payload against the session's size budget, then write it."""
    checked = _checked_update("jwt_payload", payload)
    row = yield from live_row(core, handle)
    core.check_payload_size((yield from core.keys.signing_key(core.clock())), row.user_id, checked)
    if not (yield from call(Store.update_jwt_payload, handle, checked)):
        raise UnauthorizedError("the session does not exist")
    core.events.emit(SessionUpdated(handle, row.user_id, int(core.clock() * 1000), "jwt_payload"))


def mark_reauthenticated(core: SessionCore, handle: str, access_token: str) -> Flow[VerifiedSession]:
    """Record that the user of session ``handle`` has just authenticated again: the row's
    ``auth_time`` becomes now, and a copy of ``access_token`` (same claims and expiry)
    carries it. ``TryRefreshTokenError`` before any write when ``access_token`` is not a
    valid access token of that session; ``UnauthorizedError`` when the session is gone.
    The copy is ``None`` in the rare case where the token expired meanwhile."""
    if not isinstance(handle, str):
        raise GeneralError(f"handle: expected a session handle (string), got {type(handle).__name__}")
    try:
        claims = core.access_codec.decode(access_token, core.clock())
    except InvalidAccessToken as exc:
        raise TryRefreshTokenError(f"invalid access token: {exc}") from None
    if claims.session_handle != handle:
        raise GeneralError("access_token: belongs to another session than handle")
    now_ms = int(core.clock() * 1000)
    if not (yield from call(Store.update_auth_time, handle, now_ms)):
        raise UnauthorizedError("the session does not exist")
    core.events.emit(SessionUpdated(handle, claims.user_id, now_ms, "auth_time"))
    key, now = yield from core.keys.minting_key()
    auth_seconds = now_ms // 1000
    if now >= claims.expires_at + core.leeway:
        # Expired while the keys were loaded: the next refresh carries the new time.
        return VerifiedSession(handle, claims.user_id, claims.user_data, None, None, auth_seconds * 1000)
    token = core.minter.access_token(
        key,
        claims.user_id,
        handle,
        claims.refresh_token_hash1,
        claims.parent_refresh_token_hash1,
        claims.user_data,
        now,
        expires_at=claims.expires_at,
        auth_time=auth_seconds,
    )
    return VerifiedSession(
        handle,
        claims.user_id,
        claims.user_data,
        token,
        front_token(claims.user_id, token.expires_at, claims.user_data),
        auth_seconds * 1000,
    )


def regenerate_access_token(
    core: SessionCore, access_token: str, jwt_payload: dict[str, Any]
) -> Flow[VerifiedSession | None]:
    """A copy of a still-valid access token carrying ``jwt_payload``, with the same
    expiry and session claims; ``None`` when the token is no longer valid."""
    payload = check_json_object("jwt_payload", jwt_payload)
    now = core.clock()
    try:
        claims = core.access_codec.decode(access_token, now)
    except InvalidAccessToken:
        return None
    key, now = yield from core.keys.minting_key()
    if now >= claims.expires_at + core.leeway:
        return None  # expired while the keys were being loaded
    core.check_payload_size(key, claims.user_id, payload)
    token = core.minter.access_token(
        key,
        claims.user_id,
        claims.session_handle,
        claims.refresh_token_hash1,
        claims.parent_refresh_token_hash1,
        payload,
        now,
        expires_at=claims.expires_at,
        auth_time=claims.auth_time,
    )
    auth_time = claims.auth_time
    return VerifiedSession(
        claims.session_handle,
        claims.user_id,
        payload,
        token,
        front_token(claims.user_id, token.expires_at, payload),
        0 if auth_time is None else auth_time * 1000,
    )


def _checked_update(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        raise GeneralError(f"{name}: expected a dict (pass {{}} to clear it)")
    return check_json_object(name, value)
