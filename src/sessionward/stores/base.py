"""The store interface: a handful of atomic operations every backend implements.

The engine never composes a read-modify-write out of several calls: each method below is
atomic in every store, and ``promote_returning`` is a compare-and-set on
``refresh_token_hash_2``.
Sync stores implement :class:`Store`; async stores implement :class:`AsyncStore`, with the
same method names returning awaitables. Failures to reach the backend raise
:class:`~sessionward.errors.StorageUnavailableError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..errors import GeneralError
from ..tokens.encoding import dumps_compact

__all__ = [
    "SESSION_COLUMNS",
    "AsyncStore",
    "CorruptSessionRowError",
    "Promoted",
    "Promotion",
    "SessionRow",
    "Store",
    "StoredKey",
    "json_object",
    "jwt_payload_text",
    "session_data_text",
    "session_insert_columns",
    "session_row_from_columns",
    "session_row_insert_values",
    "session_row_to_columns",
]


class CorruptSessionRowError(GeneralError):
    """A stored session that cannot be decoded (damaged JSON, missing fields)."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as stored (times in ms since the epoch).

    ``refresh_validity`` is the session's own idle lifetime in ms (``None``: the
    configured ``refresh_token_validity``); it can only be shorter than the configured one.
    ``persistent=False`` marks a session whose cookies end with the browser session. The
    client's IP address and user agent are kept as seen at creation (``created_*``) and at
    the latest promotion (``last_*``).

    ``session_data_json`` and ``jwt_user_payload_json``, when set, are the compact JSON of
    the two dicts (:func:`~sessionward.tokens.encoding.dumps_compact`), which the engine has
    already computed for a new row: stores write them (:func:`session_row_to_columns`)
    instead of serialising again. They take no part in comparisons.
    """

    session_handle: str
    user_id: str
    refresh_token_hash_2: str
    prev_refresh_token_hash_2: str | None
    rotated_at: int | None
    session_data: dict[str, Any]
    jwt_user_payload: dict[str, Any]
    created_at_time: int
    expires_at: int
    session_data_json: str | None = field(default=None, compare=False, repr=False)
    jwt_user_payload_json: str | None = field(default=None, compare=False, repr=False)
    # Metadata (schema version 2). Rows written by an older version read as the defaults:
    # active and authenticated when created, persistent, the configured refresh lifetime,
    # no client recorded.
    last_active_at: int | None = None
    auth_time: int | None = None
    persistent: bool = True
    refresh_validity: int | None = None
    created_ip: str | None = None
    created_user_agent: str | None = None
    last_ip: str | None = None
    last_user_agent: str | None = None

    @property
    def active_at(self) -> int:
        """When the session was last active: ``last_active_at``, else its creation."""
        return self.created_at_time if self.last_active_at is None else self.last_active_at

    @property
    def authenticated_at(self) -> int:
        """When the user last proved who they are: ``auth_time``, else the creation."""
        return self.created_at_time if self.auth_time is None else self.auth_time


def json_object(text: str) -> dict[str, Any]:
    """Decode a stored JSON column that must hold an object (``ValueError`` otherwise)."""
    value = json.loads(text)
    if type(value) is not dict:
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def session_data_text(row: SessionRow) -> str:
    """The compact JSON of ``row.session_data`` (serialised only if the row lacks it)."""
    text = row.session_data_json
    return dumps_compact(row.session_data) if text is None else text


def jwt_payload_text(row: SessionRow) -> str:
    """The compact JSON of ``row.jwt_user_payload`` (serialised only if the row lacks it)."""
    text = row.jwt_user_payload_json
    return dumps_compact(row.jwt_user_payload) if text is None else text


SESSION_COLUMNS: tuple[str, ...] = (
    "session_handle",
    "user_id",
    "refresh_token_hash_2",
    "prev_refresh_token_hash_2",
    "rotated_at",
    "session_data",
    "jwt_user_payload",
    "created_at_time",
    "expires_at",
    "last_active_at",
    "auth_time",
    "persistent",
    "refresh_validity",
    "created_ip",
    "created_user_agent",
    "last_ip",
    "last_user_agent",
)
"""The ``session_info`` columns in the order of :func:`session_row_to_columns` (the
metadata columns from ``last_active_at`` on are added by schema version 2)."""
_METADATA_COLUMNS = len(SESSION_COLUMNS) - 9


def session_row_to_columns(row: SessionRow) -> tuple[str | int | bool | None, ...]:
    """The ``session_info`` columns of ``row`` in :data:`SESSION_COLUMNS` order, the two
    JSON columns as compact text (the inverse of :func:`session_row_from_columns`)."""
    return (
        row.session_handle,
        row.user_id,
        row.refresh_token_hash_2,
        row.prev_refresh_token_hash_2,
        row.rotated_at,
        session_data_text(row),
        jwt_payload_text(row),
        row.created_at_time,
        row.expires_at,
        row.last_active_at,
        row.auth_time,
        row.persistent,
        row.refresh_validity,
        row.created_ip,
        row.created_user_agent,
        row.last_ip,
        row.last_user_agent,
    )


#: The columns an ``INSERT`` of a new row always names, in the order of
#: :func:`session_row_insert_values`.
_INSERT_REQUIRED = (
    "session_handle",
    "user_id",
    "refresh_token_hash_2",
    "session_data",
    "jwt_user_payload",
    "created_at_time",
    "expires_at",
)
#: The columns an ``INSERT`` names only when the row sets them (bit ``1 << i`` of the mask
#: of :func:`session_row_insert_values` for the ``i``-th): left out, each takes its
#: schema default, which is the value the row holds then (``NULL``; 1 for ``persistent``).
_INSERT_OPTIONAL = (
    "prev_refresh_token_hash_2",
    "rotated_at",
    "last_active_at",
    "auth_time",
    "persistent",
    "refresh_validity",
    "created_ip",
    "created_user_agent",
    "last_ip",
    "last_user_agent",
)


def session_row_insert_values(row: SessionRow) -> tuple[int, list[Any]]:
    """What an ``INSERT`` of ``row`` binds: a mask naming the optional columns it sets (see
    :func:`session_insert_columns`) and the values of those columns, in that order.

    Columns left at their default are not named at all (``None`` values, and ``persistent``
    when true): binding ``None`` or a ``bool`` costs the SQLite driver an adaptation per
    value, on every login. The JSON columns are compact text, as in
    :func:`session_row_to_columns`.
    """
    session_data = row.session_data_json
    payload = row.jwt_user_payload_json
    values: list[Any] = [
        row.session_handle,
        row.user_id,
        row.refresh_token_hash_2,
        dumps_compact(row.session_data) if session_data is None else session_data,
        dumps_compact(row.jwt_user_payload) if payload is None else payload,
        row.created_at_time,
        row.expires_at,
    ]
    mask = 0
    # Unrolled: one test per column is cheaper than a loop over the field names.
    if row.prev_refresh_token_hash_2 is not None:
        mask |= 1
        values.append(row.prev_refresh_token_hash_2)
    if row.rotated_at is not None:
        mask |= 2
        values.append(row.rotated_at)
    if row.last_active_at is not None:
        mask |= 4
        values.append(row.last_active_at)
    if row.auth_time is not None:
        mask |= 8
        values.append(row.auth_time)
    persistent = row.persistent
    if persistent is not True:
        mask |= 16
        values.append(0 if persistent is False else persistent)
    if row.refresh_validity is not None:
        mask |= 32
        values.append(row.refresh_validity)
    if row.created_ip is not None:
        mask |= 64
        values.append(row.created_ip)
    if row.created_user_agent is not None:
        mask |= 128
        values.append(row.created_user_agent)
    if row.last_ip is not None:
        mask |= 256
        values.append(row.last_ip)
    if row.last_user_agent is not None:
        mask |= 512
        values.append(row.last_user_agent)
    return mask, values


def session_insert_columns(mask: int) -> tuple[str, ...]:
    """The columns an ``INSERT`` names for a ``mask`` of :func:`session_row_insert_values`,
    in the order of its values."""
    return (*_INSERT_REQUIRED, *(name for i, name in enumerate(_INSERT_OPTIONAL) if mask >> i & 1))


def session_row_from_columns(values: tuple[Any, ...]) -> SessionRow:
    """A :class:`SessionRow` from the ``session_info`` columns in :data:`SESSION_COLUMNS`
    order, the two JSON columns as text; corrupt JSON is a ``GeneralError`` naming the
    session. Only the first nine columns are required: missing metadata columns read as
    the defaults (a ``persistent`` of ``None`` too)."""
    try:
        session_data, jwt_payload = json_object(values[5]), json_object(values[6])
    except (TypeError, ValueError) as exc:
        raise CorruptSessionRowError(f"session row {values[0]} holds corrupt JSON") from exc
    metadata = values[9:]
    if len(metadata) != _METADATA_COLUMNS:
        # A row of an older schema: the missing metadata columns read as the defaults.
        metadata = (*metadata, *(None,) * (_METADATA_COLUMNS - len(metadata)))[:_METADATA_COLUMNS]
    persistent = metadata[2]
    # Positionally (a row is read on every refresh): after the two JSON texts, the fields
    # follow SESSION_COLUMNS[9:] in order.
    return SessionRow(
        values[0],
        values[1],
        values[2],
        values[3],
        values[4],
        session_data,
        jwt_payload,
        values[7],
        values[8],
        None,
        None,
        metadata[0],
        metadata[1],
        True if persistent is None else bool(persistent),
        *metadata[3:],
    )


@dataclass(frozen=True, slots=True)
class Promotion:
    """A compare-and-set that commits a rotation, with the checks the engine would
    otherwise make on a row read first (times in ms since the epoch).

    The store changes the row only if all of these hold: it exists with this ``user_id``;
    its ``refresh_token_hash_2`` is ``expected_hash_2``; it is alive at ``now``
    (``now <= expires_at`` and, with ``max_lifetime`` set,
    ``now <= created_at_time + max_lifetime``); and, with ``max_payload_json`` set, its
    stored JWT payload JSON is at most that many characters long. It then sets
    ``refresh_token_hash_2`` to ``new_hash_2``, ``prev_refresh_token_hash_2`` to
    ``expected_hash_2``, ``rotated_at`` and ``last_active_at`` to ``now``, ``expires_at``
    to :meth:`deadline` of the row, and, when given, ``last_ip`` and ``last_user_agent``
    to ``ip`` and ``user_agent``.
    """

    handle: str
    user_id: str
    expected_hash_2: str
    new_hash_2: str
    now: int
    expires_at: int
    max_lifetime: int | None = None
    max_payload_json: int | None = None
    ip: str | None = None
    user_agent: str | None = None

    def sql_parameters(self) -> dict[str, str | int | None]:
        """The named parameters of the SQL stores' conditional ``UPDATE … RETURNING``."""
        return {
            "new": self.new_hash_2,
            "expected": self.expected_hash_2,
            "now": self.now,
            "deadline": self.expires_at,
            "life": self.max_lifetime,
            "limit": self.max_payload_json,
            "handle": self.handle,
            "user": self.user_id,
            "ip": self.ip,
            "agent": self.user_agent,
        }

    def deadline(self, created_at_time: int, refresh_validity: int | None = None) -> int:
        """The ``expires_at`` a successful promotion writes for a row created then with
        that ``refresh_validity``: ``expires_at``, shortened to ``now + refresh_validity``
        when the row has its own lifetime, capped at ``created_at_time + max_lifetime``."""
        deadline = self.expires_at
        if refresh_validity is not None:
            deadline = min(deadline, self.now + refresh_validity)
        if self.max_lifetime is not None:
            deadline = min(deadline, created_at_time + self.max_lifetime)
        return deadline


class Promoted(NamedTuple):
    """The outcome of :meth:`Store.promote_returning`.

    ``changed``: whether this call changed the row. ``row``: the row after the change; or,
    when nothing changed, the row as the store found it (``None`` if there is none). A
    store may return that row as of the start of its atomic operation, so a row that
    still satisfies the promotion after ``changed=False`` means: look again.
    """

    changed: bool
    row: SessionRow | None


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One entry of the ``key_value`` table."""

    name: str
    value: str
    created_at_time: int


class Store(Protocol):
    """Synchronous store operations (see the module docstring)."""

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in place."""
        ...

    def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` if the schema is not current."""
        ...

    def insert_session(self, row: SessionRow) -> None:
        """Insert a new session row."""
        ...

    def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        ...

    def promote_returning(self, promotion: Promotion) -> Promoted:
        """The compare-and-set of ``promotion`` (see :class:`Promotion`), answering with the
        row in the same round trip: whether it changed, and the row after the change or
        as found. One atomic operation; nothing is written when a condition fails."""
        ...

    def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        ...

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        ...

    def delete_other_sessions(self, user_id: str, keep: str) -> list[str]:
        """Delete every session of ``user_id`` except ``keep``, in one atomic operation;
        return the handles deleted."""
        ...

    def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]:
        """The rows of ``user_id``'s sessions that have not expired at ``now`` (any order)."""
        ...

    def update_auth_time(self, handle: str, auth_time: int) -> bool:
        """Set ``auth_time`` (and ``last_active_at``) to ``auth_time``; return whether the
        session exists."""
        ...

    def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        """Handles of ``user_id``'s sessions that have not expired at ``now``."""
        ...

    def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        """Overwrite session data; return whether the session exists."""
        ...

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        """Overwrite the JWT payload; return whether the session exists."""
        ...

    def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]:
        """Delete rows with ``expires_at < now``; return ``(handle, user_id)`` of each
        (a store whose backend expires rows by itself returns those it still indexed)."""
        ...

    def load_keys(self, prefix: str) -> list[StoredKey]:
        """All key-value entries whose name starts with ``prefix``."""
        ...

    def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        """Insert ``key`` unless its name exists; return the entry now stored."""
        ...

    def delete_keys(self, names: list[str]) -> None:
        """Delete key-value entries by name."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AsyncStore(Protocol):
    """The operations of :class:`Store`, as coroutines."""

    async def migrate(self) -> int: ...
    async def check_schema(self) -> None: ...
    async def insert_session(self, row: SessionRow) -> None: ...
    async def get_session(self, handle: str) -> SessionRow | None: ...
    async def promote_returning(self, promotion: Promotion) -> Promoted: ...
    async def delete_sessions(self, handles: list[str]) -> list[str]: ...
    async def delete_sessions_for_user(self, user_id: str) -> list[str]: ...
    async def delete_other_sessions(self, user_id: str, keep: str) -> list[str]: ...
    async def get_sessions_for_user(self, user_id: str, now: int) -> list[SessionRow]: ...
    async def update_auth_time(self, handle: str, auth_time: int) -> bool: ...
    async def get_handles_for_user(self, user_id: str, now: int) -> list[str]: ...
    async def update_session_data(self, handle: str, data: dict[str, Any]) -> bool: ...
    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool: ...
    async def delete_expired_sessions(self, now: int) -> list[tuple[str, str]]: ...
    async def load_keys(self, prefix: str) -> list[StoredKey]: ...
    async def insert_key_if_absent(self, key: StoredKey) -> StoredKey: ...
    async def delete_keys(self, names: list[str]) -> None: ...
    async def close(self) -> None: ...
