"""``SessionWard``: the engine driven synchronously (threads welcome)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from ..config import Config
from ..events import RevocationReason, SessionEvent
from ..stores.base import Store
from ..stores.urls import open_store
from ..tokens.access import UnknownKeyId
from . import management, rotation
from .core import SessionCore
from .flow import Flow, perform
from .types import ChangeFeedState, ClientInfo, KeyInfo, SessionInformation, SessionTokens, VerifiedSession

__all__ = ["SessionWard"]

T = TypeVar("T")


class SessionWard:
    """The session engine for synchronous code.

    Args:
        config: options (default ``Config()``).
        store: a store object or URL; default ``config.store``. A store given as a URL is
            owned by the engine and closed by :meth:`close`.
        clock: the time source in seconds since the epoch (tests inject a fake clock).

    One instance is safe to share between threads. The store is migrated (or checked, with
    ``auto_migrate=False``) and keys are loaded on first use.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        store: Store | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else Config()
        target = self.config.store if store is None else store
        self._owns_store = isinstance(target, str)
        self.store: Store = open_store(target) if isinstance(target, str) else target
        self._core = SessionCore(self.config, clock)
        self._core.feed.attach(self.store)
        self._start_lock = threading.Lock()
        self._reload_lock = threading.Lock()

    # -- driving flows -------------------------------------------------------------------

    def _perform(self, flow: Flow[T]) -> T:
        return perform(self.store, flow)

    def _drive(self, flow: Flow[T]) -> T:
        if not self._core.ready:
            self._start()
        return self._perform(flow)

    def _start(self) -> None:
        with self._start_lock:
            if not self._core.ready:
                self._perform(self._core.startup())
                self._core.start_feed()

    # -- sessions ------------------------------------------------------------------------

    def create_new_session(
        self,
        user_id: str,
        jwt_payload: dict[str, Any] | None = None,
        session_data: dict[str, Any] | None = None,
        *,
        persistent: bool = True,
        refresh_token_validity: int | None = None,
        client: ClientInfo | None = None,
    ) -> SessionTokens:
        """Create a session (a login always creates a new one) and return the tokens to hand to the client.

        ``refresh_token_validity`` (seconds, 1 up to the configured value) shortens this
        session's idle lifetime; ``persistent=False`` caps it at
        ``non_persistent_refresh_token_validity`` and marks the session's cookies as
        browser-session cookies (``SessionTokens.persistent``). The session keeps its
        lifetime across rotations. ``client`` is recorded as the session's creator.
        """
        return self._drive(
            self._core.create_new_session(
                user_id, jwt_payload, session_data, persistent, refresh_token_validity, client
            )
        )

    def get_session(
        self,
        access_token: str,
        anti_csrf_token: str | None = None,
        do_anti_csrf_check: bool = False,
        # Not keyword-only, though always passed by name: keyword-only parameters make
        # every call of this hot method measurably slower (CPython does not specialise it).
        check_database: bool = False,
        max_auth_age: int | None = None,
        client: Callable[[], ClientInfo] | None = None,
    ) -> VerifiedSession:
        """Verify an access token.

        Raises ``TryRefreshTokenError`` for any problem with the token itself and
        ``UnauthorizedError`` when its session is gone (promotion, blacklisting,
        ``check_database``). ``check_database=True`` reads the session's row for this call.
        ``max_auth_age`` (seconds): a user who authenticated longer ago (or at an unknown
        time) gets ``ReauthenticationRequiredError``. ``client``, a zero-argument callable,
        is called only when this verification writes to the store (the first use of a
        refreshed access token), to record the client there.
        """
        core = self._core
        if not core.ready:
            self._start()
        try:
            outcome = core.verify(access_token, anti_csrf_token, do_anti_csrf_check, client)
        except UnknownKeyId as unknown:
            with self._reload_lock:
                self._perform(core.keys.reload_for(unknown.kid))
            outcome = core.verify_again(access_token, anti_csrf_token, do_anti_csrf_check, client)
        if type(outcome) is VerifiedSession:
            if max_auth_age is None and not check_database:
                return outcome
            return self._perform(core.check_verified(outcome, check_database, max_auth_age))
        # A flow read or wrote the row already (promotion, blacklisting).
        session: VerifiedSession = self._perform(outcome)  # type: ignore[arg-type]
        if max_auth_age is not None:
            core.check_auth_age(session, max_auth_age)
        return session

    def refresh_session(
        self, refresh_token: str, anti_csrf_token: str | None = None, *, client: ClientInfo | None = None
    ) -> SessionTokens:
        """Rotate tokens (see docs/design/decision-tables.md).

        ``anti_csrf_token`` is accepted for API compatibility and not checked: the refresh
        route must work for clients that never send it. ``client`` is recorded in the
        session's row when this refresh commits a rotation. Raises
        ``UnauthorizedError`` or ``TokenTheftDetectedError``.
        """
        return self._drive(rotation.refresh_session(self._core, refresh_token, client))

    def mark_reauthenticated(self, handle: str, access_token: str) -> VerifiedSession:
        """Record that the user of session ``handle`` has just proved who they are again
        (a password re-entered, a second factor): the session's ``auth_time`` becomes now.

        Returns a copy of ``access_token`` (the session's current one: same claims and
        expiry) carrying the new time, in ``new_access_token`` with its ``front_token``, to
        hand to the client. ``TryRefreshTokenError`` when ``access_token`` is not a valid
        access token of that session (nothing is written); ``UnauthorizedError`` when the
        session is gone.
        """
        return self._drive(management.mark_reauthenticated(self._core, handle, access_token))

    def subscribe(self, callback: Callable[[SessionEvent], object]) -> Callable[[], None]:
        """Call ``callback`` with every event of this engine (see docs/events.md) from now
        on; returns the function that unsubscribes it. Callbacks run after the store write
        succeeded, in the thread of the operation; an exception in one is logged on the
        ``sessionward.events`` logger and never raised."""
        return self._core.events.subscribe(callback)

    # -- management ----------------------------------------------------------------------

    def revoke_session(self, handle: str, *, reason: RevocationReason = RevocationReason.USER) -> bool:
        """End one session; return whether it existed. ``reason`` is reported in the
        ``SessionRevoked`` event (``RevocationReason.ADMIN`` for an administrator's action)."""
        return bool(self._drive(management.revoke(self._core, [handle], reason)))

    def revoke_multiple_sessions(
        self, handles: list[str], *, reason: RevocationReason = RevocationReason.USER
    ) -> list[str]:
        """End these sessions; return the handles that existed (``reason``: as
        :meth:`revoke_session`)."""
        return self._drive(management.revoke(self._core, handles, reason))

    def revoke_all_sessions_for_user(
        self, user_id: str, *, reason: RevocationReason = RevocationReason.USER
    ) -> list[str]:
        """End every session of ``user_id``; return their handles (``reason``: as
        :meth:`revoke_session`)."""
        return self._drive(management.revoke_user(self._core, user_id, reason))

    def revoke_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """End every session of ``user_id`` except ``keep`` (typically the current one:
        "sign out everywhere else"), atomically; return the handles ended."""
        return self._drive(management.revoke_others(self._core, user_id, keep))

    def get_all_session_handles_for_user(self, user_id: str) -> list[str]:
        """Handles of ``user_id``'s live sessions, oldest first."""
        return self._drive(management.handles_for_user(self._core, user_id))

    def get_all_sessions_for_user(self, user_id: str) -> list[SessionInformation]:
        """What is stored about each of ``user_id``'s live sessions (a "your devices"
        page): the most recently active first."""
        return self._drive(management.sessions_for_user(self._core, user_id))

    def get_session_data(self, handle: str) -> dict[str, Any]:
        """The private session data; ``UnauthorizedError`` if the session is gone."""
        return self._drive(management.live_row(self._core, handle)).session_data

    def update_session_data(self, handle: str, data: dict[str, Any]) -> None:
        """Overwrite the private session data; ``UnauthorizedError`` if the session is gone."""
        self._drive(management.update_session_data(self._core, handle, data))

    def get_jwt_payload(self, handle: str) -> dict[str, Any]:
        """The JWT payload stored for the session (used for the next access token)."""
        return self._drive(management.live_row(self._core, handle)).jwt_user_payload

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> None:
        """Overwrite the JWT payload; access tokens issued from now on carry it."""
        self._drive(management.update_jwt_payload(self._core, handle, payload))

    def regenerate_access_token(
        self, access_token: str, jwt_payload: dict[str, Any]
    ) -> VerifiedSession | None:
        """Re-sign a still-valid access token with a new JWT payload and the same expiry.

        Returns the new token in ``new_access_token`` (with its ``front_token``), or
        ``None`` when ``access_token`` is no longer valid. The stored payload is not
        changed: pair with :meth:`update_jwt_payload`.
        """
        return self._drive(management.regenerate_access_token(self._core, access_token, jwt_payload))

    def get_session_information(self, handle: str) -> SessionInformation:
        """Everything stored about a session; ``UnauthorizedError`` if it is gone."""
        return self._drive(management.session_information(self._core, handle))

    # -- keys and housekeeping -----------------------------------------------------------

    def rotate_signing_key(self) -> str:
        """Create a new signing key that signs at once here; return its ``kid``."""
        return self._drive(self._core.keys.rotate())

    def retire_signing_key(self, kid: str) -> None:
        """Withdraw the signing key ``kid`` for good: its tokens are refused from now on
        (``TryRefreshTokenError``: the client refreshes and gets a token signed by a live
        key), here at once and in other engines as soon as the change feed tells them.
        If it is the key signing now, a new key is created first. A retired ``kid`` is
        never used or accepted again. ``GeneralError`` naming ``kid`` when the store holds
        no key with that ``kid``; nothing happens if it is retired already. See
        docs/engine.md, "Retiring a key"."""
        self._drive(self._core.keys.retire(kid))

    def signing_keys(self) -> list[KeyInfo]:
        """The verification keys in force (kid, algorithm, not_before, whether it signs)."""
        return self._drive(self._core.keys.signing_keys())

    def jwks(self) -> dict[str, Any]:
        """The public verification keys (RFC 7517); ``{"keys": []}`` under HS256."""
        return self._drive(self._core.keys.jwks())

    def jwks_with_max_age(self) -> tuple[dict[str, Any], int]:
        """:meth:`jwks` and the seconds it may be cached (``Cache-Control: max-age``): up
        to the next scheduled key's publication, at most an hour; see docs/jwks.md."""
        return self._drive(self._core.keys.jwks_with_max_age())

    def change_feed_state(self) -> ChangeFeedState:
        """The change feed as this engine sees it (see docs/change-feed.md): whether it is
        on, connected and live (verification trusts it), the last change applied, the lag,
        the disconnections so far and how many revoked sessions are held in memory."""
        return self._core.change_feed_state()

    def delete_expired_sessions(self) -> int:
        """Delete expired session rows; return how many."""
        return self._drive(management.delete_expired(self._core))

    def close(self) -> None:
        """Stop the change feed's listener and close the store if the engine opened it
        from a URL."""
        self._core.close_feed()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> SessionWard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
