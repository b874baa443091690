"""The change feed of the SQLite store: reading ``change_log`` and a polling listener.

SQLite has no notifications, so :class:`SQLiteChangeListener` polls, on a connection of
its own, ``PRAGMA data_version`` — a counter that moves when any *other* connection (of
this or another process) commits to the file — every ``poll_interval`` seconds (default
0.05) and reads the log only when it moved. Writers are serialised by SQLite, so ``seq``
values become visible in their order. An in-memory database exists only in the store's own
connection: its listener reads through the store every ``poll_interval``.

The listener stops for good when its store is closed, when the ``change_log`` table is gone
and when the file it follows is deleted or replaced (an open connection keeps reading the
deleted file, so writers that open the path anew would go unheard). It never creates the
file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from .changes import Change, ChangeCallback, ConnectionListener, PermanentFeedError

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

__all__ = ["SQLiteChangeFeed", "SQLiteChangeListener"]

T = TypeVar("T")

_SINCE = "SELECT seq, kind, subject, at FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?"
_LATEST = "SELECT COALESCE(MAX(seq), 0) FROM change_log"


def _changes(rows: list[Any]) -> list[Change]:
    return [Change(int(seq), str(kind), str(subject), int(at)) for seq, kind, subject, at in rows]


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")


class SQLiteChangeFeed:
    """The :class:`~sessionward.stores.changes.ChangeFeed` operations of
    :class:`~sessionward.stores.sqlite.SQLiteStore` (a base class of it)."""

    if TYPE_CHECKING:

        def _run(self, action: Callable[[sqlite3.Connection], T], transaction: bool = False) -> T: ...

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
        _check_limit(limit)
        return _changes(self._run(lambda c: c.execute(_SINCE, (seq, limit)).fetchall()))

    def last_change_seq(self) -> int:
        """The highest ``seq`` in the log (0 when it is empty)."""
        return int(self._run(lambda c: c.execute(_LATEST).fetchone()[0]))

    def prune_changes(self, before_ms: int) -> int:
        """Delete changes written before ``before_ms``; return how many."""
        cursor = self._run(lambda c: c.execute("DELETE FROM change_log WHERE at < ?", (before_ms,)))
        return int(cursor.rowcount)

    def change_listener(self, callback: ChangeCallback, since: int | None = None) -> SQLiteChangeListener:
        """A started :class:`SQLiteChangeListener` on this store's database."""
        store = cast("SQLiteStore", self)
        return SQLiteChangeListener(store, callback, since, store_closed=lambda: store._closed).start()


class SQLiteChangeListener(ConnectionListener[sqlite3.Connection]):
    """Follows an SQLite store's change log by polling (see the module docstring)."""

    close_errors = (sqlite3.Error,)
    not_connected = sqlite3.OperationalError

    def __init__(
        self,
        store: SQLiteStore,
        callback: ChangeCallback,
        since: int | None = None,
        *,
        poll_interval: float = 0.05,
        store_closed: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(callback, since, name="sessionward-changes-sqlite", store_closed=store_closed)
        self.store = store
        self.poll_interval = poll_interval
        self._version: int | None = None
        self._file: tuple[int, int] | None = None

    @property
    def _memory(self) -> bool:
        return bool(self.store._memory)

    def _connect(self) -> None:
        if self._memory:
            return
        path = self.store._path
        # mode=rw: a missing file is an error, never a new empty database.
        connection = sqlite3.connect(
            f"file:{quote(path)}?mode=rw",
            uri=True,
            timeout=self.store._timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        self._connection = connection
        self._file = self._identity()
        # Read the counter before the catch-up: a commit in between moves it again.
        self._version = int(connection.execute("PRAGMA data_version").fetchone()[0])

    def _identity(self) -> tuple[int, int]:
        try:
            found = os.stat(self.store._path)
        except FileNotFoundError:
            raise PermanentFeedError(f"the database file {self.store._path} was deleted") from None
        return found.st_dev, found.st_ino

    def _permanent(self, exc: Exception) -> str | None:
        if isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such table"):
            return "the change_log table is missing: the store's schema was dropped (or never migrated)"
        if not self._memory and not os.path.exists(self.store._path):
            return f"the database file {self.store._path} was deleted"
        return None

    def _read(self, seq: int, limit: int) -> list[Change]:
        if self._memory:
            return self.store.changes_since(seq, limit)
        return _changes(self._live().execute(_SINCE, (seq, limit)).fetchall())

    def _latest(self) -> int:
        if self._memory:
            return self.store.last_change_seq()
        return int(self._live().execute(_LATEST).fetchone()[0])

    def _wait(self) -> bool:
        while not self._stop.wait(self.poll_interval):
            if self._memory:
                return True
            self._check_store()
            if self._identity() != self._file:
                raise PermanentFeedError(f"the database file {self.store._path} was replaced")
            asked = time.monotonic()
            version = int(self._live().execute("PRAGMA data_version").fetchone()[0])
            self._contact(asked)
            if version != self._version:
                self._version = version
                return True
        return False
