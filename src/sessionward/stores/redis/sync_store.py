"""The synchronous Redis store."""

from __future__ import annotations

from typing import Any, TypeVar

from ...errors import GeneralError
from ..base import Promoted, Promotion, SessionRow, StoredKey
from ..change_operations import OperationsChangeFeed
from . import operations as ops
from .changes import CHANGE_OPERATIONS, RedisChangeListener
from .errors import CLOSED, translate
from .scripts import SCRIPTS
from .settings import parse_redis_url

__all__ = ["RedisStore"]

T = TypeVar("T")


class RedisStore(OperationsChangeFeed[RedisChangeListener]):
    """A synchronous :class:`~sessionward.stores.base.Store` on one Redis server, with the
    change feed.

    Thread-safe (redis-py's connection pool); after a fork the child opens its own
    connections (redis-py checks the process id).
    """

    change_operations = CHANGE_OPERATIONS

    def __init__(self, url: str = "redis://127.0.0.1:6379/0") -> None:
        self.url = url
        self.settings = parse_redis_url(url)
        self.prefix = self.settings.prefix
        self._client = self.settings.sync_client()
        self._scripts = {name: self._client.register_script(text) for name, text in SCRIPTS.items()}
        self._closed = False

    def _run(self, op: ops.Op[T]) -> T:
        if self._closed:
            raise GeneralError(CLOSED)
        if op.script is None:
            return op.decode(None)
        try:
            reply = self._scripts[op.script](keys=[], args=[self.prefix, *op.args])
        except Exception as exc:
            raise translate(exc, self.settings) from exc
        return op.decode(reply)

    # -- Store methods (see sessionward.stores.base.Store) -------------------------------

    def migrate(self) -> int:
        """Record the key layout version; return it."""
        return self._run(ops.migrate())

    def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` unless the layout is current."""
        self._run(ops.check_schema())

    def insert_session(self, row: SessionRow) -> None:
        """Insert a new session."""
        self._run(ops.insert_session(row))

    def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        return self._run(ops.get_session(handle))

    def promote_returning(self, promotion: Promotion) -> Promoted:
        """The compare-and-set of ``promotion`` and the resulting row (one script)."""
        return self._run(ops.promote_returning(promotion))

    def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        return self._run(ops.delete_sessions(handles))

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        return self._run(ops.delete_sessions_for_user(user_id))

    def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """Delete every session of ``user_id`` except ``keep`` (one script); their handles."""
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
        """Delete sessions with ``expires_at < now``; return ``(handle, user_id)`` of each
        expired session still indexed, including those whose hash Redis already expired."""
        removed: list[tuple[str, str]] = []
        more = True
        while more:  # in batches, so no single script blocks Redis for long
            batch, more = self._run(ops.sweep(now))
            removed += batch
        return removed

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
        """Close the client and its connection pool."""
        if not self._closed:
            self._closed = True
            self._client.close()
