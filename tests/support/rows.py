"""Session rows for store-level tests."""

from __future__ import annotations

import time
from typing import Any

from sessionward.stores.base import SessionRow


def now_ms() -> int:
    """The current time in ms since the epoch, as the stores keep it."""
    return int(time.time() * 1000)


def make_row(
    handle: str = "h1",
    user_id: str = "alice",
    hash2: str = "hash-a",
    created: int | None = None,
    expires: int | None = None,
    data: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    *,
    lifetime_ms: int = 3_600_000,
) -> SessionRow:
    """A session row (data with nesting and non-ASCII text), created now unless ``created``
    says otherwise and expiring ``lifetime_ms`` after its creation unless ``expires`` does."""
    created = now_ms() if created is None else created
    return SessionRow(
        session_handle=handle,
        user_id=user_id,
        refresh_token_hash_2=hash2,
        prev_refresh_token_hash_2=None,
        rotated_at=None,
        session_data={"secret": [1, 2, {"x": None}], "ü": "ß"} if data is None else data,
        jwt_user_payload={"role": "admin", "n": 1.5, "ok": True} if payload is None else payload,
        created_at_time=created,
        expires_at=created + lifetime_ms if expires is None else expires,
    )
