"""The store operations as calls of the Lua scripts in :mod:`.scripts`: which script, with
which arguments, and how its reply decodes. Shared by the sync and the async store.

A session hash expires by itself ``expires_at - created_at_time`` ms after insertion, and
again ``expires_at - now`` ms after each promotion (durations in the caller's clock, so
clock skew between the application hosts and Redis does not shorten sessions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ...errors import GeneralError
from ...tokens.encoding import dumps_compact
from ..base import (
    CorruptSessionRowError,
    Promoted,
    Promotion,
    SessionRow,
    StoredKey,
    json_object,
    jwt_payload_text,
    session_data_text,
)

T = TypeVar("T")
#: Version of the key layout that ``migrate`` records (the Redis analogue of a schema).
#: 2 added the session metadata fields, which hashes written under version 1 lack (they
#: read as the defaults), so migrating from 1 only records the new version.
LAYOUT_VERSION = 2
_SWEEP_BATCH = 500
_REQUIRED_FIELDS = ("user_id", "refresh_token_hash_2", "created_at_time", "expires_at")


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """One script call: its name, its arguments after the key prefix, and how to decode its
    reply. ``script`` ``None``: nothing to ask the server, the result is ``decode(None)``."""

    script: str | None
    args: tuple[str | int, ...]
    decode: Callable[[Any], T]


def _int(value: Any) -> int:
    return int(value)


def _bool(value: Any) -> bool:
    return bool(value)


def _none(value: Any) -> None:
    return None


def _no_handles(value: Any) -> list[str]:
    return []


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value]


def _by_creation(value: Any) -> list[str]:
    pairs = [(int(value[i + 1]), str(value[i])) for i in range(0, len(value), 2)]
    return [handle for _, handle in sorted(pairs)]


def _optional_int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name)
    return None if value is None else int(value)


def _persistent(fields: dict[str, str]) -> bool:
    value = fields.get("persistent", "1")
    if value not in ("0", "1"):
        raise ValueError(f"persistent must be 0 or 1, got {value!r}")
    return value == "1"


def _decode_row(flat: Any) -> SessionRow | None:
    if not flat:
        return None
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    handle = "?"
    try:
        if any(name not in fields for name in _REQUIRED_FIELDS):
            raise KeyError("missing field")
        handle = fields.get("session_handle", handle)
        return SessionRow(
            session_handle=fields["session_handle"],
            user_id=fields["user_id"],
            refresh_token_hash_2=fields["refresh_token_hash_2"],
            prev_refresh_token_hash_2=fields.get("prev_refresh_token_hash_2"),
            rotated_at=_optional_int(fields, "rotated_at"),
            session_data=json_object(fields.get("session_data", "{}")),
            jwt_user_payload=json_object(fields.get("jwt_user_payload", "{}")),
            created_at_time=int(fields["created_at_time"]),
            expires_at=int(fields["expires_at"]),
            last_active_at=_optional_int(fields, "last_active_at"),
            auth_time=_optional_int(fields, "auth_time"),
            persistent=_persistent(fields),
            refresh_validity=_optional_int(fields, "refresh_validity"),
            created_ip=fields.get("created_ip"),
            created_user_agent=fields.get("created_user_agent"),
            last_ip=fields.get("last_ip"),
            last_user_agent=fields.get("last_user_agent"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptSessionRowError(f"session hash {handle} is corrupt") from exc


def _decode_rows(replies: Any) -> list[SessionRow]:
    rows = (_decode_row(flat) for flat in replies)
    return [row for row in rows if row is not None]


def _decode_pairs(reply: Any) -> tuple[list[tuple[str, str]], bool]:
    flat, examined = reply
    pairs = [(str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)]
    return pairs, int(examined) >= _SWEEP_BATCH


def _decode_keys(flat: Any) -> list[StoredKey]:
    return [StoredKey(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]


def _ttl(expires_at: int, reference: int) -> int:
    """Milliseconds a session hash lives: until ``expires_at``, at least 1 (PEXPIRE ≤ 0 deletes)."""
    return max(1, expires_at - reference)


def _check_version(found: Any) -> None:
    version = int(found) if found is not None and str(found).isdigit() else 0
    if version != LAYOUT_VERSION:
        raise GeneralError(
            f"the session store schema is at version {version}, sessionward needs "
            f"{LAYOUT_VERSION}: run `sessionward migrate --store URL` (or set auto_migrate=True)"
        )


def migrate() -> Op[int]:
    """Record the layout version; return it."""
    return Op("migrate", (LAYOUT_VERSION,), _int)


def check_schema() -> Op[None]:
    """Raise ``GeneralError`` naming ``sessionward migrate`` unless the layout is current."""
    return Op("schema_version", (), _check_version)


def insert_session(row: SessionRow) -> Op[None]:
    """Insert a new session hash (with its TTL) and index it."""
    pairs: list[str | int] = [
        "session_handle",
        row.session_handle,
        "user_id",
        row.user_id,
        "refresh_token_hash_2",
        row.refresh_token_hash_2,
        "session_data",
        session_data_text(row),
        "jwt_user_payload",
        jwt_payload_text(row),
        "created_at_time",
        row.created_at_time,
        "expires_at",
        row.expires_at,
    ]
    optional: tuple[tuple[str, str | int | None], ...] = (
        ("prev_refresh_token_hash_2", row.prev_refresh_token_hash_2),
        ("rotated_at", row.rotated_at),
        ("last_active_at", row.last_active_at),
        ("auth_time", row.auth_time),
        ("refresh_validity", row.refresh_validity),
        ("created_ip", row.created_ip),
        ("created_user_agent", row.created_user_agent),
        ("last_ip", row.last_ip),
        ("last_user_agent", row.last_user_agent),
    )
    pairs += ["persistent", "1" if row.persistent else "0"]
    for name, value in optional:
        if value is not None:
            pairs += [name, value]
    head = (
        row.session_handle,
        row.user_id,
        _ttl(row.expires_at, row.created_at_time),
        row.expires_at,
        row.created_at_time,
        row.refresh_token_hash_2,
    )
    return Op("insert", (*head, *pairs), _none)


def get_session(handle: str) -> Op[SessionRow | None]:
    """The row of ``handle``, or ``None``."""
    return Op("get", (handle,), _decode_row)


def _decode_promoted(reply: Any) -> Promoted:
    return Promoted(bool(int(reply[0])), _decode_row(reply[1]))


def _optional(value: int | None) -> str | int:
    return "" if value is None else value


def _given(value: str | None) -> str:
    """A text argument that may be absent: ``""`` for ``None``, else ``"="`` and the text."""
    return "" if value is None else "=" + value


def promote_returning(promotion: Promotion) -> Op[Promoted]:
    """The compare-and-set of ``promotion`` and the resulting (or found) row, in one script."""
    return Op(
        "promote_returning",
        (
            promotion.handle,
            promotion.user_id,
            promotion.expected_hash_2,
            promotion.new_hash_2,
            promotion.now,
            promotion.expires_at,
            _optional(promotion.max_lifetime),
            _optional(promotion.max_payload_json),
            _given(promotion.ip),
            _given(promotion.user_agent),
        ),
        _decode_promoted,
    )


def delete_sessions(handles: list[str]) -> Op[list[str]]:
    """Delete these sessions; return the handles that existed."""
    if not handles:
        return Op(None, (), _no_handles)
    return Op("delete", tuple(dict.fromkeys(handles)), _strings)


def delete_sessions_for_user(user_id: str) -> Op[list[str]]:
    """Delete every session of ``user_id``; return their handles, oldest first."""
    return Op("delete_for_user", (user_id,), _by_creation)


def delete_other_sessions(user_id: str, keep: str) -> Op[list[str]]:
    """Delete every session of ``user_id`` except ``keep`` (one script); their handles."""
    return Op("delete_others", (user_id, keep), _by_creation)


def get_sessions_for_user(user_id: str, now: int) -> Op[list[SessionRow]]:
    """The rows of ``user_id``'s sessions that have not expired at ``now`` (any order)."""
    return Op("sessions_for_user", (user_id, now), _decode_rows)


def update_auth_time(handle: str, auth_time: int) -> Op[bool]:
    """Set ``auth_time`` and ``last_active_at``; return whether the session exists."""
    return Op("update_field", (handle, "auth_time", auth_time, "last_active_at", auth_time), _bool)


def get_handles_for_user(user_id: str, now: int) -> Op[list[str]]:
    """Handles of ``user_id``'s sessions that have not expired at ``now``, oldest first."""
    return Op("handles_for_user", (user_id, now), _by_creation)


def update_json(field_name: str, handle: str, value: dict[str, Any]) -> Op[bool]:
    """Overwrite a JSON field of a session; return whether the session exists."""
    return Op("update_field", (handle, field_name, dumps_compact(value)), _bool)


def sweep(now: int) -> Op[tuple[list[tuple[str, str]], bool]]:
    """Delete one batch of expired sessions: ``(handle, user_id)`` of each expired index
    entry removed (its hash may already have been expired by Redis), and whether more may
    be left."""
    return Op("sweep", (now, _SWEEP_BATCH), _decode_pairs)


def load_keys(prefix: str) -> Op[list[StoredKey]]:
    """All key-value entries whose name starts with ``prefix``."""
    return Op("load_keys", (prefix,), _decode_keys)


def insert_key_if_absent(key: StoredKey) -> Op[StoredKey]:
    """Insert ``key`` unless its name exists; return the entry now stored."""
    name = key.name
    args = (name, key.value, key.created_at_time)
    return Op("insert_key", args, lambda r: StoredKey(name, r[0], int(r[1])))


def delete_keys(names: list[str]) -> Op[None]:
    """Delete key-value entries by name."""
    if not names:
        return Op(None, (), _none)
    return Op("delete_keys", tuple(names), _none)
