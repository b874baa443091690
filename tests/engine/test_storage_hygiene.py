"""The store keeps only H(H(refresh token)) (docs/design/security.md).

After logins, refreshes, promotions, grace-window reuse and revocations, the raw bytes of
the SQLite database file and its WAL contain no refresh token and no H(refresh token) —
as text or as raw digest — and no anti-CSRF, idRefresh or access token; the double hashes
of the committed tokens are there.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from support.clock import FakeClock
from support.tokens import h

from sessionward import Config, SessionTokens, SessionWard, TokenTheftDetectedError


def raw_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            data += candidate.read_bytes()
    return data


def forbidden_forms(token: str) -> list[bytes]:
    digest = hashlib.sha256(token.encode()).digest()
    return [token.encode(), digest.hex().encode(), digest.hex().upper().encode(), digest]


@pytest.mark.parametrize("anti_csrf", [False, True])
def test_database_holds_only_double_hashes(tmp_path: Path, anti_csrf: bool) -> None:
    path = tmp_path / "sessions.db"
    clock = FakeClock()
    config = Config(
        store=f"sqlite:///{path}",
        access_token_algorithm="HS256",
        access_token_validity=60,
        refresh_token_validity=600,
        refresh_token_reuse_grace_period=10,
        enable_anti_csrf=anti_csrf,
    )
    issued: list[SessionTokens] = []
    access_tokens: list[str] = []
    committed: dict[str, str] = {}  # handle -> current committed refresh token
    previous: dict[str, str] = {}
    engine = SessionWard(config, clock=clock)
    try:
        for user in range(6):
            tokens = engine.create_new_session(f"user{user}", {"u": user}, {"secret": user})
            issued.append(tokens)
            committed[tokens.handle] = tokens.refresh_token.value
            current = tokens
            for generation in range(3):
                clock.now += 1
                refreshed = engine.refresh_session(current.refresh_token.value)  # R2
                issued.append(refreshed)
                if generation % 2 == 0:
                    verified = engine.get_session(refreshed.access_token.value)  # V1
                    assert verified.new_access_token is not None
                    access_tokens.append(verified.new_access_token.value)
                else:
                    issued.append(engine.refresh_session(refreshed.refresh_token.value))  # R3
                previous[tokens.handle] = committed[tokens.handle]
                committed[tokens.handle] = refreshed.refresh_token.value
                current = refreshed
            # The predecessor inside the grace window (R4).
            issued.append(engine.refresh_session(previous[tokens.handle]))
        # A stolen token and a revocation delete rows; nothing of them must linger either.
        clock.now += 11
        with pytest.raises(TokenTheftDetectedError):
            engine.refresh_session(previous[issued[0].handle])
        committed.pop(issued[0].handle)
        last_handle = issued[-1].handle
        assert engine.revoke_session(last_handle)
        committed.pop(last_handle)
        files_while_open = raw_bytes(path)
        assert Path(str(path) + "-wal").exists()
    finally:
        engine.close()
    files_after_close = raw_bytes(path)

    refresh_tokens = {t.refresh_token.value for t in issued}
    assert len(refresh_tokens) >= 6 * 4
    secrets_not_to_store = [t.id_refresh_token.value for t in issued]
    secrets_not_to_store += [t.access_token.value for t in issued] + access_tokens
    secrets_not_to_store += [t.anti_csrf_token for t in issued if t.anti_csrf_token]
    for data in (files_while_open, files_after_close):
        for token in refresh_tokens:
            for form in forbidden_forms(token):
                assert form not in data, "a refresh token or its single hash reached the database"
        for secret in secrets_not_to_store:
            assert secret.encode() not in data
        for handle, token in committed.items():
            assert h(h(token)).encode() in data, handle
            assert h(h(previous[handle])).encode() in data  # prev_refresh_token_hash_2


def test_raw_row_values_are_double_hashes(tmp_path: Path) -> None:
    """Column by column: hash2 and prev_hash2 are exactly H(H(.)) of the right tokens."""
    path = tmp_path / "sessions.db"
    with SessionWard(Config(store=f"sqlite:///{path}", access_token_algorithm="HS256")) as engine:
        tokens = engine.create_new_session("alice")
        child = engine.refresh_session(tokens.refresh_token.value)
        engine.refresh_session(child.refresh_token.value)  # commits child
        with closing(sqlite3.connect(path)) as connection:
            row = connection.execute("SELECT * FROM session_info").fetchone()
            names = [d[0] for d in connection.execute("SELECT * FROM session_info").description]
    values = dict(zip(names, row, strict=True))
    assert values["refresh_token_hash_2"] == h(h(child.refresh_token.value))
    assert values["prev_refresh_token_hash_2"] == h(h(tokens.refresh_token.value))
    stored_text = " ".join(str(v) for v in values.values())
    for token in (tokens.refresh_token.value, child.refresh_token.value):
        assert token not in stored_text
        assert h(token) not in stored_text
