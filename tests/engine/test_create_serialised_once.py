"""Create serialises the JWT payload once and reuses the text: the tokens and the row it
produces are exactly those of serialising each time."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from sessionward.engine.core import new_handle
from sessionward.stores.base import SessionRow, session_row_to_columns
from sessionward.tokens.access import AccessTokenCodec
from sessionward.tokens.encoding import dumps_compact
from sessionward.tokens.front import front_token
from sessionward.tokens.keys import generate_signing_key

PAYLOADS: list[dict[str, Any]] = [
    {},
    {"role": "admin", "scopes": ["a", "b"], "n": 1, "x": 1.5, "t": True, "z": None},
    {"é": "ünïcode ✓", "nested": {"deep": [{"k": "v"}]}, "big": 2**70},
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
@pytest.mark.parametrize("csrf", [None, "c5rf-T0ken_"])
@pytest.mark.parametrize("parent", [None, "p" * 64])
def test_access_token_with_payload_json_is_byte_identical(
    payload: dict[str, Any], alg: str, csrf: str | None, parent: str | None
) -> None:
    codec = AccessTokenCodec(alg, 0)
    key = generate_signing_key(alg, 0)
    codec.set_keys([key])
    fields: dict[str, Any] = {
        "user_id": 'usér "quoted"',
        "session_handle": "h-1",
        "refresh_token_hash1": "a" * 64,
        "parent_refresh_token_hash1": parent,
        "user_data": payload,
        "anti_csrf_token": csrf,
        "issued_at": 1_700_000_000,
        "expires_at": 1_700_003_600,
    }
    plain = codec.encode(key, **fields)
    spliced = codec.encode(key, **fields, user_data_json=dumps_compact(payload))
    if alg == "HS256":  # deterministic signature: the whole token is identical
        assert spliced == plain
    else:
        assert spliced.rsplit(".", 1)[0] == plain.rsplit(".", 1)[0]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_front_token_with_payload_json_is_identical(payload: dict[str, Any]) -> None:
    for user in ("alice", 'usér "q"'):
        assert front_token(user, 1_700_000_000_123, payload, dumps_compact(payload)) == front_token(
            user, 1_700_000_000_123, payload
        )


def test_row_columns_use_the_text_the_engine_already_has() -> None:
    payload = {"role": "admin"}
    row = SessionRow("h", "u", "x" * 64, None, None, {}, payload, 1, 2)
    with_text = SessionRow("h", "u", "x" * 64, None, None, {}, payload, 1, 2, "{}", dumps_compact(payload))
    assert with_text == row  # the cached text takes no part in comparisons
    assert session_row_to_columns(with_text) == session_row_to_columns(row)


def test_new_handle_is_a_canonical_version_4_uuid() -> None:
    pairs = {new_handle() for _ in range(2000)}
    assert len(pairs) == 2000
    for handle, raw in pairs:
        parsed = uuid.UUID(handle)
        assert str(parsed) == handle and parsed.bytes == raw
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", handle)
