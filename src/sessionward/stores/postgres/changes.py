"""The change feed of the PostgreSQL stores: reading ``change_log`` and a LISTEN listener.

The triggers of migration ``0003_change_log`` write each change and, at commit, send a
notification on the channel :data:`CHANNEL` whose payload is the schema's name (identical
notifications of one transaction are folded into one, and listeners of other schemas on the
same database skip it). They also serialise the writers of the log per schema until commit
(``pg_advisory_xact_lock``), so ``seq`` values become visible in their order: a reader that
sees ``seq`` n will never later find a committed ``seq`` below n. Reading from the last
``seq`` delivered therefore loses nothing.

:class:`PostgresChangeListener` holds one connection of its own (outside the pool), LISTENs
on it, reads the log after each notification and at least every ``heartbeat`` seconds
(default 1: the read doubles as the liveness check, and catches anything a notification
missed), and reconnects with backoff when the connection fails. TCP keepalives and
``tcp_user_timeout`` are set on that connection (unless the URL sets them) so that a
vanished server is noticed within seconds rather than the operating system's minutes.
It stops for good when its store is closed or the store's schema is gone (the table
``change_log`` or the schema of the ``search_path`` does not exist).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..change_operations import ChangeOperations
from ..changes import Change, ChangeCallback, ConnectionListener, PermanentFeedError
from .drivers import drive
from .errors import translate
from .operations import Operation, Query
from .settings import PostgresSettings

__all__ = [
    "CHANGE_OPERATIONS",
    "CHANNEL",
    "PostgresChangeListener",
    "changes_since",
    "last_change_seq",
    "prune_changes",
]

CHANNEL = "sessionward_changes"
# SQLSTATEs no reconnection mends: the schema is gone.
_PERMANENT = {
    "42P01": "the change_log table is missing: the store's schema was dropped (or never migrated)",
    "3F000": "the store's schema does not exist",
}
_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "2",
    "tcp_user_timeout": "10000",
}


def changes_since(seq: int, limit: int) -> Operation[list[Change]]:
    """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    rows = yield Query(
        "SELECT seq, kind, subject, at FROM change_log WHERE seq > %s ORDER BY seq LIMIT %s",
        (seq, limit),
        "all",
    )
    return [Change(int(s), str(kind), str(subject), int(at)) for s, kind, subject, at in rows]


def last_change_seq() -> Operation[int]:
    """The highest committed ``seq`` in the log (0 when it is empty)."""
    found = yield Query("SELECT COALESCE(MAX(seq), 0) FROM change_log", (), "one")
    return int(found[0])


def prune_changes(before_ms: int) -> Operation[int]:
    """Delete changes written before ``before_ms``; return how many."""
    deleted = yield Query("DELETE FROM change_log WHERE at < %s", (before_ms,))
    return int(deleted)


class PostgresChangeListener(ConnectionListener[psycopg.Connection[Any]]):
    """Follows a PostgreSQL store's change log with LISTEN/NOTIFY (see the module docstring)."""

    close_errors = (psycopg.Error,)
    not_connected = psycopg.OperationalError

    def __init__(
        self,
        settings: PostgresSettings,
        callback: ChangeCallback,
        since: int | None = None,
        *,
        heartbeat: float = 1.0,
        tick: float = 0.1,
        store_closed: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(callback, since, name="sessionward-changes-postgres", store_closed=store_closed)
        self.settings = settings
        self.heartbeat = heartbeat
        self.tick = tick
        self._schema = ""
        self._backend_pid: int | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listener's current connection (``None`` if none)."""
        return self._backend_pid

    def _connect(self) -> None:
        kwargs = dict(self.settings.connect_kwargs)
        given = conninfo_to_dict(self.settings.conninfo)
        kwargs.update({name: value for name, value in _KEEPALIVES.items() if name not in given})
        kwargs["autocommit"] = True
        try:
            connection = psycopg.connect(self.settings.conninfo, **kwargs)
        except psycopg.Error as exc:
            raise translate(exc, self.settings.description, closed=False) from exc
        self._connection = connection
        # LISTEN before the catch-up read: a change committed in between is notified.
        connection.execute(f"LISTEN {CHANNEL}")
        row = connection.execute("SELECT current_schema(), pg_backend_pid()").fetchone()
        if row is None or row[0] is None:
            raise PermanentFeedError("no schema of the search_path exists: the store's schema was dropped")
        self._schema, self._backend_pid = str(row[0]), int(row[1])

    def _forget(self) -> None:
        self._backend_pid = None

    def _permanent(self, exc: Exception) -> str | None:
        failure: BaseException | None = exc
        while failure is not None:
            if isinstance(failure, psycopg.Error) and failure.sqlstate in _PERMANENT:
                return _PERMANENT[failure.sqlstate]
            failure = failure.__cause__
        return None

    def _read(self, seq: int, limit: int) -> list[Change]:
        return drive(self._live(), changes_since(seq, limit))

    def _latest(self) -> int:
        return drive(self._live(), last_change_seq())

    def _wait(self) -> bool:
        connection = self._live()
        due = time.monotonic() + self.heartbeat
        while not self._stop.is_set():
            left = due - time.monotonic()
            if left <= 0:
                return False
            for notify in connection.notifies(timeout=min(self.tick, left)):
                # No contact here: a notification may have been held up on the way; the
                # catch-up read that follows dates the listener's knowledge.
                if notify.payload == self._schema:
                    return True
        return False


#: The PostgreSQL builders of the change-feed operations and the listener: what the stores
#: (through :class:`~sessionward.stores.change_operations.OperationsChangeFeed`) offer.
CHANGE_OPERATIONS: ChangeOperations[PostgresChangeListener] = ChangeOperations(
    changes_since, last_change_seq, prune_changes, PostgresChangeListener
)
