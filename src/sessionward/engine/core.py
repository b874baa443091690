"""The session engine's state and its decisions with no I/O: start-up, create and verify.

Theory of operation. Every operation that may touch the store is a *flow*
(:mod:`sessionward.engine.flow`): a generator that yields store calls and receives each
call's result. The flow decides; a driver performs. ``SessionWard`` drives
flows with a synchronous store and ``AsyncSessionWard`` with an async one, so the
decision code exists once (the pattern of httpx's auth flows). Verifying an access token
without a parent claim needs no store at all and returns directly: that is the hot path.

:class:`SessionCore` holds what the flows share (configuration, clock, codecs, keys,
cache, size budget, token minter) and the flows of start-up, create and verify. The other
flows take it as their first argument: refresh and promotion in
:mod:`sessionward.engine.rotation`, the management calls in
:mod:`sessionward.engine.management`.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

from ..config import Config, resolve_subscribers
from ..errors import (
    GeneralError,
    ReauthenticationRequiredError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from ..events import EventBus
from ..stores.base import SessionRow, Store, StoredKey
from ..stores.changes import ChangeFeed
from ..tokens.access import MAX_ACCESS_TOKEN_LENGTH, AccessTokenCodec, InvalidAccessToken, UnknownKeyId
from ..tokens.encoding import b64url_decode, b64url_encode, dumps_compact
from ..tokens.encoding import sha256_hex as hash_hex
from ..tokens.keys import SigningKey
from ..tokens.refresh import ID_REFRESH_BYTES, MASTER_SECRET_BYTES, ROOT_LINK_BYTES, RefreshTokenCodec
from .budget import PayloadBudget
from .cache import VerifiedTokenCache
from .decisions import SKEW_ALLOWANCE, row_alive
from .feed import REPLAY_MARGIN, FeedState, PayloadChange, replay_from
from .flow import Flow, call
from .keys import KeyManager
from .minting import TokenMinter
from .rotation import promote
from .rows import read_row
from .types import ChangeFeedState, ClientInfo, SessionTokens, VerifiedSession
from .validation import check_client, check_json_object, check_lifetime, check_user_id

__all__ = ["SessionCore"]

REFRESH_KEY_NAME = "refresh_token_key"
# The random bytes of a new session: handle (16), root refresh token link, idRefresh token.
_ID_REFRESH_AT = 16 + ROOT_LINK_BYTES
_CREATE_RANDOM_BYTES = _ID_REFRESH_AT + ID_REFRESH_BYTES
PAYLOAD_CHANGED = "the session's JWT payload has changed: refresh"
REVOKED_OR_EXPIRED = "the session has been revoked or has expired"


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
        self.minter = TokenMinter(config, self.access_codec)
        # Strings of Config.event_subscribers are imported here: an engine that cannot
        # deliver its events fails at construction (ConfigError naming the option).
        self.events = EventBus(resolve_subscribers(config))
        # Copied out of the config: read on every verification.
        self.anti_csrf = config.enable_anti_csrf
        self.blacklisting = config.access_token_blacklisting
        self.leeway = config.clock_skew_leeway
        self.feed = FeedState(config, clock, self.keys, self.cache)
        #: The feed verification consults: ``None`` while it is off (``change_feed=False``,
        #: a store without a feed) or before start-up; from start-up on, verification
        #: reads the row whenever its listener is not live (not started yet included).
        self.feeding: FeedState | None = None
        # A payload change more than this many ms after a token's iat (whole seconds)
        # certainly postdates the token; closer, the row tells (clocks differ).
        self.payload_margin_ms = (1 + config.clock_skew_leeway + SKEW_ALLOWANCE) * 1000
        self.ready = False

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
            self.minter.codec = RefreshTokenCodec(b64url_decode(stored.value))
        except ValueError as exc:
            raise GeneralError(f"the stored {REFRESH_KEY_NAME} is corrupt") from exc
        feed = self.feed
        last = None
        if feed.enabled and feed.start_seq is None:
            # Read before the keys: a key change up to ``last`` is in the keys loaded next,
            # a later one is delivered by the listener.
            last = yield from call(ChangeFeed.last_change_seq)  # type: ignore[arg-type]
        yield from self.keys.sync(self.clock())
        if last is not None:
            # The changes that may still concern a valid access token are replayed: a
            # process started after a revocation must refuse the session as the others do.
            window = self.config.access_token_validity + self.leeway + REPLAY_MARGIN
            feed.start_seq = yield from replay_from(last, int((self.clock() - window) * 1000))
            feed.replay_until = last
        if feed.enabled:
            # Before ``ready``: a verification on another thread must not find the engine
            # ready and the feed not consulted yet (it reads the row until the listener is live).
            self.feeding = feed
            # Tokens cached before the feed was consulted were never checked against it.
            self.cache.clear()
        self.ready = True

    def start_feed(self) -> None:
        """After start-up: start following the store's change feed (when on and offered)
        and wait up to ``change_feed_max_lag`` for it to connect (blocking: an async
        driver calls this in a worker thread). Until it is live, verification reads the
        store."""
        feed = self.feeding
        if feed is not None and feed.listener is None:
            feed.start()
            listener = feed.listener
            if listener is not None:
                listener.wait_connected(feed.max_lag)

    def close_feed(self) -> None:
        """Stop the change feed's listener; verification reads the store from now on."""
        self.feed.close()

    def change_feed_state(self) -> ChangeFeedState:
        """See :meth:`sessionward.SessionWard.change_feed_state`."""
        return self.feed.state()

    @property
    def refresh_codec(self) -> RefreshTokenCodec:
        """The refresh-token codec; ``GeneralError`` before start-up."""
        return self.minter.refresh_codec

    def check_payload_size(self, key: SigningKey, user_id: str, payload: dict[str, Any]) -> None:
        """Raise :class:`~sessionward.errors.PayloadTooLargeError` when ``payload`` would
        make the session's largest access cookie exceed the browser limit."""
        self.budget.check(self.access_codec.header_segment(key), key, user_id, payload)

    # -- create --------------------------------------------------------------------------

    def create_new_session(
        self,
        user_id: str,
        jwt_payload: dict[str, Any] | None,
        session_data: dict[str, Any] | None,
        persistent: bool = True,
        refresh_token_validity: int | None = None,
        client: ClientInfo | None = None,
    ) -> Flow[SessionTokens]:
        """A new handle, tokens and one inserted row (a login always creates a session).

        ``refresh_token_validity`` (seconds) may only shorten the configured idle lifetime;
        ``persistent=False`` caps it at ``non_persistent_refresh_token_validity``. The
        session keeps that lifetime (``refresh_validity`` of its row) across rotations.
        """
        user_id = check_user_id(user_id)
        payload = check_json_object("jwt_payload", jwt_payload)
        data = check_json_object("session_data", session_data)
        config = self.config
        own_validity = check_lifetime(config, persistent, refresh_token_validity)
        ip, user_agent = check_client(client)
        state = self.keys.state
        if state is not None and self.clock() < state.next_check:
            key = state.signing_key  # the usual case, without a flow (as keys.signing_key)
        else:
            key = yield from self.keys.signing_key(self.clock())
        # Serialised once: for the size budget, the row and the tokens.
        payload_json = dumps_compact(payload)
        self.budget.check_json(self.access_codec.header_segment(key), key, user_id, payload_json)
        # Every random value of the session in one read of the system's CSPRNG (what
        # ``secrets`` reads too): the handle, the refresh token's link, the idRefresh token.
        random = os.urandom(_CREATE_RANDOM_BYTES)
        handle, handle_bytes = new_handle(random[:16])
        refresh_token = self.refresh_codec.new_root(handle, user_id, handle_bytes, random[16:_ID_REFRESH_AT])
        refresh_hash1 = hash_hex(refresh_token)
        now_ms = int(self.clock() * 1000)
        validity_ms = (config.refresh_token_validity if own_validity is None else own_validity) * 1000
        deadline = now_ms + validity_ms
        if config.session_max_lifetime is not None:
            deadline = min(deadline, now_ms + config.session_max_lifetime * 1000)
        row = SessionRow(
            handle,
            user_id,
            hash_hex(refresh_hash1),
            None,
            None,
            data,
            payload,
            now_ms,
            deadline,
            "{}" if not data else dumps_compact(data),
            payload_json,
            now_ms,
            now_ms,
            persistent,
            None if own_validity is None else validity_ms,
            ip,
            user_agent,
        )
        yield from call(Store.insert_session, row)
        self.events.emit_created(handle, user_id, now_ms, persistent, ip, user_agent)
        # Minted after the insert, which may have waited on a lock; the cookies still end
        # with the row.
        return self.minter.session_tokens(
            key, row, refresh_token, None, self.clock(), deadline, refresh_hash1, random[_ID_REFRESH_AT:]
        )

    # -- verify --------------------------------------------------------------------------

    def verify(
        self,
        access_token: str,
        anti_csrf_token: str | None,
        do_anti_csrf_check: bool,
        client: Callable[[], ClientInfo] | None,
    ) -> VerifiedSession | Flow[VerifiedSession]:
        """Verify an access token. Returns the session directly when no store access is needed, else a
        flow. Raises ``UnknownKeyId`` for the driver to reload keys. ``client`` is called
        only when the verification writes to the store (a promotion)."""
        if type(access_token) is not str or len(access_token) > MAX_ACCESS_TOKEN_LENGTH:
            # Before the cache lookup: an unhashable value would raise TypeError, and a
            # huge one would be hashed for nothing.
            raise TryRefreshTokenError("invalid access token: not a string of acceptable length")
        now = self.clock()
        # The dict read here is the one this token goes into below: if the keys change
        # meanwhile (a key dropped empties the cache after replacing the codec's keys), the
        # entry lands in the discarded dict.
        entries = self.cache.entries
        entry = entries.get(access_token)
        check_csrf = do_anti_csrf_check and self.anti_csrf
        if entry is not None and now < entry[1]:
            if check_csrf:
                _check_anti_csrf(entry[2], anti_csrf_token)
            if self.blacklisting:
                return self._require_row(entry[0])
            feed = self.feeding
            if feed is None:
                return entry[0]
            # A cached token while the feed is fresh by the clock read above: the feed
            # evicts the entries of every session it flags, so there is nothing to look up.
            if feed.fresh_from <= now < feed.fresh_until:
                return entry[0]
            return self._check_feed(access_token, entry[0], entry[3], now)
        try:
            claims = self.access_codec.decode(access_token, now)
        except InvalidAccessToken as exc:
            if type(exc) is not InvalidAccessToken:
                raise  # UnknownKeyId: the driver reloads keys and retries once
            raise TryRefreshTokenError(f"invalid access token: {exc}") from None
        if check_csrf:
            _check_anti_csrf(claims.anti_csrf_token, anti_csrf_token)
        if claims.parent_refresh_token_hash1 is not None:
            return promote(self, claims, client)
        auth_time = claims.auth_time
        session = VerifiedSession(
            claims.session_handle,
            claims.user_id,
            claims.user_data,
            None,
            None,
            0 if auth_time is None else auth_time * 1000,
        )
        issued_at_ms = claims.issued_at * 1000
        if self.cache.capacity:
            self.cache.put(
                access_token,
                session,
                claims.expires_at + self.leeway,
                claims.anti_csrf_token,
                issued_at_ms,
                into=entries,
            )
        if self.blacklisting:
            return self._require_row(session)
        feed = self.feeding
        if feed is None or (feed.fresh_from <= now < feed.fresh_until and session.handle not in feed.flagged):
            return session
        return self._check_feed(access_token, session, issued_at_ms, now)

    def _check_feed(
        self, access_token: str, session: VerifiedSession, issued_at_ms: int, now: float
    ) -> VerifiedSession | Flow[VerifiedSession]:
        """The change feed's checks of a verified token (already in the cache): revoked
        session → ``UnauthorizedError``; JWT payload changed after the token was issued →
        ``TryRefreshTokenError``. While the feed is not live, the row tells instead.

        A refused token leaves the cache. Together with the feed's eviction of flagged
        sessions (flag first, then evict) this keeps the invariant the cached path relies
        on: every entry was checked against every flag set before it was cached, or was
        cached before the eviction that followed the flag."""
        feed = self.feeding
        assert feed is not None
        # Fresh by the engine's clock: live. Otherwise FeedState.live() decides on the
        # monotonic clock (and logs the transitions).
        if not feed.fresh_from <= now < feed.fresh_until and not feed.live():
            feed.restart_if_forked()
            return self._require_current_row(access_token, session)
        handle = session.handle
        if handle not in feed.flagged:
            return session
        if handle in feed.revoked:
            raise self._refuse(access_token, UnauthorizedError("the session has been revoked"))
        change = feed.payload_changed.get(handle)
        if change is None or change.at_ms <= issued_at_ms:
            return session
        if change.at_ms > issued_at_ms + self.payload_margin_ms or change.verdicts.get(access_token) is False:
            raise self._refuse(access_token, TryRefreshTokenError(PAYLOAD_CHANGED))
        if change.verdicts.get(access_token):
            return session
        return self._confirm_payload(access_token, session, change)

    def _refuse(self, access_token: str, error: Exception) -> Exception:
        """Drop a refused token from the cache; return ``error`` for the caller to raise."""
        self.cache.entries.pop(access_token, None)
        return error

    def _require_current_row(self, access_token: str, session: VerifiedSession) -> Flow[VerifiedSession]:
        """The row check of a verification while the change feed is not live: the session
        must exist and be alive, and the token must carry its current JWT payload. The
        keys are re-read too, at most once per ``change_feed_max_lag`` (a key retired
        meanwhile), when the key manager offers it."""
        recheck = getattr(self.keys, "recheck", None)
        if recheck is not None:
            yield from recheck(self.feed.max_lag)
        row = yield from read_row(session.handle)
        if row is None or not row_alive(row, int(self.clock() * 1000), self.config):
            raise self._refuse(access_token, UnauthorizedError(REVOKED_OR_EXPIRED))
        if row.jwt_user_payload != session.jwt_payload:
            raise self._refuse(access_token, TryRefreshTokenError(PAYLOAD_CHANGED))
        return session

    def _confirm_payload(
        self, access_token: str, session: VerifiedSession, change: PayloadChange
    ) -> Flow[VerifiedSession]:
        """A token issued about when its session's payload changed: the row tells whether
        it carries the new payload (the verdict is remembered for this token)."""
        row = yield from read_row(session.handle)
        if row is None or not row_alive(row, int(self.clock() * 1000), self.config):
            raise self._refuse(access_token, UnauthorizedError(REVOKED_OR_EXPIRED))
        current = row.jwt_user_payload == session.jwt_payload
        change.verdicts[access_token] = current
        if not current:
            raise self._refuse(access_token, TryRefreshTokenError(PAYLOAD_CHANGED))
        return session

    def verify_again(
        self,
        access_token: str,
        anti_csrf_token: str | None,
        do_anti_csrf_check: bool,
        client: Callable[[], ClientInfo] | None,
    ) -> VerifiedSession | Flow[VerifiedSession]:
        """:meth:`verify` after ``keys.reload_for``: a ``kid`` still unknown is a token
        to refresh, never another reload."""
        try:
            return self.verify(access_token, anti_csrf_token, do_anti_csrf_check, client)
        except UnknownKeyId:
            raise TryRefreshTokenError("access token signed by an unknown key") from None

    def check_verified(
        self, session: VerifiedSession, check_database: bool, max_auth_age: int | None
    ) -> Flow[VerifiedSession]:
        """The optional checks of ``get_session`` on a session verified without the store:
        with ``check_database``, its row must exist and be alive (``UnauthorizedError``);
        then :meth:`check_auth_age`."""
        if max_auth_age is not None:
            _check_max_auth_age(max_auth_age)  # before any I/O
        if check_database:
            yield from self._require_row(session)
        if max_auth_age is not None:
            self.check_auth_age(session, max_auth_age)
        return session

    def check_auth_age(self, session: VerifiedSession, max_auth_age: int) -> None:
        """Raise :class:`~sessionward.errors.ReauthenticationRequiredError` when the user
        authenticated more than ``max_auth_age`` seconds ago, or at an unknown time."""
        _check_max_auth_age(max_auth_age)
        auth_time = session.auth_time
        if auth_time <= 0 or self.clock() * 1000 - auth_time > max_auth_age * 1000:
            raise ReauthenticationRequiredError(auth_time, max_auth_age)

    def _require_row(self, session: VerifiedSession) -> Flow[VerifiedSession]:
        row = yield from read_row(session.handle)
        if row is None or not row_alive(row, int(self.clock() * 1000), self.config):
            raise UnauthorizedError("the session has been revoked or has expired")
        return session


def new_handle(random: bytes | None = None) -> tuple[str, bytes]:
    """A new session handle: a random (version 4) UUID in its canonical text form, and its
    16 bytes (``random``: 16 bytes from ``os.urandom`` to build it from, default new ones).

    What ``uuid.uuid4()`` gives, built straight from the random bytes: the ``uuid.UUID``
    object (and parsing the text back for the refresh token) costs microseconds per login
    for nothing.
    """
    if random is None:
        random = os.urandom(16)
    elif len(random) != 16:
        raise ValueError("a session handle takes 16 random bytes")
    raw = bytearray(random)
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}", bytes(raw)


def _check_max_auth_age(max_auth_age: Any) -> None:
    if type(max_auth_age) is not int or max_auth_age < 0:
        raise GeneralError(f"max_auth_age: expected None or an integer >= 0 (seconds); got {max_auth_age!r}")


def _check_anti_csrf(expected: str | None, presented: str | None) -> None:
    if (
        expected is None
        or not isinstance(presented, str)
        or not hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))
    ):
        raise TryRefreshTokenError("anti-CSRF token missing or wrong")
