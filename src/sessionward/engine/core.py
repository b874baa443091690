"""The session engine's decisions, with no I/O (SPEC §6; tables in notes/rotation.md).

Theory of operation. Every operation that may touch the store is a *flow*: a generator
that yields :class:`StoreCall` values (a store method name and its arguments) and
receives each call's result. The flow decides; a driver performs. ``SessionWard`` drives
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

import base64
import hmac
import logging
import math
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TypeVar

from ..config import Config
from ..errors import (
    GeneralError,
    PayloadTooLargeError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from ..stores.base import CorruptSessionRowError, SessionRow, StoredKey
from ..tokens.access import (
    MAX_ACCESS_TOKEN_LENGTH,
    AccessTokenClaims,
    AccessTokenCodec,
    InvalidAccessToken,
)
from ..tokens.encoding import MAX_JSON_DEPTH, b64url_decode, b64url_encode, dumps_compact
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.keys import SigningKey, generate_signing_key
from ..tokens.refresh import (
    MASTER_SECRET_BYTES,
    MAX_USER_ID_BYTES,
    InvalidRefreshToken,
    RefreshTokenCodec,
    RefreshTokenContent,
    new_id_refresh_token,
)
from .budget import PayloadBudget
from .keyring import KeySchedule, KeyState
from .types import KeyInfo, SessionInformation, SessionTokens, Token, VerifiedSession

__all__ = ["Flow", "RefreshCase", "SessionCore", "StoreCall", "decide_refresh"]

T = TypeVar("T")
logger = logging.getLogger("sessionward.engine")
REFRESH_KEY_NAME = "refresh_token_key"
KEY_RELOAD_MIN_INTERVAL = 5.0
_MAX_CAS_ATTEMPTS = 4
_MAX_PAYLOAD_DEPTH = MAX_JSON_DEPTH - 4
_MAX_INT_BITS = 1024
#: Seconds of negative age (a rotation stamped by a host whose clock runs ahead, on top of
#: ``clock_skew_leeway``) that still count as zero age rather than theft.
SKEW_ALLOWANCE = 5


@dataclass(frozen=True, slots=True)
class StoreCall:
    """A store operation a flow asks its driver to perform."""

    method: str
    args: tuple[Any, ...] = ()


Flow = Generator[StoreCall, Any, T]


class RefreshCase(Enum):
    """The cases of the refresh decision table (notes/rotation.md)."""

    NO_SESSION = "R0"
    EXPIRED = "R1"
    CURRENT = "R2"
    FIRST_USE_OF_CHILD = "R3"
    PREDECESSOR_IN_GRACE = "R4"
    THEFT = "R5"


def decide_refresh(
    row: SessionRow | None,
    content: RefreshTokenContent,
    hash2: str,
    now_ms: int,
    config: Config,
) -> RefreshCase:
    """Classify a presented refresh token against the stored row (pure)."""
    if row is None or row.user_id != content.user_id:
        return RefreshCase.NO_SESSION
    if not row_alive(row, now_ms, config):
        return RefreshCase.EXPIRED
    if hmac.compare_digest(hash2, row.refresh_token_hash_2):
        return RefreshCase.CURRENT
    if content.parent_hash1 is not None and hmac.compare_digest(
        hash_hex(content.parent_hash1), row.refresh_token_hash_2
    ):
        return RefreshCase.FIRST_USE_OF_CHILD
    grace_ms = config.refresh_token_reuse_grace_period * 1000
    # A negative age means the rotation was stamped by a clock ahead of ours (another
    # host): up to the tolerance it counts as zero, never as theft.
    tolerance_ms = (config.clock_skew_leeway + SKEW_ALLOWANCE) * 1000
    if (
        grace_ms > 0
        and row.prev_refresh_token_hash_2 is not None
        and row.rotated_at is not None
        and hmac.compare_digest(hash2, row.prev_refresh_token_hash_2)
        and -tolerance_ms <= now_ms - row.rotated_at <= grace_ms
    ):
        return RefreshCase.PREDECESSOR_IN_GRACE
    return RefreshCase.THEFT


def row_alive(row: SessionRow, now_ms: int, config: Config) -> bool:
    """Whether the session is within its idle deadline and its absolute lifetime."""
    max_life = config.session_max_lifetime
    return now_ms <= row.expires_at and (
        max_life is None or now_ms <= row.created_at_time + max_life * 1000
    )


def front_token(user_id: str, access_expires_at_ms: int, payload: dict[str, Any]) -> str:
    """The ``front-token`` header value: standard base64 of ASCII-escaped compact JSON."""
    body = dumps_compact({"uid": user_id, "ate": access_expires_at_ms, "up": payload})
    return base64.b64encode(body.encode("ascii")).decode("ascii")


def check_user_id(user_id: Any) -> str:
    """Validate a user id given to ``create_new_session``."""
    if not isinstance(user_id, str) or not user_id:
        raise GeneralError("user_id: expected a non-empty string")
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_USER_ID_BYTES:
        raise GeneralError(f"user_id: longer than {MAX_USER_ID_BYTES} UTF-8 bytes")
    try:
        user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise GeneralError("user_id: contains lone surrogates (not valid UTF-8)") from None
    return user_id


def check_json_object(name: str, value: Any) -> dict[str, Any]:
    """Validate a JWT payload or session data object (``None`` means empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GeneralError(f"{name}: expected a dict, got {type(value).__name__}")
    if value:
        _check_json_value(name, value, 0)
    return value


def _check_json_value(name: str, value: Any, depth: int) -> None:
    if depth > _MAX_PAYLOAD_DEPTH:
        raise GeneralError(f"{name}: nested deeper than {_MAX_PAYLOAD_DEPTH} levels")
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise GeneralError(f"{name}: object keys must be strings, got {key!r}")
            _check_json_value(name, key, depth + 1)
            _check_json_value(name, item, depth + 1)
    elif kind is list:
        for item in value:
            _check_json_value(name, item, depth + 1)
    elif kind is float:
        if not math.isfinite(value):
            raise GeneralError(f"{name}: NaN and infinities are not JSON")
    elif kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise GeneralError(f"{name}: strings must be valid Unicode") from None
    elif kind is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise GeneralError(f"{name}: integers are limited to {_MAX_INT_BITS} bits")
    elif value is not None and kind is not bool:
        raise GeneralError(f"{name}: {kind.__name__} values are not JSON-serialisable")


class VerifiedTokenCache:
    """Verified access tokens of one engine, keyed by the exact token string.

    Bounded (oldest entries evicted first); an entry is used only before its token's
    expiry, and the whole cache is emptied whenever a verification key is dropped.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, tuple[VerifiedSession, float, str | None]] = OrderedDict()

    def put(self, token: str, session: VerifiedSession, valid_until: float, csrf: str | None) -> None:
        if self.capacity <= 0:
            return
        entries = self.entries
        # popitem(last=False) is O(1); deleting the first key of a plain dict is not.
        while len(entries) >= self.capacity:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
        entries[token] = (session, valid_until, csrf)

    def clear(self) -> None:
        self.entries = OrderedDict()


class SessionCore:
    """State and decisions shared by the sync and async engines.

    Not for direct use: :class:`~sessionward.SessionWard` and
    :class:`~sessionward.AsyncSessionWard` wrap it.
    """

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.access_codec = AccessTokenCodec(config.access_token_algorithm, config.clock_skew_leeway)
        self.schedule = KeySchedule(
            config.access_token_algorithm,
            config.access_token_signing_key_dynamic,
            config.access_token_signing_key_update_interval,
            config.access_token_validity,
            config.clock_skew_leeway,
        )
        self.cache = VerifiedTokenCache(config.verified_token_cache_size)
        self.budget = PayloadBudget(config)
        # Copied out of the config: read on every verification.
        self.anti_csrf = config.enable_anti_csrf
        self.blacklisting = config.access_token_blacklisting
        self.leeway = config.clock_skew_leeway
        self.ready = False
        self._refresh_codec: RefreshTokenCodec | None = None
        self._keys: KeyState | None = None
        self._reload_guard = threading.Lock()
        self._last_reload = -math.inf

    # -- start-up and keys ---------------------------------------------------------------

    def startup(self) -> Flow[None]:
        """Migrate (or check) the schema and load the refresh-token secret and signing keys."""
        yield StoreCall("migrate" if self.config.auto_migrate else "check_schema")
        proposal = StoredKey(
            REFRESH_KEY_NAME,
            b64url_encode(secrets.token_bytes(MASTER_SECRET_BYTES)),
            int(self.clock() * 1000),
        )
        stored: StoredKey = yield StoreCall("insert_key_if_absent", (proposal,))
        try:
            self._refresh_codec = RefreshTokenCodec(b64url_decode(stored.value))
        except ValueError as exc:
            raise GeneralError(f"the stored {REFRESH_KEY_NAME} is corrupt") from exc
        yield from self.sync_keys(self.clock())
        self.ready = True

    def sync_keys(self, now: float, extra: StoredKey | None = None) -> Flow[KeyState]:
        """Load signing keys, create the ones the schedule requires, drop obsolete ones."""
        stored: list[StoredKey] = yield StoreCall("load_keys", (self.schedule.prefix,))
        if extra is not None:
            stored.append((yield StoreCall("insert_key_if_absent", (extra,))))
        names = {entry.name for entry in stored}
        for name, not_before in self.schedule.required(names, now):
            key = generate_signing_key(self.schedule.alg, not_before)
            proposal = StoredKey(name, key.to_stored(), int(now * 1000))
            stored.append((yield StoreCall("insert_key_if_absent", (proposal,))))
        try:
            state = self.schedule.evaluate(stored, now)
        except LookupError as exc:
            if not isinstance(exc, KeyError):
                raise GeneralError("no stored signing key may sign yet (clock skew?)") from exc
            raise GeneralError("a stored signing key is corrupt") from exc
        except (ValueError, TypeError) as exc:
            raise GeneralError("a stored signing key is corrupt") from exc
        previous = self._keys
        self.access_codec.set_keys(state.verification_keys)
        self._keys = state
        if previous is not None and {k.kid for k in previous.verification_keys} - {
            k.kid for k in state.verification_keys
        }:
            self.cache.clear()
        if state.obsolete_names:
            yield StoreCall("delete_keys", (list(state.obsolete_names),))
        return state

    def claim_key_reload(self, kid: str) -> bool:
        """Whether this caller should reload keys for the unknown ``kid`` now.

        At most one reload per :data:`KEY_RELOAD_MIN_INTERVAL` seconds, so a flood of
        tokens with made-up ``kid`` values costs at most one store query per interval.
        """
        with self._reload_guard:
            if self.access_codec.has_kid(kid):
                return False
            now = time.monotonic()
            if now - self._last_reload < KEY_RELOAD_MIN_INTERVAL:
                return False
            self._last_reload = now
            return True

    def rotate_signing_key(self) -> Flow[str]:
        """Create a key that signs at once in this engine; return its ``kid``."""
        now = self.clock()
        key = generate_signing_key(self.schedule.alg, int(now))
        entry = StoredKey(self.schedule.manual_key_name(now), key.to_stored(), int(now * 1000))
        yield from self.sync_keys(now, extra=entry)
        return key.kid

    def jwks(self) -> Flow[dict[str, Any]]:
        """The public verification keys as an RFC 7517 key set (empty under HS256)."""
        state = yield from self.sync_keys(self.clock())
        keys = [jwk for key in state.verification_keys if (jwk := key.public_jwk()) is not None]
        return {"keys": keys}

    def signing_keys(self) -> Flow[list[KeyInfo]]:
        """The verification keys in force, oldest first, after a fresh key sync."""
        state = yield from self.sync_keys(self.clock())
        return [
            KeyInfo(key.kid, key.alg, key.not_before, key is state.signing_key)
            for key in state.verification_keys
        ]

    def _signing_key(self, now: float) -> Flow[SigningKey]:
        state = self._keys
        if state is None or now >= state.next_check:
            state = yield from self.sync_keys(now)
        return state.signing_key

    def _minting_key(self) -> Flow[tuple[SigningKey, float]]:
        """The signing key and the time to mint with: a clock read after every store call
        that precedes the minting, so a token never starts its life already aged by a wait."""
        key = yield from self._signing_key(self.clock())
        return key, self.clock()

    def check_payload_size(self, key: SigningKey, user_id: str, payload: dict[str, Any]) -> None:
        """Raise :class:`~sessionward.errors.PayloadTooLargeError` when ``payload`` would
        make the session's largest access cookie exceed the browser limit."""
        self.budget.check(self.access_codec.header_segment(key), key, user_id, payload)

    def _read_row(self, handle: str) -> Flow[SessionRow | None]:
        """The session's row; a row the store cannot decode ends the session with
        ``UnauthorizedError`` and a log line rather than failing every request."""
        try:
            row: SessionRow | None = yield StoreCall("get_session", (handle,))
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
                row.session_handle, exc.size, exc.limit,
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
            key, row.user_id, row.session_handle, refresh_hash1, parent_hash1,
            row.jwt_user_payload, now,
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
                self.refresh_codec.anti_csrf_token(refresh_hash1)
                if self.config.enable_anti_csrf
                else None
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
        """SPEC §6.1: a new handle, tokens and one inserted row."""
        user_id = check_user_id(user_id)
        payload = check_json_object("jwt_payload", jwt_payload)
        data = check_json_object("session_data", session_data)
        key = yield from self._signing_key(self.clock())
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
        yield StoreCall("insert_session", (row,))
        # Minted after the insert, which may have waited on a lock; the cookies still end
        # with the row.
        return self._session_tokens(key, row, refresh_token, None, self.clock(), deadline)

    # -- verify --------------------------------------------------------------------------

    def verify(
        self, access_token: str, anti_csrf_token: str | None, do_anti_csrf_check: bool
    ) -> VerifiedSession | Flow[VerifiedSession]:
        """SPEC §6.2. Returns the session directly when no store access is needed, else a
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
            self._stored_payload_fits((yield from self._signing_key(now_ms / 1000)), row)
            deadline = self._idle_deadline(row, now_ms)
            if (yield StoreCall("promote", (handle, expected, target, now_ms, deadline))):
                row = _promoted(row, target, now_ms, deadline)
            else:
                row = yield from self._read_row(handle)
        if row is None or row.user_id != claims.user_id:
            raise UnauthorizedError("the session no longer exists")
        if row.refresh_token_hash_2 != target:
            # The session moved on: this token is stale but genuinely signed; it stays
            # valid until it expires, and no replacement is minted.
            return VerifiedSession(handle, claims.user_id, claims.user_data)
        key, now = yield from self._minting_key()
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
        key, now = yield from self._minting_key()
        if now >= claims.expires_at + self.leeway:
            return None  # expired while the keys were being loaded
        self.check_payload_size(key, claims.user_id, payload)
        token = self._access_token(
            key, claims.user_id, claims.session_handle, claims.refresh_token_hash1,
            claims.parent_refresh_token_hash1, payload, now, expires_at=claims.expires_at,
        )
        return VerifiedSession(
            claims.session_handle, claims.user_id, payload, token,
            front_token(claims.user_id, token.expires_at, payload),
        )

    # -- refresh -------------------------------------------------------------------------

    def refresh_session(self, refresh_token: str) -> Flow[SessionTokens]:
        """SPEC §6.3: rotation with idempotent successors, grace window and theft detection."""
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
                yield StoreCall("delete_sessions", ([handle],))
                raise TokenTheftDetectedError(handle, row.user_id)
            self._stored_payload_fits((yield from self._signing_key(now_ms / 1000)), row)
            if case is RefreshCase.PREDECESSOR_IN_GRACE:
                current = codec.child_of(refresh_token, content)
                if hash_hex(hash_hex(current)) != row.refresh_token_hash_2:
                    yield StoreCall("delete_sessions", ([handle],))
                    raise TokenTheftDetectedError(handle, row.user_id)
                key, now = yield from self._minting_key()
                # Already committed: its cookie must not outlive the row's deadline.
                return self._session_tokens(key, row, current, None, now, row.expires_at)
            refresh_expiry = None
            if case is RefreshCase.FIRST_USE_OF_CHILD:
                assert content.parent_hash1 is not None
                deadline = self._idle_deadline(row, now_ms)
                expected = hash_hex(content.parent_hash1)
                if not (yield StoreCall("promote", (handle, expected, hash2, now_ms, deadline))):
                    continue  # the row changed under us: decide again on a fresh read
                row = _promoted(row, hash2, now_ms, deadline)
                refresh_expiry = deadline
            key, now = yield from self._minting_key()
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
            row.session_handle, row.user_id, row.session_data, row.jwt_user_payload,
            row.created_at_time, row.expires_at,
        )

    def revoke(self, handles: list[str]) -> Flow[list[str]]:
        if isinstance(handles, str) or not all(isinstance(h, str) for h in handles):
            raise GeneralError("handles: expected a list of session handles (strings)")
        removed: list[str] = yield StoreCall("delete_sessions", (list(handles),))
        return removed

    def revoke_user(self, user_id: str) -> Flow[list[str]]:
        removed: list[str] = yield StoreCall("delete_sessions_for_user", (user_id,))
        return removed

    def handles_for_user(self, user_id: str) -> Flow[list[str]]:
        handles: list[str] = yield StoreCall(
            "get_handles_for_user", (user_id, int(self.clock() * 1000))
        )
        return handles

    def delete_expired(self) -> Flow[int]:
        count: int = yield StoreCall("delete_expired_sessions", (int(self.clock() * 1000),))
        return count

    def update_session_data(self, handle: str, data: Any) -> Flow[None]:
        checked = _checked_update("session_data", data)
        yield from self.live_row(handle)
        if not (yield StoreCall("update_session_data", (handle, checked))):
            raise UnauthorizedError("the session does not exist")

    def update_jwt_payload(self, handle: str, payload: Any) -> Flow[None]:
        """Check the payload against the session's size budget, then write it."""
        checked = _checked_update("jwt_payload", payload)
        row = yield from self.live_row(handle)
        self.check_payload_size((yield from self._signing_key(self.clock())), row.user_id, checked)
        if not (yield StoreCall("update_jwt_payload", (handle, checked))):
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

