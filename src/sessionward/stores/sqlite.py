"""SQLite store on the standard library's ``sqlite3``.

One connection per store object, guarded by a lock: SQLite serialises writers anyway, and
funnelling a process's work through one connection avoids busy-handler back-off between
its own threads. Processes sharing a file coordinate through WAL and ``busy_timeout``.
Every check-and-set is a single statement (``UPDATE … WHERE hash = ?``), atomic by itself.
A process that forks reopens the connection in the child on first use.

URLs: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``;
``?timeout=SECONDS`` sets the busy timeout (default 5). The file's directory must exist when
the store is created (so at engine construction): a missing one is a ``ConfigError``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError, GeneralError, StorageUnavailableError
from ..tokens.encoding import dumps_compact
from .base import (
    SESSION_COLUMNS,
    Promoted,
    Promotion,
    SessionRow,
    StoredKey,
    session_insert_columns,
    session_row_from_columns,
    session_row_insert_values,
)
from .schema import latest_version, migrations_for
from .sqlite_changes import SQLiteChangeFeed

__all__ = ["SQLiteStore", "parse_sqlite_url"]

T = TypeVar("T")
DIALECT = "sqlite"
_MIN_SQLITE = (3, 35, 0)  # RETURNING
_ROW_COLUMNS = ", ".join(SESSION_COLUMNS)
# The INSERT of a new row by mask of the optional columns it names (built once per mask;
# a handful of masks occur in practice).
_INSERTS: dict[int, str] = {}


def _insert_statement(mask: int) -> str:
    columns = session_insert_columns(mask)
    sql = f"INSERT INTO session_info ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    _INSERTS[mask] = sql
    return sql


# The compare-and-set of ``promote_returning``: one statement, its conditions in the WHERE.
# The new deadline is Promotion.deadline of the row: the asked one, shortened to the row's
# own idle lifetime and capped by its maximum lifetime (NULL arithmetic drops either).
_PROMOTE_RETURNING = (
    "UPDATE session_info SET refresh_token_hash_2 = :new, prev_refresh_token_hash_2 = :expected, "
    "rotated_at = :now, last_active_at = :now, "
    "last_ip = COALESCE(:ip, last_ip), last_user_agent = COALESCE(:agent, last_user_agent), "
    "expires_at = MIN(:deadline, COALESCE(:now + refresh_validity, :deadline), "
    "COALESCE(created_at_time + :life, :deadline)) "
    "WHERE session_handle = :handle AND user_id = :user AND refresh_token_hash_2 = :expected "
    "AND expires_at >= :now AND (:life IS NULL OR created_at_time + :life >= :now) "
    "AND (:limit IS NULL OR length(jwt_user_payload) <= :limit) "
    f"RETURNING {_ROW_COLUMNS}"
)


def parse_sqlite_url(url: str) -> tuple[str, float]:
    """Split a ``sqlite://`` URL into (path, busy timeout in seconds)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        raise ConfigError(
            f"store: expected sqlite:///relative.db, sqlite:////absolute.db or "
            f"sqlite:///:memory:; got {url!r}"
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigError(f"store: the sqlite URL {url!r} names no database file")
    timeout = 5.0
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name != "timeout":
            raise ConfigError(f"store: unknown sqlite URL parameter {name!r} (known: timeout)")
        try:
            timeout = float(values[-1])
        except ValueError:
            raise ConfigError(f"store: sqlite timeout must be a number; got {values[-1]!r}") from None
        if not 0 <= timeout <= 600:
            raise ConfigError("store: sqlite timeout must be between 0 and 600 seconds")
    return path, timeout


def _check_directory(path: str) -> None:
    """Refuse a database file whose directory does not exist (SQLite would fail on every
    call, and creating directories is the operator's decision, not the store's)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError(
            f"store: cannot open the SQLite database {path!r}: the directory {directory!r} "
            f"does not exist (create it, or choose another path)"
        )


class SQLiteStore(SQLiteChangeFeed):
    """A synchronous :class:`~sessionward.stores.base.Store` over one SQLite database, with
    the change feed of :class:`~sessionward.stores.sqlite_changes.SQLiteChangeFeed`."""

    def __init__(self, url: str = "sqlite:///sessionward.db") -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise ConfigError(f"store: SQLite {sqlite3.sqlite_version} is too old; sessionward needs 3.35+")
        self.url = url
        self._path, self._timeout = parse_sqlite_url(url)
        self._memory = self._path == ":memory:"
        if not self._memory:
            _check_directory(self._path)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    # -- connection handling -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            if not self._memory:
                self._enable_wal(connection)
                connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting while another process holds it.

        Converting a new file to WAL answers SQLITE_BUSY at once when another connection
        holds a lock, without calling the busy handler, so several processes opening one
        new file together would fail; retry within the busy timeout instead.
        """
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
                if mode is not None and str(mode[0]).lower() == "wal":
                    return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
            if time.monotonic() >= deadline:
                return  # the file stays in its journal mode: slower, still correct
            time.sleep(0.005)

    def _run(self, action: Callable[[sqlite3.Connection], T], transaction: bool = False) -> T:
        """Run ``action`` on the connection under the lock, mapping SQLite errors.

        With ``transaction``, inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error).
        """
        if os.getpid() != self._pid:
            # Forked child: never touch the parent's connection or a lock it may hold.
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._connection = None
        with self._lock:
            if self._closed:
                raise GeneralError("the SQLite store is closed")
            try:
                connection = self._connection
                if connection is None:
                    connection = self._connection = self._connect()
                if not transaction:
                    return action(connection)
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = action(connection)
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
                return result
            except sqlite3.IntegrityError as exc:
                raise GeneralError(f"SQLite integrity error: {exc}") from exc
            except sqlite3.Error as exc:
                raise StorageUnavailableError(f"SQLite store unavailable: {exc}") from exc

    def _transaction(self, action: Callable[[sqlite3.Connection], T]) -> T:
        return self._run(action, transaction=True)

    # -- schema --------------------------------------------------------------------------

    def migrate(self) -> int:
        def apply(connection: sqlite3.Connection) -> int:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)"
            )
            current = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            current = current or 0
            for migration in migrations_for(DIALECT):
                if migration.version > current:
                    for statement in migration.statements:
                        connection.execute(statement)
                    connection.execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                        (migration.version, int(time.time() * 1000)),
                    )
                    current = migration.version
            return int(current)

        return self._transaction(apply)

    def check_schema(self) -> None:
        def read(connection: sqlite3.Connection) -> int:
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            if not exists:
                return 0
            return int(connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)

        version = self._run(read)
        expected = latest_version(DIALECT)
        if version != expected:
            raise GeneralError(
                f"the session store schema is at version {version}, sessionward needs "
                f"{expected}: run `sessionward migrate --store URL` (or set auto_migrate=True)"
            )

    # -- sessions ------------------------------------------------------------------------

    def insert_session(self, row: SessionRow) -> None:
        mask, values = session_row_insert_values(row)
        sql = _INSERTS.get(mask) or _insert_statement(mask)
        self._run(lambda c: c.execute(sql, values))

    def get_session(self, handle: str) -> SessionRow | None:
        found = self._run(
            lambda c: c.execute(
                f"SELECT {_ROW_COLUMNS} FROM session_info WHERE session_handle = ?", (handle,)
            ).fetchone()
        )
        return None if found is None else session_row_from_columns(found)

    def promote_returning(self, promotion: Promotion) -> Promoted:
        params = promotion.sql_parameters()

        def attempt(connection: sqlite3.Connection) -> tuple[bool, Any]:
            # Autocommit UPDATE: it commits at once, and a failed compare writes nothing.
            # The SELECT after a failed compare runs under the same lock (no other thread
            # of this process in between); another process may still write in between,
            # which the engine handles as a row that changed under it.
            changed = connection.execute(_PROMOTE_RETURNING, params).fetchall()
            if changed:
                return True, changed[0]
            found = connection.execute(
                f"SELECT {_ROW_COLUMNS} FROM session_info WHERE session_handle = ?", (promotion.handle,)
            ).fetchone()
            return False, found

        changed, found = self._run(attempt)
        return Promoted(changed, None if found is None else session_row_from_columns(found))

    def delete_sessions(self, handles: list[str]) -> list[str]:
        if not handles:
            return []

        def delete(connection: sqlite3.Connection) -> list[str]:
            removed: list[str] = []
            for handle in dict.fromkeys(handles):
                removed.extend(
                    r[0]
                    for r in connection.execute(
                        "DELETE FROM session_info WHERE session_handle = ? RETURNING session_handle",
                        (handle,),
                    ).fetchall()
                )
            return removed

        return self._transaction(delete)

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        return self._run(
            lambda c: [
                r[0]
                for r in c.execute(
                    "DELETE FROM session_info WHERE user_id = ? RETURNING session_handle", (user_id,)
                ).fetchall()
            ]
        )

    def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        return self._run(
            lambda c: [
                r[0]
                for r in c.execute(
                    "DELETE FROM session_info WHERE user_id = ? AND session_handle <> ? "
                    "RETURNING session_handle",
                    (user_id, keep),
                ).fetchall()
            ]
        )

    def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        rows = self._run(
            lambda c: c.execute(
                f"SELECT {_ROW_COLUMNS} FROM session_info WHERE user_id = ? AND expires_at >= ? "
                "ORDER BY created_at_time, session_handle",
                (user_id, now),
            ).fetchall()
        )
        return [session_row_from_columns(row) for row in rows]

    def update_auth_time(self, handle: str, auth_time: int) -> bool:
        cursor = self._run(
            lambda c: c.execute(
                "UPDATE session_info SET auth_time = ?, last_active_at = ? WHERE session_handle = ?",
                (auth_time, auth_time, handle),
            )
        )
        return cursor.rowcount == 1

    def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        return self._run(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT session_handle FROM session_info WHERE user_id = ? AND expires_at >= ? "
                    "ORDER BY created_at_time, session_handle",
                    (user_id, now),
                ).fetchall()
            ]
        )

    def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        return self._update_json("session_data", handle, data)

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        return self._update_json("jwt_user_payload", handle, payload)

    def _update_json(self, column: str, handle: str, value: dict[str, Any]) -> bool:
        encoded = dumps_compact(value)
        cursor = self._run(
            lambda c: c.execute(
                f"UPDATE session_info SET {column} = ? WHERE session_handle = ?", (encoded, handle)
            )
        )
        return cursor.rowcount == 1

    def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        rows = self._run(
            lambda c: c.execute(
                "DELETE FROM session_info WHERE expires_at < ? RETURNING session_handle, user_id",
                (now,),
            ).fetchall()
        )
        return [(str(handle), str(user_id)) for handle, user_id in rows]

    # -- keys ----------------------------------------------------------------------------

    def load_keys(self, prefix: str) -> list[StoredKey]:
        rows = self._run(
            lambda c: c.execute(
                "SELECT name, value, created_at_time FROM key_value WHERE substr(name, 1, ?) = ? "
                "ORDER BY name",
                (len(prefix), prefix),
            ).fetchall()
        )
        return [StoredKey(*row) for row in rows]

    def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        def insert(connection: sqlite3.Connection) -> StoredKey:
            connection.execute(
                "INSERT OR IGNORE INTO key_value (name, value, created_at_time) VALUES (?, ?, ?)",
                (key.name, key.value, key.created_at_time),
            )
            stored = connection.execute(
                "SELECT name, value, created_at_time FROM key_value WHERE name = ?", (key.name,)
            ).fetchone()
            return StoredKey(*stored)

        return self._transaction(insert)

    def delete_keys(self, names: list[str]) -> None:
        if names:
            self._transaction(
                lambda c: c.executemany("DELETE FROM key_value WHERE name = ?", [(n,) for n in names])
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None and os.getpid() == self._pid:
                self._connection.close()
            self._connection = None
