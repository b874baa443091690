"""The management calls, as flows: what an application asks about sessions by handle or
by user (information, data and payload updates, revocation, housekeeping), and the
re-signing of an access token with a new payload."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import GeneralError, UnauthorizedError
from ..stores.base import SessionRow, Store
from ..tokens.access import InvalidAccessToken
from ..tokens.front import front_token
from .decisions import row_alive
from .flow import Flow, call
from .rows import read_row
from .types import SessionInformation, VerifiedSession
from .validation import check_json_object

if TYPE_CHECKING:
    from .core import SessionCore

__all__ = [
    "delete_expired",
    "handles_for_user",
    "live_row",
    "regenerate_access_token",
    "revoke",
    "revoke_user",
    "session_information",
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
    return SessionInformation(
        row.session_handle,
        row.user_id,
        row.session_data,
        row.jwt_user_payload,
        row.created_at_time,
        row.expires_at,
    )


def revoke(handles: list[str]) -> Flow[list[str]]:
    """Delete these sessions; evaluates to the handles that existed."""
    if isinstance(handles, str) or not all(isinstance(h, str) for h in handles):
        raise GeneralError("handles: expected a list of session handles (strings)")
    removed = yield from call(Store.delete_sessions, list(handles))
    return removed


def revoke_user(user_id: str) -> Flow[list[str]]:
    """Delete every session of ``user_id``; evaluates to their handles."""
    removed = yield from call(Store.delete_sessions_for_user, user_id)
    return removed


def handles_for_user(core: SessionCore, user_id: str) -> Flow[list[str]]:
    """The handles of ``user_id``'s live sessions."""
    handles = yield from call(Store.get_handles_for_user, user_id, int(core.clock() * 1000))
    return handles


def delete_expired(core: SessionCore) -> Flow[int]:
    """Delete the expired rows; evaluates to how many."""
    removed = yield from call(Store.delete_expired_sessions, int(core.clock() * 1000))
    return len(removed)


def update_session_data(core: SessionCore, handle: str, data: Any) -> Flow[None]:
    """Overwrite a live session's private data."""
    checked = _checked_update("session_data", data)
    yield from live_row(core, handle)
    if not (yield from call(Store.update_session_data, handle, checked)):
        raise UnauthorizedError("the session does not exist")


def update_jwt_payload(core: SessionCore, handle: str, payload: Any) -> Flow[None]:
    """Check the payload against the session's size budget, then write it."""
    checked = _checked_update("jwt_payload", payload)
    row = yield from live_row(core, handle)
    core.check_payload_size((yield from core.keys.signing_key(core.clock())), row.user_id, checked)
    if not (yield from call(Store.update_jwt_payload, handle, checked)):
        raise UnauthorizedError("the session does not exist")


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
    )
    return VerifiedSession(
        claims.session_handle,
        claims.user_id,
        payload,
        token,
        front_token(claims.user_id, token.expires_at, payload),
    )


def _checked_update(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        raise GeneralError(f"{name}: expected a dict (pass {{}} to clear it)")
    return check_json_object(name, value)
