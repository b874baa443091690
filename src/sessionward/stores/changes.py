"""The change feed of a store: what changed, in order, and a listener that follows it.

Every SQL store keeps a ``change_log`` table filled by triggers (see the migration
``0003_change_log``): one :class:`Change` per revoked session (a row deleted before its
expiry), per JWT payload update and per signing key added, updated or removed, with a
sequence number ``seq`` that only grows. A store that offers the feed implements
:class:`ChangeFeed` (sync) or :class:`AsyncChangeFeed` (async) next to its ``Store``
operations.

A :class:`ChangeListener` follows the feed from a background daemon thread of its own, on a
dedicated connection, and hands each batch of new changes, in ``seq`` order, to a callback.
It keeps the last ``seq`` it delivered and, after losing its connection, reconnects with
backoff and reads everything after that ``seq``: no change is lost or delivered twice
while the log still holds it (see ``prune_changes``). One thread serves sync and async
engines alike: the callback runs on the listener's thread, so it must be thread-safe and
quick (an async user hops to its loop with ``loop.call_soon_threadsafe``).

A listener stops for good, with one ERROR log naming the cause, on a failure that no
reconnection can mend: the store that made it was closed by its owner, or the store's
schema is gone after the listener had caught up once (see each listener's
``_permanent``; before that, the store may just not be migrated yet, and the listener
retries). ``state().stopped`` then tells why.

A listener belongs to the process that started it: a forked child never inherits the
thread, and the child's copy of the listener is stopped (``running`` is false; its
connection is dropped without being closed, so the parent's is untouched); calling
``start`` in the child starts it anew, from the ``seq`` it had reached at the fork.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, Self, TypeVar, runtime_checkable

__all__ = [
    "CHANGE_KINDS",
    "AsyncChangeFeed",
    "Change",
    "ChangeCallback",
    "ChangeFeed",
    "ChangeKind",
    "ChangeListener",
    "ConnectionListener",
    "ListenerState",
    "PermanentFeedError",
    "StatusCallback",
]

logger = logging.getLogger("sessionward.stores.changes")
# The reconnection jitter's own generator: listener threads never touch the random
# module's shared state (which other code, such as property-based tests, may own).
_JITTER = random.Random()  # noqa: S311 - jitter, not secrets

ChangeKind = Literal["revoked", "payload", "key_added", "key_updated", "key_removed"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("revoked", "payload", "key_added", "key_updated", "key_removed")
"""Every kind of :class:`Change`: ``revoked`` and ``payload`` name a session handle, the
``key_*`` kinds a signing key's ``key_value`` name."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log.

    ``seq``: its position (grows strictly; values may be skipped). ``kind``: one of
    :data:`CHANGE_KINDS`. ``subject``: the session handle (``revoked``, ``payload``) or the
    signing key's entry name (``key_added``, ``key_updated``, ``key_removed``). ``at``: when
    it was written, in ms since the epoch by the store's clock.
    """

    seq: int
    kind: str
    subject: str
    at: int


ChangeCallback = Callable[[list[Change]], None]
"""Receives each batch of new changes, in ``seq`` order, on the listener's thread."""

StatusCallback = Callable[[bool], None]
"""Told, on the listener's thread, ``True`` after every successful read while connected and
caught up (what the listener knows then dates from when that read was asked: see
``ListenerState.lag_ms``), and ``False`` when the connection is lost, the listener stops,
or the process forks."""


@runtime_checkable
class ChangeFeed(Protocol):
    """The change-feed operations of a synchronous store (``isinstance(store, ChangeFeed)``
    tells whether a store offers them)."""

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
        ...

    def last_change_seq(self) -> int:
        """The highest ``seq`` written so far (0 before the first change)."""
        ...

    def prune_changes(self, before_ms: int) -> int:
        """Delete changes written before ``before_ms`` (ms since the epoch); return how many."""
        ...

    def change_listener(self, callback: ChangeCallback, since: int | None = None) -> ChangeListener:
        """A started :class:`ChangeListener` delivering changes after ``since`` (``None``:
        after the last change at the time it first connects)."""
        ...


@runtime_checkable
class AsyncChangeFeed(Protocol):
    """The change-feed operations of an async store (the listener is the same thread)."""

    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]: ...
    async def last_change_seq(self) -> int: ...
    async def prune_changes(self, before_ms: int) -> int: ...
    def change_listener(self, callback: ChangeCallback, since: int | None = None) -> ChangeListener: ...


STORE_CLOSED = "the store was closed by its owner"


class PermanentFeedError(Exception):
    """A failure of a listener that no reconnection can mend (its message is the cause):
    the listener stops for good."""


@dataclass(frozen=True, slots=True)
class ListenerState:
    """A snapshot of a :class:`ChangeListener`.

    ``connected``: whether its connection is up (and its first catch-up read done).
    ``last_seq``: the highest ``seq`` delivered (or the starting point). ``lag_ms``: the age
    of what the listener knows of the log, in ms since its last successful read was *asked*
    (an answer held up on the way is no fresher than its question; ``None`` before the
    first read): while connected it stays below the listener's heartbeat or poll interval.
    ``disconnects``: how many times the connection was lost or could not be made.
    ``running``: whether the thread runs in this process. ``stopped``: why the listener
    stopped for good (a failure no reconnection can mend), ``None`` otherwise.
    """

    connected: bool
    last_seq: int
    lag_ms: float | None
    disconnects: int
    running: bool
    stopped: str | None = None


# Listeners started in this process, made inert in a forked child.
_LISTENERS: weakref.WeakSet[ChangeListener] = weakref.WeakSet()
# Connections of a forked parent: kept referenced so that no finaliser closes them in the
# child (closing a PostgreSQL connection sends the server a farewell on the parent's socket).
ABANDONED: list[object] = []


def _forget_in_child() -> None:
    for listener in list(_LISTENERS):
        listener._forked()


os.register_at_fork(after_in_child=_forget_in_child)


class ChangeListener(ABC):
    """Follows one store's change log from a background daemon thread.

    Subclasses provide the connection: :meth:`_connect` opens it and :meth:`_wait` blocks
    until changes may be there (a notification, a poll that sees a write, or the
    heartbeat). The loop here does the rest: catch up from :attr:`last_seq` on every
    (re)connection, deliver batches in ``seq`` order, exactly once, reconnect with
    exponential backoff (``min_backoff`` to ``max_backoff`` seconds, with jitter).

    A callback that raises is logged and its batch counts as delivered: one bad consumer
    must not stall the feed. Use as a context manager or call :meth:`close`.

    :attr:`on_status` (a :data:`StatusCallback`, default ``None``) lets a consumer keep its
    own freshness mark, so that it never has to read the listener's clock: it must be quick
    and must not raise.

    ``store_closed`` (a callable, default ``None``) tells whether the store that made the
    listener was closed: the listener then stops for good (checked at every wake-up).
    """

    batch_size = 1000

    def __init__(
        self,
        callback: ChangeCallback,
        since: int | None = None,
        *,
        name: str = "sessionward-changes",
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
        store_closed: Callable[[], bool] | None = None,
    ) -> None:
        self.callback = callback
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._since = since
        self._last_seq = 0 if since is None else since
        # The last change delivered: a log that lost data may hold another change at its seq.
        self._last_change: Change | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._last_contact: float | None = None
        self._disconnects = 0
        self._pid = os.getpid()
        self._name = name
        self._thread: threading.Thread | None = None
        self._closed = False
        self._store_closed = store_closed
        self._stopped: str | None = None
        self._caught_up_once = False
        self.on_status: StatusCallback | None = None

    # -- public --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the thread (once); return the listener."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the change listener is closed")
            if self._thread is None:
                _LISTENERS.add(self)
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the listener's thread runs in this process."""
        thread = self._thread
        return thread is not None and os.getpid() == self._pid and thread.is_alive()

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` delivered so far (or the starting point)."""
        return self._last_seq

    def state(self) -> ListenerState:
        """A snapshot of the connection and progress (see :class:`ListenerState`)."""
        contact = self._last_contact
        lag = None if contact is None else (time.monotonic() - contact) * 1000
        return ListenerState(
            connected=self._connected.is_set() and self.running,
            last_seq=self._last_seq,
            lag_ms=lag,
            disconnects=self._disconnects,
            running=self.running,
            stopped=self._stopped,
        )

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected and caught up; return whether that happened in time."""
        return self._connected.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the connection; wait up to ``timeout`` seconds."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None and os.getpid() == self._pid and thread is not threading.current_thread():
            thread.join(timeout)
        _LISTENERS.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for subclasses ------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> None:
        """Open the dedicated connection (and subscribe to notifications)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the dedicated connection, ignoring errors."""

    @abstractmethod
    def _read(self, seq: int, limit: int) -> list[Change]:
        """``changes_since(seq, limit)`` on the dedicated connection."""

    @abstractmethod
    def _latest(self) -> int:
        """``last_change_seq()`` on the dedicated connection."""

    @abstractmethod
    def _wait(self) -> bool:
        """Block until changes may be there (``True``) or a heartbeat is due (``False``);
        raise on a lost connection. Return early once :meth:`close` was called. A wait
        that tells the log had nothing new (an empty poll) may record it with
        :meth:`_contact`; a notification must not (it may have been held up on the way:
        the catch-up read that follows dates what the listener knows)."""

    @abstractmethod
    def _abandon(self) -> None:
        """In a forked child: drop the connection without closing it (see ``ABANDONED``)."""

    def _contact(self, asked: float) -> None:
        """Record a successful read (for ``lag_ms`` and liveness) and tell
        :attr:`on_status`: ``asked`` is the ``time.monotonic()`` the log is known as of —
        when the read was *sent*, not when its answer came: an answer held up by a quiet
        network tells nothing about the time since it was asked, and must not make the feed
        look fresh."""
        if self._last_contact is None or asked > self._last_contact:
            self._last_contact = asked
        self._report_contact()

    def _permanent(self, exc: Exception) -> str | None:
        """Why ``exc`` can never be mended by reconnecting (the listener then stops for
        good), or ``None`` for a failure worth retrying. Subclasses name their store's."""
        return None

    def _check_store(self) -> None:
        """Raise :class:`PermanentFeedError` once the store that made the listener is
        closed (called at every wake-up)."""
        if self._store_is_closed():
            raise PermanentFeedError(STORE_CLOSED)

    def _store_is_closed(self) -> bool:
        store_closed = self._store_closed
        return store_closed is not None and store_closed()

    def _report_contact(self) -> None:
        """Tell :attr:`on_status` of the last contact, once connected and caught up."""
        on_status = self.on_status
        if on_status is not None and self._connected.is_set():
            on_status(True)

    def _lost(self) -> None:
        """The connection is down (or the listener stops): tell :attr:`on_status`."""
        self._connected.clear()
        on_status = self.on_status
        if on_status is not None:
            on_status(False)

    def _check_log(self) -> bool:
        """Whether the log went back behind :attr:`last_seq` (a store that lost data hands
        out the same ``seq`` values again); if so, call :meth:`_log_went_back`. Run on every
        (re)connection before the catch-up. The default: logs never go back."""
        return False

    def _log_went_back(self, reason: str) -> None:
        """The log lost changes this listener had delivered, and its ``seq`` values are (or
        will be) given to new changes: deliver everything it holds again, from the start.
        Consumers see some changes twice; none is skipped."""
        logger.warning(
            "change feed: the change log went back (%s); every change it holds is delivered again",
            reason,
        )
        self._last_seq = 0
        self._last_change = None

    # -- the loop ------------------------------------------------------------------------

    def _forked(self) -> None:
        """In a forked child: the thread does not exist here and the connection is the
        parent's. Drop both (without closing the connection) and fresh locks: the copy is
        stopped, and :meth:`start` in the child starts it anew from :attr:`last_seq`."""
        self._abandon()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = None
        self._pid = os.getpid()
        self._last_contact = None
        self._stopped = None
        self._lost()

    def _main(self) -> None:
        backoff = self.min_backoff
        while not self._stop.is_set():
            try:
                self._check_store()
                self._connect()
                if self._stop.is_set():
                    break
                if self._since is None:
                    self._last_seq = self._latest()
                    self._since = self._last_seq
                else:
                    self._check_log()
                self._catch_up()
                self._connected.set()
                self._caught_up_once = True
                self._report_contact()
                backoff = self.min_backoff
                while not self._stop.is_set():
                    self._wait()
                    if self._stop.is_set():
                        break
                    self._check_store()
                    self._catch_up()
            except Exception as exc:  # any failure of the connection: reconnect
                if self._stop.is_set():
                    break
                cause = self._stop_cause(exc)
                if cause is not None:
                    self._connected.clear()  # before ``stopped`` is seen: never both
                    self._stopped = cause
                    detail = "" if str(exc) == cause else f" ({type(exc).__name__}: {exc})"
                    logger.error("change feed stopped for good: %s%s", cause, detail)
                    break
                self._disconnects += 1
                self._lost()
                logger.warning("change feed connection lost (%s: %s); reconnecting", type(exc).__name__, exc)
                self._disconnect()
                delay = backoff * (0.5 + _JITTER.random() / 2)
                backoff = min(self.max_backoff, backoff * 2)
                if self._stop.wait(delay):
                    break
        self._lost()
        self._disconnect()

    def _stop_cause(self, exc: Exception) -> str | None:
        if self._store_is_closed():
            return STORE_CLOSED  # whatever the failure it caused
        if not self._caught_up_once:
            return None  # the schema may not be migrated yet
        if isinstance(exc, PermanentFeedError):
            return str(exc)
        return self._permanent(exc)

    def _catch_up(self) -> None:
        """Deliver every change after :attr:`last_seq`, in batches."""
        while not self._stop.is_set():
            asked = time.monotonic()
            batch = self._read(self._last_seq, self.batch_size)
            self._contact(asked)
            fresh = [change for change in batch if change.seq > self._last_seq]
            if fresh:
                try:
                    self.callback(fresh)
                except Exception:
                    logger.exception("a change feed callback raised; its batch is skipped")
                self._last_seq = fresh[-1].seq
                self._last_change = fresh[-1]
            if len(batch) < self.batch_size:
                return


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class ConnectionListener(ChangeListener, Generic[C]):
    """A :class:`ChangeListener` on one dedicated connection of type ``C``, kept in
    ``_connection``: closing it, dropping it in a forked child and checking that it is
    there are the same for every store. Subclasses set :attr:`close_errors` and
    :attr:`not_connected`, and reset what else belongs to the connection in
    :meth:`_forget`."""

    #: What closing the connection may raise (ignored: the connection is gone either way).
    close_errors: tuple[type[Exception], ...] = ()
    #: What :meth:`_live` raises while there is no connection.
    not_connected: type[Exception] = ConnectionError
    _connection: C | None = None

    def _forget(self) -> None:
        """Drop what belongs to the connection besides itself (server-side ids)."""

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._forget()
        if connection is not None:
            with contextlib.suppress(*self.close_errors):
                connection.close()

    def _abandon(self) -> None:
        if self._connection is not None:
            ABANDONED.append(self._connection)
        self._connection = None
        self._forget()

    def _live(self) -> C:
        """The connection; :attr:`not_connected` when there is none."""
        connection = self._connection
        if connection is None:
            raise self.not_connected("the change listener is not connected")
        return connection
