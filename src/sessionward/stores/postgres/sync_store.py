"""The synchronous PostgreSQL store: a psycopg ``ConnectionPool`` per process."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import psycopg

from ...errors import GeneralError
from ..base import Promoted, Promotion, SessionRow, StoredKey
from ..change_operations import OperationsChangeFeed
from . import operations as ops
from .changes import CHANGE_OPERATIONS, PostgresChangeListener
from .drivers import drive
from .errors import CLOSED, translate
from .pool import ABANDONED, Pool, checked_out, pool_options
from .settings import parse_postgres_url
from .startup import check_connection

__all__ = ["PostgresStore"]

T = TypeVar("T")


class PostgresStore(OperationsChangeFeed[PostgresChangeListener]):
    """A synchronous :class:`~sessionward.stores.base.Store` on a psycopg connection pool,
    with the change feed."""

    change_operations = CHANGE_OPERATIONS

    def __init__(self, url: str) -> None:
        self.settings = parse_postgres_url(url)
        self._pool: Pool | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self._connection_checked = False

    def __repr__(self) -> str:
        return f"PostgresStore({self.settings.description!r})"

    def _get_pool(self) -> Pool:
        if os.getpid() != self._pid:
            # Forked child: never use (or close) the parent's connections or its lock.
            ABANDONED.append(self._pool)
            self._pid, self._pool, self._lock = os.getpid(), None, threading.Lock()
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._closed:
                    raise GeneralError(CLOSED)
                if self._pool is None:
                    opened = Pool(self.settings.conninfo, **pool_options(self.settings))
                    opened.open(wait=False)
                    self._pool = opened
                pool = self._pool
        return pool

    def _check_connection(self) -> None:
        """Before the first start-up call, tell a refused configuration from an outage."""
        if not self._connection_checked and not self._closed:
            check_connection(self.settings)
            self._connection_checked = True

    def _run(self, operation: ops.Operation[T], transaction: bool = False) -> T:
        if self._closed:
            raise GeneralError(CLOSED)
        try:
            with checked_out(self._get_pool(), self.settings) as connection:
                scope: AbstractContextManager[Any] = (
                    connection.transaction() if transaction else nullcontext()
                )
                with scope:
                    return drive(connection, operation)
        except psycopg.Error as exc:
            raise translate(exc, self.settings.description, self._closed) from exc
        finally:
            operation.close()

    # -- Store methods (see sessionward.stores.base.Store) -------------------------------

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in place."""
        self._check_connection()
        return self._run(ops.migrate(), transaction=True)

    def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` if the schema is not current."""
        self._check_connection()
        self._run(ops.check_schema())

    def insert_session(self, row: SessionRow) -> None:
        """Insert a new session row."""
        self._run(ops.insert_session(row))

    def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        return self._run(ops.get_session(handle))

    def promote_returning(self, promotion: Promotion) -> Promoted:
        """The compare-and-set of ``promotion`` and the resulting row (one statement)."""
        return self._run(ops.promote_returning(promotion))

    def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        return self._run(ops.delete_sessions(handles))

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        return self._run(ops.delete_sessions_for_user(user_id))

    def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """Delete every session of ``user_id`` except ``keep`` (one statement); their handles."""
        return self._run(ops.delete_other_sessions(user_id, keep))

    def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        """The rows of ``user_id``'s sessions that have not expired at ``now``."""
        return self._run(ops.get_sessions_for_user(user_id, now))

    def update_auth_time(self, handle: str, auth_time: int) -> bool:
        """Set ``auth_time`` and ``last_active_at``; return whether the session exists."""
        return self._run(ops.update_auth_time(handle, auth_time))

    def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        """Handles of ``user_id``'s sessions that have not expired at ``now``."""
        return self._run(ops.get_handles_for_user(user_id, now))

    def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        """Overwrite session data; return whether the session exists."""
        return self._run(ops.update_json("session_data", handle, data))

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        """Overwrite the JWT payload; return whether the session exists."""
        return self._run(ops.update_json("jwt_user_payload", handle, payload))

    def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        """Delete rows with ``expires_at < now``; return ``(handle, user_id)`` of each."""
        return self._run(ops.delete_expired(now))

    def load_keys(self, prefix: str) -> list[StoredKey]:
        """All key-value entries whose name starts with ``prefix``."""
        return self._run(ops.load_keys(prefix))

    def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        """Insert ``key`` unless its name exists; return the entry now stored."""
        return self._run(ops.insert_key_if_absent(key))

    def delete_keys(self, names: list[str]) -> None:
        """Delete key-value entries by name."""
        self._run(ops.delete_keys(names))

    def close(self) -> None:
        """Close the pool (a forked child leaves its parent's pool alone)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and os.getpid() == self._pid:
            pool.close()
