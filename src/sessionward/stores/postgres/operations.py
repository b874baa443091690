"""The store operations as SQL, written once for both drivers.

Each operation is a generator that yields :class:`Query` objects and receives their results
(see :mod:`.drivers`), so the SQL text and row decoding exist once and the two store classes
only do the I/O.

Atomicity: every check-and-set is one statement (``UPDATE … WHERE refresh_token_hash_2 =
%s``, ``DELETE … RETURNING``, ``INSERT … ON CONFLICT DO NOTHING``); migrations run in one
transaction under ``pg_advisory_xact_lock`` so concurrent migrators queue up. The JSON
columns are ``JSON``, which keeps the exact text written (``JSONB`` would reject
``\\u0000`` and rewrite numbers such as ``1e300`` and key order), and are read back as text.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ...errors import GeneralError
from ...tokens.encoding import dumps_compact
from ..base import (
    SESSION_COLUMNS,
    Promoted,
    Promotion,
    SessionRow,
    StoredKey,
    session_row_from_columns,
    session_row_to_columns,
)
from ..schema import latest_version, migrations_for

T = TypeVar("T")
DIALECT = "postgres"

Fetch = Literal["rowcount", "one", "all"]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement to execute and what to return from it."""

    sql: str
    params: Sequence[Any] | Mapping[str, Any] = ()
    fetch: Fetch = "rowcount"


Operation = Generator[Query, Any, T]

_ROW_COLUMNS = ", ".join(SESSION_COLUMNS)
_ROW_PLACEHOLDERS = ", ".join("%s" for _ in SESSION_COLUMNS)
# The JSON columns are read back as text: the exact document that was written.
_SELECT_COLUMNS = _ROW_COLUMNS.replace(
    "session_data, jwt_user_payload", "session_data::text, jwt_user_payload::text"
)
_KEY_COLUMNS = "name, value, created_at_time"


def _schema_version() -> Operation[int]:
    exists = yield Query("SELECT to_regclass('schema_version') IS NOT NULL", (), "one")
    if not exists[0]:
        return 0
    found = yield Query("SELECT MAX(version) FROM schema_version", (), "one")
    return int(found[0] or 0)


def migrate() -> Operation[int]:
    """Apply pending migrations (run in a transaction); the schema version now in place."""
    # One lock per target schema: migrators of different schemas do not wait for each other.
    yield Query("SELECT pg_advisory_xact_lock(hashtext('sessionward.migrate:' || current_schema()))")
    yield Query(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)"
    )
    current = yield from _schema_version()
    for migration in migrations_for(DIALECT):
        if migration.version > current:
            for statement in migration.statements:
                yield Query(statement)
            yield Query(
                "INSERT INTO schema_version (version, applied_at) "
                "VALUES (%s, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                (migration.version,),
            )
            current = migration.version
    return current


def check_schema() -> Operation[None]:
    """Raise ``GeneralError`` naming ``sessionward migrate`` if the schema is not current."""
    version = yield from _schema_version()
    expected = latest_version(DIALECT)
    if version != expected:
        raise GeneralError(
            f"the session store schema is at version {version}, sessionward needs {expected}: "
            f"run `sessionward migrate --store URL` (or set auto_migrate=True)"
        )


def insert_session(row: SessionRow) -> Operation[None]:
    """Insert a new session row."""
    yield Query(
        f"INSERT INTO session_info ({_ROW_COLUMNS}) VALUES ({_ROW_PLACEHOLDERS})",
        session_row_to_columns(row),
    )


def get_session(handle: str) -> Operation[SessionRow | None]:
    """The row of ``handle``, or ``None``."""
    found = yield Query(
        f"SELECT {_SELECT_COLUMNS} FROM session_info WHERE session_handle = %s", (handle,), "one"
    )
    return None if found is None else session_row_from_columns(found)


# One statement: the compare-and-set (conditions in the WHERE) and, when it changes
# nothing, the row as the statement's snapshot holds it. The new deadline is
# Promotion.deadline of the row (LEAST ignores the NULL of a row without a lifetime of its
# own and of a promotion without a maximum lifetime). The snapshot predates any
# concurrent commit the UPDATE waited for, so that row may be out of date (see Promoted).
_PROMOTE_RETURNING = f"""
WITH promoted AS (
    UPDATE session_info SET refresh_token_hash_2 = %(new)s, prev_refresh_token_hash_2 = %(expected)s,
        rotated_at = %(now)s, last_active_at = %(now)s,
        last_ip = COALESCE(%(ip)s::text, last_ip),
        last_user_agent = COALESCE(%(agent)s::text, last_user_agent),
        expires_at = LEAST(%(deadline)s::bigint, %(now)s::bigint + refresh_validity,
            created_at_time + %(life)s::bigint)
    WHERE session_handle = %(handle)s AND user_id = %(user)s AND refresh_token_hash_2 = %(expected)s
        AND expires_at >= %(now)s::bigint
        AND (%(life)s::bigint IS NULL OR created_at_time + %(life)s::bigint >= %(now)s::bigint)
        AND (%(limit)s::bigint IS NULL OR length(jwt_user_payload::text) <= %(limit)s::bigint)
    RETURNING {_SELECT_COLUMNS}
)
SELECT TRUE, * FROM promoted
UNION ALL
SELECT FALSE, {_SELECT_COLUMNS} FROM session_info
WHERE session_handle = %(handle)s AND NOT EXISTS (SELECT 1 FROM promoted)
"""


def promote_returning(promotion: Promotion) -> Operation[Promoted]:
    """The compare-and-set of ``promotion`` and the resulting (or found) row, in one statement."""
    found = yield Query(
        _PROMOTE_RETURNING,
        promotion.sql_parameters(),
        "one",
    )
    if found is None:
        return Promoted(False, None)
    return Promoted(bool(found[0]), session_row_from_columns(tuple(found[1:])))


def _handles(rows: list[tuple[Any, ...]]) -> list[str]:
    return [str(row[0]) for row in rows]


def delete_sessions(handles: list[str]) -> Operation[list[str]]:
    """Delete these sessions; return the handles that existed."""
    if not handles:
        return []
    rows = yield Query(
        "DELETE FROM session_info WHERE session_handle = ANY(%s) RETURNING session_handle",
        (list(dict.fromkeys(handles)),),
        "all",
    )
    found = set(_handles(rows))
    return [handle for handle in dict.fromkeys(handles) if handle in found]


def delete_sessions_for_user(user_id: str) -> Operation[list[str]]:
    """Delete every session of ``user_id``; return their handles."""
    rows = yield Query(
        "DELETE FROM session_info WHERE user_id = %s RETURNING session_handle", (user_id,), "all"
    )
    return _handles(rows)


def delete_other_sessions(user_id: str, keep: str) -> Operation[list[str]]:
    """Delete every session of ``user_id`` except ``keep`` (one statement); their handles."""
    rows = yield Query(
        "DELETE FROM session_info WHERE user_id = %s AND session_handle <> %s RETURNING session_handle",
        (user_id, keep),
        "all",
    )
    return _handles(rows)


def get_sessions_for_user(user_id: str, now: int) -> Operation[list[SessionRow]]:
    """The rows of ``user_id``'s sessions that have not expired at ``now``."""
    rows = yield Query(
        f"SELECT {_SELECT_COLUMNS} FROM session_info WHERE user_id = %s AND expires_at >= %s "
        'ORDER BY created_at_time, session_handle COLLATE "C"',
        (user_id, now),
        "all",
    )
    return [session_row_from_columns(tuple(row)) for row in rows]


def update_auth_time(handle: str, auth_time: int) -> Operation[bool]:
    """Set ``auth_time`` and ``last_active_at``; return whether the session exists."""
    changed = yield Query(
        "UPDATE session_info SET auth_time = %s, last_active_at = %s WHERE session_handle = %s",
        (auth_time, auth_time, handle),
    )
    return bool(changed == 1)


def get_handles_for_user(user_id: str, now: int) -> Operation[list[str]]:
    """Handles of ``user_id``'s sessions that have not expired at ``now``."""
    rows = yield Query(
        "SELECT session_handle FROM session_info WHERE user_id = %s AND expires_at >= %s "
        'ORDER BY created_at_time, session_handle COLLATE "C"',
        (user_id, now),
        "all",
    )
    return _handles(rows)


def update_json(column: str, handle: str, value: dict[str, Any]) -> Operation[bool]:
    """Overwrite a JSON ``column`` of a session; return whether the session exists."""
    changed = yield Query(
        f"UPDATE session_info SET {column} = %s WHERE session_handle = %s", (dumps_compact(value), handle)
    )
    return bool(changed == 1)


def delete_expired(now: int) -> Operation[list[tuple[str, str]]]:
    """Delete rows with ``expires_at < now``; return ``(handle, user_id)`` of each."""
    rows = yield Query(
        "DELETE FROM session_info WHERE expires_at < %s RETURNING session_handle, user_id", (now,), "all"
    )
    return [(str(handle), str(user_id)) for handle, user_id in rows]


def load_keys(prefix: str) -> Operation[list[StoredKey]]:
    """All key-value entries whose name starts with ``prefix``."""
    rows = yield Query(
        f'SELECT {_KEY_COLUMNS} FROM key_value WHERE starts_with(name, %s) ORDER BY name COLLATE "C"',
        (prefix,),
        "all",
    )
    return [StoredKey(*row) for row in rows]


def insert_key_if_absent(key: StoredKey) -> Operation[StoredKey]:
    """Insert ``key`` unless its name exists; return the entry now stored."""
    while True:  # repeats only if the winner was deleted between the two statements
        yield Query(
            f"INSERT INTO key_value ({_KEY_COLUMNS}) VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING",
            (key.name, key.value, key.created_at_time),
        )
        stored = yield Query(f"SELECT {_KEY_COLUMNS} FROM key_value WHERE name = %s", (key.name,), "one")
        if stored is not None:
            return StoredKey(*stored)


def delete_keys(names: list[str]) -> Operation[None]:
    """Delete key-value entries by name."""
    if names:
        yield Query("DELETE FROM key_value WHERE name = ANY(%s)", (list(names),))
