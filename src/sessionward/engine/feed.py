"""What one engine knows from its store's change feed, and whether it may trust it now.

:class:`FeedState` (owned by :class:`~sessionward.engine.core.SessionCore`) follows the
store's change log through the store's :class:`~sessionward.stores.changes.ChangeListener`
(a daemon thread) and keeps:

- ``revoked``: session handles revoked since start-up (or shortly before it: see below),
  each until every access token of that session that could still exist has expired (now +
  ``access_token_validity`` + ``clock_skew_leeway``);
- ``payload_changed``: session handles whose JWT payload changed, with the store's time of
  the change, for as long.

Verification trusts these only while the feed is *live*: the listener is connected, has
caught up, and what it knows of the log (its last successful read, counted from when it
was asked) is younger than ``change_feed_max_lag``. Otherwise the engine reads the
session's row instead (fail safe).

The hot path decides with what it already holds: the listener marks every contact in the
engine's clock (``fresh_from``, ``fresh_until = fresh_from + change_feed_max_lag``; both
reset when the connection is lost), so a cached token's verification compares the time
it has read anyway, and ``flagged`` holds every handle of ``revoked`` and
``payload_changed`` (one lookup). A clock that went back before the last contact fails
the comparison, and :meth:`FeedState.live` (on the monotonic clock) decides instead.

The listener starts when the engine has started up, from the ``seq`` :func:`replay_from`
finds then: the changes of the last ``access_token_validity`` + ``clock_skew_leeway`` (and
:data:`REPLAY_MARGIN`) are replayed, so an engine started after a revocation — a worker
process started or respawned later than the others — refuses the revoked session as they
do. It is restarted in a forked child on its first verification there, and stops in
``close()`` / ``aclose()`` — or, for an engine never closed, when the engine is
garbage-collected: the listener holds this state only weakly (its callbacks are weak
methods, :func:`weakly`), and a finaliser of the state stops it. Key changes are handed to the key manager's
``on_store_key_change`` when it has one (not the replayed ones: the keys loaded at start-up
already reflect them).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import Config
from ..stores.changes import AsyncChangeFeed, Change, ChangeFeed, ChangeListener
from .cache import VerifiedTokenCache
from .flow import Flow, call
from .types import ChangeFeedState

if TYPE_CHECKING:
    from .keys import KeyManager

__all__ = ["REPLAY_MARGIN", "FeedState", "PayloadChange", "feed_source", "replay_from", "weakly"]

logger = logging.getLogger("sessionward.engine")

#: Seconds between two prunings of the tracked handles (at most; done on the listener's thread).
PRUNE_INTERVAL = 5.0
#: Seconds replayed at start-up beyond the access tokens' lifetime: the store stamps each
#: change with its own clock, the engine judges with its own.
REPLAY_MARGIN = 60.0


class PayloadChange:
    """The latest JWT payload change of one session: ``at_ms`` (the store's time of the
    change), ``drop_at`` (engine clock, seconds: when no token that predates it can still be
    valid) and ``verdicts``: access tokens issued about when the change was made, whose
    payload was compared with the stored one (``True``: equal), so that each is read once."""

    __slots__ = ("at_ms", "drop_at", "verdicts")

    def __init__(self, at_ms: int, drop_at: float) -> None:
        self.at_ms = at_ms
        self.drop_at = drop_at
        self.verdicts: dict[str, bool] = {}


def replay_from(last: int, cutoff_ms: int) -> Flow[int]:
    """The ``seq`` a starting engine follows the feed from, given the log's last ``seq``:
    that of the newest change written before ``cutoff_ms`` (store clock, ms), so that every
    later change is replayed (0: the whole log is recent; ``last``: none is).

    A binary search over ``changes_since(seq, 1)``, each an indexed read of one change:
    about 2 + log2(length of the log) store calls, however long the log has grown
    unpruned. ``seq`` values may be skipped; ``at`` grows with ``seq`` (the log's writers
    are serialised), up to clock adjustments, which :data:`REPLAY_MARGIN` absorbs.
    """
    if last <= 0:
        return 0
    newest = yield from call(ChangeFeed.changes_since, last - 1, 1)  # type: ignore[arg-type]
    if not newest or newest[0].at < cutoff_ms:
        return last
    oldest = yield from call(ChangeFeed.changes_since, 0, 1)  # type: ignore[arg-type]
    if not oldest or oldest[0].at >= cutoff_ms:
        return 0
    # The change at ``low`` is old; every change after ``high`` is recent.
    low, high = oldest[0].seq, last - 1
    while low < high:
        middle = (low + high + 1) // 2
        found = yield from call(ChangeFeed.changes_since, middle - 1, 1)  # type: ignore[arg-type]
        if found and found[0].seq <= high and found[0].at < cutoff_ms:
            low = found[0].seq
        else:  # none between middle and high, or the first one is recent
            high = middle - 1
    return low


T = TypeVar("T")


def weakly(method: Callable[[T], None]) -> Callable[[T], None]:
    """``method`` (a bound method) called through a weak reference to its object: once the
    object is collected, calls do nothing. The listener's thread must not keep an engine
    alive."""
    reference = weakref.WeakMethod(method)

    def call(argument: T) -> None:
        target = reference()
        if target is not None:
            target(argument)

    return call


def _stop_listener(listener: ChangeListener) -> None:
    """The finaliser of a collected :class:`FeedState`: stop its listener without waiting
    (the collection may run on any thread, the listener's own included)."""
    listener.close(timeout=0)


def feed_source(store: object) -> Any | None:
    """The object whose ``change_listener`` follows ``store``'s change log, or ``None``
    when the store offers no change feed (a custom store without it, or a
    ``ThreadedAsyncStore`` around such a store)."""
    inner = getattr(store, "sync_store", None)
    if inner is not None and not isinstance(inner, ChangeFeed):
        return None
    if isinstance(store, (ChangeFeed, AsyncChangeFeed)):
        return store
    return None


class FeedState:
    """The engine's view of the change feed (see the module docstring).

    Readers (verification) never lock: they look up ``flagged``, ``revoked`` and
    ``payload_changed``, which are only mutated under ``_lock`` and replaced wholesale when
    pruned.
    """

    def __init__(
        self, config: Config, clock: Callable[[], float], keys: KeyManager, cache: VerifiedTokenCache
    ) -> None:
        self.enabled = config.change_feed
        self.max_lag = config.change_feed_max_lag
        self.retention = config.access_token_validity + config.clock_skew_leeway
        self.clock = clock
        self.keys = keys
        self.cache = cache
        self.revoked: dict[str, float] = {}
        self.payload_changed: dict[str, PayloadChange] = {}
        #: Every handle of ``revoked`` and ``payload_changed``, until its latest drop time.
        self.flagged: dict[str, float] = {}
        #: The engine-clock window in which the feed counts as live without a closer look:
        #: from the listener's last contact to ``change_feed_max_lag`` after it.
        self.fresh_from = math.inf
        self.fresh_until = -math.inf
        self.listener: ChangeListener | None = None
        #: Where the listener starts (found at start-up, see :func:`replay_from`).
        self.start_seq: int | None = None
        #: The log's last ``seq`` at start-up: changes up to it are replayed ones.
        self.replay_until = 0
        self.closed = False
        self._lock = threading.Lock()
        self._transition_lock = threading.Lock()
        self._next_prune = 0.0
        self._was_live = False
        self._ever_live = False
        self._source: Any | None = None
        self._finalizer: weakref.finalize[[ChangeListener], FeedState] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def attach(self, store: object) -> None:
        """Follow ``store`` (the engine's); with a store that offers no feed, the feed is
        off (verification behaves as with ``change_feed=False``)."""
        self._source = feed_source(store) if self.enabled else None
        if self._source is None:
            self.enabled = False

    def start(self) -> None:
        """Start following the store's feed from :attr:`start_seq` (after start-up)."""
        source = self._source
        if source is None or self.closed or self.listener is not None or self.start_seq is None:
            return
        listener: ChangeListener = source.change_listener(weakly(self.on_changes), self.start_seq)
        listener.on_status = weakly(self.on_status)
        self._finalizer = weakref.finalize(self, _stop_listener, listener)
        self._finalizer.atexit = False  # daemon threads end with the interpreter anyway
        # Wake at least twice per max_lag: a quiet feed must not look stale.
        for attribute in ("heartbeat", "poll_interval"):
            value = getattr(listener, attribute, None)
            if isinstance(value, float) and value > self.max_lag / 2:
                setattr(listener, attribute, self.max_lag / 2)
        self.listener = listener
        try:
            from ..metrics import observe_change_feed
        except ImportError:  # no opentelemetry: no gauges
            return
        observe_change_feed(self)

    def restart_if_forked(self) -> None:
        """In a forked child, start the listener inherited (stopped) from the parent."""
        listener = self.listener
        if listener is not None and not self.closed and not listener.running:
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                listener.start()

    def close(self) -> None:
        """Stop the listener (idempotent); verification falls back to the store afterwards."""
        self.closed = True
        self.fresh_until = -math.inf
        listener, self.listener = self.listener, None
        if self._finalizer is not None:
            self._finalizer.detach()
        if listener is not None:
            listener.close()
        self._was_live = False

    # -- the listener's callback ----------------------------------------------------------

    def on_changes(self, batch: list[Change]) -> None:
        """Record a batch of changes (on the listener's thread)."""
        now = self.clock()
        drop_at = now + self.retention
        key_changes: list[Change] = []
        with self._lock:
            revoked = self.revoked
            payload_changed = self.payload_changed
            flagged = self.flagged
            newly_flagged: set[str] = set()
            for change in batch:
                kind = change.kind
                if kind == "revoked":
                    revoked[change.subject] = flagged[change.subject] = drop_at
                    newly_flagged.add(change.subject)
                elif kind == "payload":
                    payload_changed[change.subject] = PayloadChange(change.at, drop_at)
                    flagged[change.subject] = drop_at
                    newly_flagged.add(change.subject)
                elif kind.startswith("key_") and change.seq > self.replay_until:
                    key_changes.append(change)
            if now >= self._next_prune:
                self._prune(now)
        # After flagging: a token cached from now on is checked against the flags first.
        if newly_flagged:
            self.cache.evict_sessions(newly_flagged)
        if key_changes:
            hook = getattr(self.keys, "on_store_key_change", None)
            if hook is not None:
                for change in key_changes:
                    hook(change)

    def note_revoked(self, handles: list[str]) -> None:
        """Record revocations made by this engine at once (the feed confirms them later)."""
        if not self.enabled or not handles:
            return
        drop_at = self.clock() + self.retention
        with self._lock:
            for handle in handles:
                self.revoked[handle] = self.flagged[handle] = drop_at
        self.cache.evict_sessions(set(handles))

    def _prune(self, now: float) -> None:
        self._next_prune = now + PRUNE_INTERVAL
        if self.revoked:
            self.revoked = {handle: at for handle, at in self.revoked.items() if at > now}
        if self.payload_changed:
            self.payload_changed = {
                handle: entry for handle, entry in self.payload_changed.items() if entry.drop_at > now
            }
        if self.flagged:
            self.flagged = {handle: at for handle, at in self.flagged.items() if at > now}

    def on_status(self, ok: bool) -> None:
        """The listener's contact (``True``) or loss (``False``), on its thread: move the
        freshness window (see the module docstring)."""
        if not ok:
            self.fresh_until = -math.inf
            listener = self.listener
            # Not in a forked child (an at-fork hook: no logging there); its first
            # verification notices instead.
            if self._was_live and not self.closed and listener is not None and listener.running:
                self._transition(False)
            return
        if not self._was_live and not self.live():
            return
        # From when the listener's last read was asked, not answered (an answer held up by
        # a quiet network is no fresher than its question).
        listener = self.listener
        contact = None if listener is None else listener._last_contact
        age = 0.0 if contact is None else max(0.0, time.monotonic() - contact)
        since = self.clock() - age
        self.fresh_from = since
        self.fresh_until = since + self.max_lag

    # -- liveness ------------------------------------------------------------------------

    def live(self) -> bool:
        """Whether verification may trust the feed now: connected, caught up, and heard
        from within ``change_feed_max_lag``."""
        listener = self.listener
        if listener is None:
            live = False
        else:
            contact = listener._last_contact
            live = (
                contact is not None
                and listener._connected.is_set()
                and time.monotonic() - contact < self.max_lag
            )
        if live is not self._was_live:
            self._transition(live)
        return live

    def _transition(self, live: bool) -> None:
        # The listener's thread and verifications may both notice: log each change once.
        with self._transition_lock:
            if live is self._was_live:
                return
            self._was_live = live
        if live:
            logger.info("change feed live: verification trusts it (no store reads)")
            # Key changes missed while away (a log pruned meanwhile): the keys are re-read.
            mark_stale = getattr(self.keys, "mark_stale", None)
            if mark_stale is not None and self._ever_live:
                mark_stale()
            self._ever_live = True
        elif not self.closed:
            state = self.listener.state() if self.listener is not None else None
            if state is not None and state.stopped is not None:
                logger.warning(
                    "change feed not live (stopped: %s): verification reads the store", state.stopped
                )
                return
            logger.warning(
                "change feed not live (connected=%s, lag_ms=%s): verification reads the store",
                None if state is None else state.connected,
                None if state is None or state.lag_ms is None else round(state.lag_ms),
            )

    def state(self) -> ChangeFeedState:
        """A snapshot for :meth:`~sessionward.SessionWard.change_feed_state`."""
        listener = self.listener
        live = self.live()
        if listener is None:
            return ChangeFeedState(
                enabled=self.enabled,
                connected=False,
                live=False,
                last_seq=self.start_seq or 0,
                lag_ms=None,
                disconnects=0,
                revoked_tracked=len(self.revoked),
            )
        snapshot = listener.state()
        return ChangeFeedState(
            enabled=True,
            connected=snapshot.connected,
            live=live,
            last_seq=snapshot.last_seq,
            lag_ms=snapshot.lag_ms,
            disconnects=snapshot.disconnects,
            revoked_tracked=len(self.revoked),
            stopped=snapshot.stopped,
        )
