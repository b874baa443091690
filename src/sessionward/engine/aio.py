"""``AsyncSessionWard``: the engine driven from asyncio, never blocking the event loop."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from ..config import Config
from ..events import RevocationReason, SessionEvent
from ..stores.base import AsyncStore
from ..stores.urls import open_async_store
from ..tokens.access import UnknownKeyId
from . import management, rotation
from .core import SessionCore
from .flow import Flow, aperform
from .types import ChangeFeedState, ClientInfo, KeyInfo, SessionInformation, SessionTokens, VerifiedSession

__all__ = ["AsyncSessionWard"]

T = TypeVar("T")


class _LoopLocks:
    """One ``asyncio.Lock`` per event loop, so an engine may outlive a loop (tests, CLIs)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


class AsyncSessionWard:
    """The session engine for asyncio code; same methods as
    :class:`~sessionward.SessionWard`, as coroutines.

    Args:
        config: options (default ``Config()``).
        store: an async store object or URL; default ``config.store``. A store given as a
            URL is owned by the engine and closed by :meth:`aclose`.
        clock: the time source in seconds since the epoch (tests inject a fake clock).
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        store: AsyncStore | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else Config()
        target = self.config.store if store is None else store
        self._owns_store = isinstance(target, str)
        self.store: AsyncStore = open_async_store(target) if isinstance(target, str) else target
        self._core = SessionCore(self.config, clock)
        self._core.feed.attach(self.store)
        self._start_locks = _LoopLocks()
        self._reload_locks = _LoopLocks()

    async def _perform(self, flow: Flow[T]) -> T:
        return await aperform(self.store, flow)

    async def _drive(self, flow: Flow[T]) -> T:
        if not self._core.ready:
            await self._start()
        return await self._perform(flow)

    async def _start(self) -> None:
        async with self._start_locks.get():
            if not self._core.ready:
                await self._perform(self._core.startup())
                if self._core.feed.enabled:
                    await asyncio.to_thread(self._core.start_feed)

    async def create_new_session(
        self,
        user_id: str,
        jwt_payload: dict[str, Any] | None = None,
        session_data: dict[str, Any] | None = None,
        *,
        persistent: bool = True,
        refresh_token_validity: int | None = None,
        client: ClientInfo | None = None,
    ) -> SessionTokens:
        """See :meth:`sessionward.SessionWard.create_new_session`."""
        return await self._drive(
            self._core.create_new_session(
                user_id, jwt_payload, session_data, persistent, refresh_token_validity, client
            )
        )

    async def get_session(
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
        """See :meth:`sessionward.SessionWard.get_session`."""
        core = self._core
        if not core.ready:
            await self._start()
        try:
            outcome = core.verify(access_token, anti_csrf_token, do_anti_csrf_check, client)
        except UnknownKeyId as unknown:
            async with self._reload_locks.get():
                await self._perform(core.keys.reload_for(unknown.kid))
            outcome = core.verify_again(access_token, anti_csrf_token, do_anti_csrf_check, client)
        if type(outcome) is VerifiedSession:
            if max_auth_age is None and not check_database:
                return outcome
            return await self._perform(core.check_verified(outcome, check_database, max_auth_age))
        session: VerifiedSession = await self._perform(outcome)  # type: ignore[arg-type]
        if max_auth_age is not None:
            core.check_auth_age(session, max_auth_age)
        return session

    def get_session_nowait(
        self,
        access_token: str,
        anti_csrf_token: str | None = None,
        do_anti_csrf_check: bool = False,
        check_database: bool = False,
        max_auth_age: int | None = None,
        client: Callable[[], ClientInfo] | None = None,
    ) -> VerifiedSession | Awaitable[VerifiedSession]:
        """:meth:`get_session` without a coroutine when the answer needs no I/O (a cached
        token, or one verified by its signature alone): the session itself, else an
        awaitable of it. Errors found at once are raised at once."""
        core = self._core
        if not core.ready or check_database or max_auth_age is not None:
            return self.get_session(
                access_token, anti_csrf_token, do_anti_csrf_check, check_database, max_auth_age, client
            )
        try:
            outcome = core.verify(access_token, anti_csrf_token, do_anti_csrf_check, client)
        except UnknownKeyId:
            # get_session reloads the keys and verifies again (the kid is read before any
            # signature is checked: the first attempt cost little).
            return self.get_session(access_token, anti_csrf_token, do_anti_csrf_check, False, None, client)
        if type(outcome) is VerifiedSession:
            return outcome
        return self._perform(outcome)  # type: ignore[arg-type]

    async def refresh_session(
        self, refresh_token: str, anti_csrf_token: str | None = None, *, client: ClientInfo | None = None
    ) -> SessionTokens:
        """See :meth:`sessionward.SessionWard.refresh_session`."""
        return await self._drive(rotation.refresh_session(self._core, refresh_token, client))

    async def mark_reauthenticated(self, handle: str, access_token: str) -> VerifiedSession:
        """See :meth:`sessionward.SessionWard.mark_reauthenticated`."""
        return await self._drive(management.mark_reauthenticated(self._core, handle, access_token))

    def subscribe(self, callback: Callable[[SessionEvent], object]) -> Callable[[], None]:
        """See :meth:`sessionward.SessionWard.subscribe` (callbacks are plain functions,
        called on the event loop: hand slow work to a task or a queue)."""
        return self._core.events.subscribe(callback)

    async def revoke_session(self, handle: str, *, reason: RevocationReason = RevocationReason.USER) -> bool:
        """End one session; return whether it existed (see
        :meth:`sessionward.SessionWard.revoke_session` for ``reason``)."""
        return bool(await self._drive(management.revoke(self._core, [handle], reason)))

    async def revoke_multiple_sessions(
        self, handles: list[str], *, reason: RevocationReason = RevocationReason.USER
    ) -> list[str]:
        """End these sessions; return the handles that existed."""
        return await self._drive(management.revoke(self._core, handles, reason))

    async def revoke_all_sessions_for_user(
        self, user_id: str, *, reason: RevocationReason = RevocationReason.USER
    ) -> list[str]:
        """End every session of ``user_id``; return their handles."""
        return await self._drive(management.revoke_user(self._core, user_id, reason))

    async def revoke_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """See :meth:`sessionward.SessionWard.revoke_other_sessions`."""
        return await self._drive(management.revoke_others(self._core, user_id, keep))

    async def get_all_session_handles_for_user(self, user_id: str) -> list[str]:
        """Handles of ``user_id``'s live sessions, oldest first."""
        return await self._drive(management.handles_for_user(self._core, user_id))

    async def get_all_sessions_for_user(self, user_id: str) -> list[SessionInformation]:
        """See :meth:`sessionward.SessionWard.get_all_sessions_for_user`."""
        return await self._drive(management.sessions_for_user(self._core, user_id))

    async def get_session_data(self, handle: str) -> dict[str, Any]:
        """The private session data; ``UnauthorizedError`` if the session is gone."""
        return (await self._drive(management.live_row(self._core, handle))).session_data

    async def update_session_data(self, handle: str, data: dict[str, Any]) -> None:
        """Overwrite the private session data; ``UnauthorizedError`` if the session is gone."""
        await self._drive(management.update_session_data(self._core, handle, data))

    async def get_jwt_payload(self, handle: str) -> dict[str, Any]:
        """The JWT payload stored for the session."""
        return (await self._drive(management.live_row(self._core, handle))).jwt_user_payload

    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> None:
        """Overwrite the JWT payload; access tokens issued from now on carry it."""
        await self._drive(management.update_jwt_payload(self._core, handle, payload))

    async def regenerate_access_token(
        self, access_token: str, jwt_payload: dict[str, Any]
    ) -> VerifiedSession | None:
        """Re-sign a still-valid access token with a new JWT payload and the same expiry.

        Returns the new token in ``new_access_token`` (with its ``front_token``), or
        ``None`` when ``access_token`` is no longer valid. The stored payload is not
        changed: pair with :meth:`update_jwt_payload`.
        """
        return await self._drive(management.regenerate_access_token(self._core, access_token, jwt_payload))

    async def get_session_information(self, handle: str) -> SessionInformation:
        """Everything stored about a session; ``UnauthorizedError`` if it is gone."""
        return await self._drive(management.session_information(self._core, handle))

    async def rotate_signing_key(self) -> str:
        """Create a new signing key that signs at once here; return its ``kid``."""
        return await self._drive(self._core.keys.rotate())

    async def retire_signing_key(self, kid: str) -> None:
        """See :meth:`sessionward.SessionWard.retire_signing_key`."""
        await self._drive(self._core.keys.retire(kid))

    async def signing_keys(self) -> list[KeyInfo]:
        """The verification keys in force (kid, algorithm, not_before, whether it signs)."""
        return await self._drive(self._core.keys.signing_keys())

    async def jwks(self) -> dict[str, Any]:
        """The public verification keys (RFC 7517); ``{"keys": []}`` under HS256."""
        return await self._drive(self._core.keys.jwks())

    async def jwks_with_max_age(self) -> tuple[dict[str, Any], int]:
        """:meth:`jwks` and the seconds it may be cached (``Cache-Control: max-age``): up
        to the next scheduled key's publication, at most an hour; see docs/jwks.md."""
        return await self._drive(self._core.keys.jwks_with_max_age())

    def change_feed_state(self) -> ChangeFeedState:
        """See :meth:`sessionward.SessionWard.change_feed_state` (a plain method: no I/O)."""
        return self._core.change_feed_state()

    async def delete_expired_sessions(self) -> int:
        """Delete expired session rows; return how many."""
        return await self._drive(management.delete_expired(self._core))

    async def aclose(self) -> None:
        """Stop the change feed's listener and close the store if the engine opened it
        from a URL."""
        if self._core.feed.listener is not None:
            await asyncio.to_thread(self._core.close_feed)  # joins the listener's thread
        else:
            self._core.close_feed()
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> AsyncSessionWard:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
