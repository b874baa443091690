"""The session engine's decisions, with no I/O: create, verify, refresh, promotion and the
management calls.

Theory of operation. Every operation that may touch the store is a *flow*
(:mod:`sessionward.engine.flow`): a generator that yields store calls and receives each
call's result. The flow decides; a driver performs. ``SessionWard`` drives
flows with a synchronous store and ``AsyncSessionWard`` with an async one, so the
decision code exists once (the pattern of httpx's auth flows). Verifying an access token
without a parent claim needs no store at all and returns directly: that is the hot path.

Refresh tokens are deterministic functions of their parents (see ``tokens.refresh``), so
a refresh writes nothing: it hands out the current token's child, and the rotation is
committed by the first use of that child or of the access token issued with it, through a
compare-and-set on the stored ``H(H(token))``. Parallel and repeated refreshes thus agree
on one successor, and a lost response is recovered by the predecessor grace window.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..config import Config
from ..errors import (
    GeneralError,
    PayloadTooLargeError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from ..stores.base import CorruptSessionRowError, SessionRow, Store, StoredKey
from ..tokens.access import (
    MAX_ACCESS_TOKEN_LENGTH,
    AccessTokenClaims,
    AccessTokenCodec,
    InvalidAccessToken,
    UnknownKeyId,
)
from ..tokens.encoding import b64url_decode, b64url_encode
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.front import front_token
from ..tokens.keys import SigningKey
from ..tokens.refresh import (
    MASTER_SECRET_BYTES,
    InvalidRefreshToken,
    RefreshTokenCodec,
    new_id_refresh_token,
)
from .budget import PayloadBudget
from .cache import VerifiedTokenCache
from .decisions import RefreshCase, decide_refresh, row_alive
from .flow import Flow, call
from .keys import KeyManager
from .types import SessionInformation, SessionTokens, Token, VerifiedSession
from .validation import check_json_object, check_user_id

__all__ = ["SessionCore"]

logger = logging.getLogger("sessionward.engine")
REFRESH_KEY_NAME = "refresh_token_key"
_MAX_CAS_ATTEMPTS = 4


class SessionCore:
    """State and decisions shared by the sync and async engines.

    Not for direct use: :class:`~sessionward.SessionWard` and
    :class:`~sessionward.AsyncSessionWard` wrap it.
    """

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.access_codec = AccessTokenCodec(config.access_token_algorithm, config.clock_skew_leeway)
        self.cache = VerifiedTokenCache(config.verified_token_cache_size)
        self.keys = KeyManager(config, clock, self.access_codec, self.cache)
        self.budget = PayloadBudget(config)
        # Copied out of the config: read on every verification.
        self.anti_csrf = config.enable_anti_csrf
        self.blacklisting = config.access_token_blacklisting
        self.leeway = config.clock_skew_leeway
        self.ready = False
        self._refresh_codec: RefreshTokenCodec | None = None

    # -- start-up -----------------------------------------------------------------------

    def startup(self) -> Flow[None]:
        """Migrate (or check) the schema and load the refresh-token secret and signing keys."""
        yield from call(Store.migrate) if self.config.auto_migrate else call(Store.check_schema)
        proposal = StoredKey(
            REFRESH_KEY_NAME,
            b64url_encode(secrets.token_bytes(MASTER_SECRET_BYTES)),
            int(self.clock() * 1000),
        )
        stored = yield from call(Store.insert_key_if_absent, proposal)
        try:
            self._refresh_codec = RefreshTokenCodec(b64url_decode(stored.value))
        except ValueError as exc:
            raise GeneralError(f"the stored {REFRESH_KEY_NAME} is corrupt") from exc
        yield from self.keys.sync(self.clock())
        self.ready = True

    def verify_again(
        self, access_token: str, anti_csrf_token: str | None, do_anti_csrf_check: bool
    ) -> VerifiedSession | Flow[VerifiedSession]:
        """:meth:`verify` after ``keys.reload_for``: a ``kid`` still unknown is a token
        to refresh, never another reload."""
        try:
            return self.verify(access_token, anti_csrf_token, do_anti_csrf_check)
        except UnknownKeyId:
            raise TryRefreshTokenError("access token signed by an unknown key") from None

    def check_payload_size(self, key: SigningKey, user_id: str, payload: dict[str, Any]) -> None:
        """Raise :class:`~sessionward.errors.PayloadTooLargeError` when ``payload`` would
        make the session's largest access cookie exceed the browser limit."""
        self.budget.check(self.access_codec.header_segment(key), key, user_id, payload)

    def _read_row(self, handle: str) -> Flow[SessionRow | None]:
        """The session's row; a row the store cannot decode ends the session with
        ``UnauthorizedError`` and a log line rather than failing every request."""
        try:
            row = yield from call(Store.get_session, handle)
        except CorruptSessionRowError as exc:
            logger.error("session %s is unusable: %s", handle, exc)
            raise UnauthorizedError("the session's stored row is corrupt") from None
        return row

    def _stored_payload_fits(self, key: SigningKey, row: SessionRow) -> None:
        """A stored payload that no longer fits (written by an older version, or before a
        configuration change) ends the session with ``UnauthorizedError``, never a 500."""
        try:
            self.check_payload_size(key, row.user_id, row.jwt_user_payload)
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

    @property
    def refresh_codec(self) -> RefreshTokenCodec:
        codec = self._refresh_codec
        if codec is None:
            raise GeneralError("the engine has not started")
        return codec

    # -- token issuing -------------------------------------------------------------------

    def _access_token(
        self,
        key: SigningKey,
        user_id: str,
        handle: str,
        refresh_hash1: str,
        parent_hash1: str | None,
        payload: dict[str, Any],
        now: float,
        expires_at: int | None = None,
    ) -> Token:
        issued_at = int(now)
        exp = issued_at + self.config.access_token_validity if expires_at is None else expires_at
        csrf = self.refresh_codec.anti_csrf_token(refresh_hash1) if self.config.enable_anti_csrf else None
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
        )
        return Token(value, exp * 1000)

    def _session_tokens(
        self,
        key: SigningKey,
        row: SessionRow,
        refresh_token: str,
        parent_hash1: str | None,
        now: float,
        refresh_expiry: int | None = None,
    ) -> SessionTokens:
        refresh_hash1 = hash_hex(refresh_token)
        access = self._access_token(
            key,
            row.user_id,
            row.session_handle,
            refresh_hash1,
            parent_hash1,
            row.jwt_user_payload,
            now,
        )
        if refresh_expiry is None:
            refresh_expiry = self._idle_deadline(row, int(now * 1000))
        return SessionTokens(
            handle=row.session_handle,
            user_id=row.user_id,
            jwt_payload=row.jwt_user_payload,
            access_token=access,
            refresh_token=Token(refresh_token, refresh_expiry),
            id_refresh_token=Token(new_id_refresh_token(), refresh_expiry),
            anti_csrf_token=(
                self.refresh_codec.anti_csrf_token(refresh_hash1) if self.config.enable_anti_csrf else None
            ),
            front_token=front_token(row.user_id, access.expires_at, row.jwt_user_payload),
        )

    def _idle_deadline(self, row: SessionRow, now_ms: int) -> int:
        deadline = now_ms + self.config.refresh_token_validity * 1000
        if self.config.session_max_lifetime is not None:
            deadline = min(deadline, row.created_at_time + self.config.session_max_lifetime * 1000)
        return deadline

    # -- create --------------------------------------------------------------------------

    def create_new_session(
        self, user_id: str, jwt_payload: dict[str, Any] | None, session_data: dict[str, Any] | None
    ) -> Flow[SessionTokens]:
        """A new handle, tokens and one inserted row (a login always creates a session)."""
        user_id = check_user_id(user_id)
        payload = check_json_object("jwt_payload", jwt_payload)
        data = check_json_object("session_data", session_data)
        key = yield from self.keys.signing_key(self.clock())
        self.check_payload_size(key, user_id, payload)
        handle = str(uuid.uuid4())
        refresh_token = self.refresh_codec.new_root(handle, user_id)
        now_ms = int(self.clock() * 1000)
        deadline = now_ms + self.config.refresh_token_validity * 1000
        if self.config.session_max_lifetime is not None:
            deadline = min(deadline, now_ms + self.config.session_max_lifetime * 1000)
        row = SessionRow(
            session_handle=handle,
            user_id=user_id,
            refresh_token_hash_2=hash_hex(hash_hex(refresh_token)),
            prev_refresh_token_hash_2=None,
            rotated_at=None,
            session_data=data,
            jwt_user_payload=payload,
            created_at_time=now_ms,
            expires_at=deadline,
        )
        yield from call(Store.insert_session, row)
        # Minted after the insert, which may have waited on a lock; the cookies still end
        # with the row.
        return self._session_tokens(key, row, refresh_token, None, self.clock(), deadline)

    # -- verify --------------------------------------------------------------------------

    def verify(
        self, access_token: str, anti_csrf_token: str | None, do_anti_csrf_check: bool
    ) -> VerifiedSession | Flow[VerifiedSession]:
        """Verify an access token. Returns the session directly when no store access is needed, else a
        flow. Raises ``UnknownKeyId`` for the driver to reload keys."""
        if type(access_token) is not str or len(access_token) > MAX_ACCESS_TOKEN_LENGTH:
            # Before the cache lookup: an unhashable value would raise TypeError, and a
            # huge one would be hashed for nothing.
            raise TryRefreshTokenError("invalid access token: not a string of acceptable length")
        now = self.clock()
        entry = self.cache.entries.get(access_token)
        check_csrf = do_anti_csrf_check and self.anti_csrf
        if entry is not None and now < entry[1]:
            if check_csrf:
                _check_anti_csrf(entry[2], anti_csrf_token)
            if self.blacklisting:
                return self._require_row(entry[0])
            return entry[0]
        try:
            claims = self.access_codec.decode(access_token, now)
        except InvalidAccessToken as exc:
            if type(exc) is not InvalidAccessToken:
                raise  # UnknownKeyId: the driver reloads keys and retries once
            raise TryRefreshTokenError(f"invalid access token: {exc}") from None
        if check_csrf:
            _check_anti_csrf(claims.anti_csrf_token, anti_csrf_token)
        if claims.parent_refresh_token_hash1 is not None:
            return self._promote(claims)
        session = VerifiedSession(claims.session_handle, claims.user_id, claims.user_data)
        if self.cache.capacity:
            self.cache.put(access_token, session, claims.expires_at + self.leeway, claims.anti_csrf_token)
        if self.blacklisting:
            return self._require_row(session)
        return session

    def _require_row(self, session: VerifiedSession) -> Flow[VerifiedSession]:
        row = yield from self._read_row(session.handle)
        if row is None or not row_alive(row, int(self.clock() * 1000), self.config):
            raise UnauthorizedError("the session has been revoked or has expired")
        return session

    def _promote(self, claims: AccessTokenClaims) -> Flow[VerifiedSession]:
        """First use of an access token issued by a refresh: commit its refresh token."""
        handle = claims.session_handle
        assert claims.parent_refresh_token_hash1 is not None
        expected = hash_hex(claims.parent_refresh_token_hash1)
        target = hash_hex(claims.refresh_token_hash1)
        row = yield from self._read_row(handle)
        now_ms = int(self.clock() * 1000)
        if row is not None and not row_alive(row, now_ms, self.config):
            row = None
        if row is not None and row.refresh_token_hash_2 == expected:
            self._stored_payload_fits((yield from self.keys.signing_key(now_ms / 1000)), row)
            deadline = self._idle_deadline(row, now_ms)
            if (yield from call(Store.promote, handle, expected, target, now_ms, deadline)):
                row = _promoted(row, target, now_ms, deadline)
            else:
                row = yield from self._read_row(handle)
        if row is None or row.user_id != claims.user_id:
            raise UnauthorizedError("the session no longer exists")
        if row.refresh_token_hash_2 != target:
            # The session moved on: this token is stale but genuinely signed; it stays
            # valid until it expires, and no replacement is minted.
            return VerifiedSession(handle, claims.user_id, claims.user_data)
        key, now = yield from self.keys.minting_key()
        replacement = self._access_token(
            key, row.user_id, handle, claims.refresh_token_hash1, None, row.jwt_user_payload, now
        )
        return VerifiedSession(
            handle,
            row.user_id,
            row.jwt_user_payload,
            replacement,
            front_token(row.user_id, replacement.expires_at, row.jwt_user_payload),
        )

    def regenerate_access_token(
        self, access_token: str, jwt_payload: dict[str, Any]
    ) -> Flow[VerifiedSession | None]:
        """A copy of a still-valid access token carrying ``jwt_payload``, with the same
        expiry and session claims; ``None`` when the token is no longer valid."""
        payload = check_json_object("jwt_payload", jwt_payload)
        now = self.clock()
        try:
            claims = self.access_codec.decode(access_token, now)
        except InvalidAccessToken:
            return None
        key, now = yield from self.keys.minting_key()
        if now >= claims.expires_at + self.leeway:
            return None  # expired while the keys were being loaded
        self.check_payload_size(key, claims.user_id, payload)
        token = self._access_token(
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

    # -- refresh -------------------------------------------------------------------------

    def refresh_session(self, refresh_token: str) -> Flow[SessionTokens]:
        """Rotation with idempotent successors, grace window and theft detection (the
        decision table is in :mod:`sessionward.engine.decisions`)."""
        codec = self.refresh_codec
        try:
            content = codec.decrypt(refresh_token)
        except InvalidRefreshToken as exc:
            raise UnauthorizedError(f"invalid refresh token: {exc}") from None
        hash1 = hash_hex(refresh_token)
        hash2 = hash_hex(hash1)
        handle = content.session_handle
        for _ in range(_MAX_CAS_ATTEMPTS):
            row = yield from self._read_row(handle)
            # Read after the row: a clock read before a wait on the store would judge a
            # rotation committed meanwhile as being from the future.
            now_ms = int(self.clock() * 1000)
            case = decide_refresh(row, content, hash2, now_ms, self.config)
            if case is RefreshCase.NO_SESSION:
                raise UnauthorizedError("the session does not exist (revoked or expired)")
            assert row is not None
            if case is RefreshCase.EXPIRED:
                raise UnauthorizedError("the session has expired")
            if case is RefreshCase.THEFT:
                yield from call(Store.delete_sessions, [handle])
                raise TokenTheftDetectedError(handle, row.user_id)
            self._stored_payload_fits((yield from self.keys.signing_key(now_ms / 1000)), row)
            if case is RefreshCase.PREDECESSOR_IN_GRACE:
                current = codec.child_of(refresh_token, content)
                if hash_hex(hash_hex(current)) != row.refresh_token_hash_2:
                    yield from call(Store.delete_sessions, [handle])
                    raise TokenTheftDetectedError(handle, row.user_id)
                key, now = yield from self.keys.minting_key()
                # Already committed: its cookie must not outlive the row's deadline.
                return self._session_tokens(key, row, current, None, now, row.expires_at)
            refresh_expiry = None
            if case is RefreshCase.FIRST_USE_OF_CHILD:
                assert content.parent_hash1 is not None
                deadline = self._idle_deadline(row, now_ms)
                expected = hash_hex(content.parent_hash1)
                if not (yield from call(Store.promote, handle, expected, hash2, now_ms, deadline)):
                    continue  # the row changed under us: decide again on a fresh read
                row = _promoted(row, hash2, now_ms, deadline)
                refresh_expiry = deadline
            key, now = yield from self.keys.minting_key()
            child = codec.child_of(refresh_token, content)
            return self._session_tokens(key, row, child, hash1, now, refresh_expiry)
        raise GeneralError("the session row kept changing during refresh; try again")

    # -- management ----------------------------------------------------------------------

    def live_row(self, handle: str) -> Flow[SessionRow]:
        """The row of a session that exists and has not expired, else ``UnauthorizedError``."""
        row = yield from self._read_row(handle)
        if row is None or not row_alive(row, int(self.clock() * 1000), self.config):
            raise UnauthorizedError("the session does not exist")
        return row

    def session_information(self, handle: str) -> Flow[SessionInformation]:
        row = yield from self.live_row(handle)
        return SessionInformation(
            row.session_handle,
            row.user_id,
            row.session_data,
            row.jwt_user_payload,
            row.created_at_time,
            row.expires_at,
        )

    def revoke(self, handles: list[str]) -> Flow[list[str]]:
        if isinstance(handles, str) or not all(isinstance(h, str) for h in handles):
            raise GeneralError("handles: expected a list of session handles (strings)")
        removed = yield from call(Store.delete_sessions, list(handles))
        return removed

    def revoke_user(self, user_id: str) -> Flow[list[str]]:
        removed = yield from call(Store.delete_sessions_for_user, user_id)
        return removed

    def handles_for_user(self, user_id: str) -> Flow[list[str]]:
        handles = yield from call(Store.get_handles_for_user, user_id, int(self.clock() * 1000))
        return handles

    def delete_expired(self) -> Flow[int]:
        count = yield from call(Store.delete_expired_sessions, int(self.clock() * 1000))
        return count

    def update_session_data(self, handle: str, data: Any) -> Flow[None]:
        checked = _checked_update("session_data", data)
        yield from self.live_row(handle)
        if not (yield from call(Store.update_session_data, handle, checked)):
            raise UnauthorizedError("the session does not exist")

    def update_jwt_payload(self, handle: str, payload: Any) -> Flow[None]:
        """Check the payload against the session's size budget, then write it."""
        checked = _checked_update("jwt_payload", payload)
        row = yield from self.live_row(handle)
        self.check_payload_size((yield from self.keys.signing_key(self.clock())), row.user_id, checked)
        if not (yield from call(Store.update_jwt_payload, handle, checked)):
            raise UnauthorizedError("the session does not exist")


def _checked_update(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        raise GeneralError(f"{name}: expected a dict (pass {{}} to clear it)")
    return check_json_object(name, value)


def _promoted(row: SessionRow, new_hash_2: str, now_ms: int, deadline: int) -> SessionRow:
    """The row as a successful ``promote`` call left it in the store."""
    return replace(
        row,
        refresh_token_hash_2=new_hash_2,
        prev_refresh_token_hash_2=row.refresh_token_hash_2,
        rotated_at=now_ms,
        expires_at=deadline,
    )


def _check_anti_csrf(expected: str | None, presented: str | None) -> None:
    if (
        expected is None
        or not isinstance(presented, str)
        or not hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))
    ):
        raise TryRefreshTokenError("anti-CSRF token missing or wrong")
