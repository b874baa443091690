"""Create serialises the JWT payload once and reuses the text: the tokens and the row it
produces are exactly those of serialising each time."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionward import Config, SessionWard
from sessionward.engine.core import new_handle
from sessionward.stores.base import SessionRow, session_row_to_columns
from sessionward.tokens.access import AccessTokenCodec
from sessionward.tokens.encoding import dumps_compact
from sessionward.tokens.front import front_token
from sessionward.tokens.keys import generate_signing_key
from sessionward.tokens.refresh import (
    ID_REFRESH_BYTES,
    ROOT_LINK_BYTES,
    RefreshTokenCodec,
    RefreshTokenContent,
    new_id_refresh_token,
)

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


def test_new_handle_from_given_random_bytes() -> None:
    random = bytes(range(200, 216))
    handle, raw = new_handle(random)
    assert raw == uuid.UUID(bytes=random, version=4).bytes
    assert handle == str(uuid.UUID(bytes=random, version=4))
    with pytest.raises(ValueError, match="16 random bytes"):
        new_handle(random[:15])


def test_id_refresh_token_and_root_link_from_given_random_bytes() -> None:
    random = bytes(range(ID_REFRESH_BYTES))
    assert new_id_refresh_token(random) == base64.urlsafe_b64encode(random).rstrip(b"=").decode()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", new_id_refresh_token())
    with pytest.raises(ValueError, match="random bytes"):
        new_id_refresh_token(random + b"x")
    codec = RefreshTokenCodec(bytes(64))
    handle, raw = new_handle()
    link = bytes(range(ROOT_LINK_BYTES))
    token = codec.new_root(handle, "alice", raw, link)
    assert token == codec.new_root(handle, "alice", None, link)  # AES-SIV: deterministic
    assert token != codec.new_root(handle, "alice", raw)
    assert codec.decrypt(token) == RefreshTokenContent(handle, "alice", None)
    with pytest.raises(ValueError, match="random bytes"):
        codec.new_root(handle, "alice", raw, link[:-1])


def test_each_random_value_of_a_session_is_its_own(tmp_path: Path) -> None:
    """Create reads the handle, the refresh token's link and the idRefresh token in one
    read: they are distinct slices, and nothing repeats across sessions."""
    with SessionWard(Config(store=f"sqlite:///{tmp_path}/s.db")) as engine:
        created = [engine.create_new_session(f"user-{i}") for i in range(200)]
    handles = {t.handle for t in created}
    id_refresh = {t.id_refresh_token.value for t in created}
    refresh = {t.refresh_token.value for t in created}
    assert len(handles) == len(id_refresh) == len(refresh) == 200
    for tokens in created:
        handle_bytes = uuid.UUID(tokens.handle).bytes
        id_bytes = base64.urlsafe_b64decode(tokens.id_refresh_token.value + "=" * 4)
        assert handle_bytes[:6] not in id_bytes
