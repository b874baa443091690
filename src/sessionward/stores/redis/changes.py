"""The change feed of the Redis stores: the ``P changes`` stream and an XREAD listener.

Redis has no triggers: the Lua scripts that delete sessions, update a JWT payload or add or
remove a signing key append the change to the stream ``P changes`` themselves, inside the
same script, so the change and its entry are one atomic step (see :mod:`.scripts`). Entry
ids are ``<seq>-0`` with ``seq`` from the counter ``P change_seq``, so ``changes_since(seq)``
is ``XRANGE (seq-0 +``. Writers of an older sessionward version do not write entries.

Why a stream rather than pub/sub: a pub/sub message reaches only the subscribers connected
at that instant, so a listener that lost its connection for a moment would lose the
revocations published meanwhile, with no way to know. A stream keeps its entries: a
listener reads with ``XREAD BLOCK`` from the last id it delivered, and after a reconnection
the same call returns everything it missed, in order, once.

The stream is capped at about :data:`~.scripts.CHANGES_MAXLEN` entries; ``prune_changes``
removes older ones by time. ``seq`` values have no gaps here, so a listener that finds the
first entry after its position further on than the next ``seq`` knows that entries were
trimmed before it read them, and logs a warning.

Redis may lose data: a restart without persistence (or a crash with snapshots only), a
failover to a replica that lagged, a ``FLUSHALL``. The counter then starts again below the
position the listeners had reached and hands out their ``seq`` values anew: reading only
after its position, a listener would never see those changes. So the listener checks the
log on every (re)connection and after every quiet ``XREAD``: the log went back when its last
``seq`` (the counter, or the stream's last entry) is below the listener's position, or when
the entry at that position is not the change the listener delivered. It then delivers
everything the stream holds again, from the start (see ``ChangeListener._log_went_back``).
A flush followed by more changes than the listener's position before its next check (half
a second) shows neither sign on a connection that stayed up; a restart always drops the
connection, and is checked before the listener reads again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..change_operations import ChangeOperations
from ..changes import Change, ChangeCallback, ConnectionListener
from .operations import Op
from .settings import RedisSettings

__all__ = ["CHANGE_OPERATIONS", "RedisChangeListener"]

logger = logging.getLogger("sessionward.stores.changes")


def _decode_entries(reply: Any) -> list[Change]:
    changes = []
    for entry_id, flat in reply:
        # Lua replies are flat lists; redis-py's own XRANGE / XREAD parsing makes dicts.
        fields = flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))
        seq = int(str(entry_id).split("-", 1)[0])
        changes.append(Change(seq, str(fields["kind"]), str(fields["subject"]), int(fields["at"])))
    return changes


def changes_since(seq: int, limit: int) -> Op[list[Change]]:
    """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return Op("changes_since", (int(seq), int(limit)), _decode_entries)


def last_change_seq() -> Op[int]:
    """The last ``seq`` handed out (0 before the first change)."""
    return Op("last_change_seq", (), int)


def prune_changes(before_ms: int) -> Op[int]:
    """Delete changes written before ``before_ms``; return how many."""
    return Op("prune_changes", (int(before_ms),), int)


class RedisChangeListener(ConnectionListener[redis.Redis]):
    """Follows a Redis store's change stream with ``XREAD BLOCK`` on a connection of its own
    (see the module docstring). Each blocking read lasts at most ``heartbeat`` seconds
    (default 0.5), so a dead connection is noticed within about ``heartbeat`` plus the
    URL's ``timeout``."""

    close_errors = (redis.RedisError, OSError)
    not_connected = redis.ConnectionError

    def __init__(
        self,
        settings: RedisSettings,
        callback: ChangeCallback,
        since: int | None = None,
        *,
        heartbeat: float = 0.5,
        store_closed: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(callback, since, name="sessionward-changes-redis", store_closed=store_closed)
        self.settings = settings
        self.heartbeat = heartbeat
        self._stream = settings.prefix + "changes"
        self._counter = settings.prefix + "change_seq"
        self._client_id: int | None = None

    @property
    def client_id(self) -> int | None:
        """The server's id of the listener's connection (``CLIENT ID``), once connected."""
        return self._client_id

    def _connect(self) -> None:
        # One connection, no retries: a failure goes to the listener's own reconnection.
        client = redis.Redis.from_url(
            self.settings.client_url,
            decode_responses=True,
            socket_timeout=self.settings.timeout + self.heartbeat,
            socket_connect_timeout=self.settings.connect_timeout,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._connection = client
        self._client_id = int(client.client_id())

    def _forget(self) -> None:
        self._client_id = None

    def _read(self, seq: int, limit: int) -> list[Change]:
        changes = _decode_entries(self._live().xrange(self._stream, f"({seq}-0", "+", count=limit))
        if changes and changes[0].seq > seq + 1 and seq > 0:
            logger.warning(
                "change feed: %d changes after seq %d were trimmed before this listener read them",
                changes[0].seq - seq - 1,
                seq,
            )
        return changes[:limit]

    def _latest(self) -> int:
        return int(self._live().get(self._counter) or 0)

    def _check_log(self) -> bool:
        position = self._last_seq
        if position <= 0:
            return False
        pipeline = self._live().pipeline(transaction=False)
        pipeline.get(self._counter)
        pipeline.xrevrange(self._stream, "+", "-", count=1)
        pipeline.xrange(self._stream, f"{position}-0", f"{position}-0")
        counter, last_entries, at_position = pipeline.execute()
        newest = max([int(counter or 0), *(change.seq for change in _decode_entries(last_entries))])
        if newest < position:
            self._log_went_back(f"its last seq is {newest}, this listener had reached {position}")
            return True
        delivered = self._last_change
        found = _decode_entries(at_position)
        if delivered is not None and delivered.seq == position and found and found[0] != delivered:
            self._log_went_back(f"seq {position} holds another change than the one delivered")
            return True
        return False

    def _wait(self) -> bool:
        block = max(1, int(self.heartbeat * 1000))
        asked = time.monotonic()
        # A wake-up only: the catch-up reads the entries (XRANGE), and its answer dates
        # from when it was asked, where an XREAD's entries would date from an unknown
        # moment of its block.
        reply: Any = self._live().xread({self._stream: f"{self._last_seq}-0"}, count=1, block=block)
        if reply:
            return True
        # An empty answer: the stream had nothing new until the block ended, which is at
        # least ``block`` after the question (an answer held up on the way is no fresher).
        self._contact(min(time.monotonic(), asked + block / 1000))
        # A quiet moment: also when a FLUSHALL on this very connection reset the log.
        return self._check_log()


#: The Redis builders of the change-feed operations and the listener: what the stores
#: (through :class:`~sessionward.stores.change_operations.OperationsChangeFeed`) offer.
CHANGE_OPERATIONS: ChangeOperations[RedisChangeListener] = ChangeOperations(
    changes_since, last_change_seq, prune_changes, RedisChangeListener
)
