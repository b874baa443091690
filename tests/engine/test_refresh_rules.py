"""Named tests for every row of the refresh (R0-R5) and promotion (V1-V4) decision tables
of docs/design/decision-tables.md, and for the engine's management calls (docs/engine.md).

Everything runs on a real SQLite file with a fake clock; rows are read back with a second
plain ``sqlite3`` connection to check exactly what each decision wrote (or did not).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.stores import RecordingStore
from support.tokens import claims, h

from sessionward import (
    Config,
    SessionWard,
    StorageUnavailableError,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from sessionward.stores.sqlite import SQLiteStore

VALIDITY = 60
IDLE = 300
GRACE = 10


class Env:
    """An engine on a SQLite file, its fake clock, and raw access to the file."""

    def __init__(self, path: Path, **options: Any) -> None:
        self.path = path
        self.clock = FakeClock()
        settings: dict[str, Any] = {
            "access_token_algorithm": "HS256",
            "access_token_validity": VALIDITY,
            "refresh_token_validity": IDLE,
            "refresh_token_reuse_grace_period": GRACE,
            "cookie_secure": False,
        }
        settings.update(options)
        self.config = Config(store=f"sqlite:///{path}", **settings)
        self.store = RecordingStore(SQLiteStore(f"sqlite:///{path}?timeout=0.2"))
        self.engine = SessionWard(self.config, store=self.store, clock=self.clock)

    def close(self) -> None:
        self.engine.close()
        self.store.inner.close()

    def row(self, handle: str) -> dict[str, Any] | None:
        with closing(sqlite3.connect(self.path)) as connection:
            connection.row_factory = sqlite3.Row
            found = connection.execute(
                "SELECT * FROM session_info WHERE session_handle = ?", (handle,)
            ).fetchone()
            return None if found is None else dict(found)

    @property
    def now_ms(self) -> int:
        return int(self.clock.now * 1000)


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator[Callable[..., Env]]:
    made: list[Env] = []

    def make(**options: Any) -> Env:
        env = Env(tmp_path / f"db{len(made)}.sqlite", **options)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


@contextmanager
def held_write_lock(path: Path) -> Iterator[None]:
    """Another connection holding ``BEGIN EXCLUSIVE`` on the file: writers time out (the
    store's URL sets ``?timeout=0.2``); in WAL mode readers still get through."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")


def header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def committed_child(env: Env, refresh_token: str) -> tuple[str, str]:
    """Refresh with ``refresh_token`` and commit the child by using its access token.

    Returns (child refresh token, replacement access token)."""
    refreshed = env.engine.refresh_session(refresh_token)
    verified = env.engine.get_session(refreshed.access_token.value)
    assert verified.new_access_token is not None
    return refreshed.refresh_token.value, verified.new_access_token.value


# -- R0-R5 -------------------------------------------------------------------------------


def test_R0_no_row_is_unauthorized(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    assert env.engine.revoke_session(tokens.handle) is True
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(tokens.refresh_token.value)
    assert env.row(tokens.handle) is None  # nothing recreates a deleted row


def test_R0_undecryptable_token_is_unauthorized(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    value = tokens.refresh_token.value
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    for bad in (tampered, "", "x" * 50, tokens.access_token.value):
        with pytest.raises(UnauthorizedError):
            env.engine.refresh_session(bad)
    assert env.row(tokens.handle) is not None


def test_R1_idle_expiry_is_unauthorized(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    env.clock.advance(IDLE)
    env.engine.refresh_session(tokens.refresh_token.value)  # exactly at the deadline: alive
    env.clock.advance(1)
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(tokens.refresh_token.value)
    # Never a theft verdict for an expired session, whatever the token.
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(tokens.refresh_token.value)


def test_R1_absolute_lifetime_beats_activity(make_env: Callable[..., Env]) -> None:
    env = make_env(session_max_lifetime=1000)
    tokens = env.engine.create_new_session("alice")
    created = env.now_ms
    refresh = tokens.refresh_token.value
    for _ in range(4):  # active every 200 s: never idle, but 1000 s is an absolute limit
        env.clock.advance(200)
        refresh, _ = committed_child(env, refresh)
        row = env.row(tokens.handle)
        assert row is not None
        assert row["expires_at"] <= created + 1000 * 1000
    env.clock.advance(199)
    refreshed = env.engine.refresh_session(refresh)
    assert refreshed.refresh_token.expires_at <= created + 1000 * 1000
    assert refreshed.id_refresh_token.expires_at == refreshed.refresh_token.expires_at
    env.clock.advance(2)  # created + 1001 s
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(refresh)
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(refreshed.refresh_token.value)
    with pytest.raises(UnauthorizedError):
        env.engine.get_session_information(tokens.handle)


def test_R2_current_token_gets_one_successor_and_writes_nothing(make_env: Callable[..., Env]) -> None:
    env = make_env(enable_anti_csrf=True)
    tokens = env.engine.create_new_session("alice", {"role": "a"})
    before = env.row(tokens.handle)
    first = env.engine.refresh_session(tokens.refresh_token.value)
    env.clock.advance(GRACE * 3)
    second = env.engine.refresh_session(tokens.refresh_token.value)
    assert env.row(tokens.handle) == before
    assert env.store.calls["promote_returning"] == 0
    assert first.refresh_token.value == second.refresh_token.value
    assert first.refresh_token.value != tokens.refresh_token.value
    assert first.anti_csrf_token == second.anti_csrf_token is not None
    assert first.anti_csrf_token != tokens.anti_csrf_token
    for refreshed in (first, second):
        access = claims(refreshed.access_token.value)
        assert access["refreshTokenHash1"] == h(first.refresh_token.value)
        assert access["parentRefreshTokenHash1"] == h(tokens.refresh_token.value)
        assert access["antiCsrfToken"] == first.anti_csrf_token
        assert access["userData"] == {"role": "a"}
        assert refreshed.handle == tokens.handle
        assert refreshed.user_id == "alice"
    assert before is not None
    assert before["refresh_token_hash_2"] == h(h(tokens.refresh_token.value))


def test_R3_first_use_of_child_commits_and_continues(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    child = env.engine.refresh_session(tokens.refresh_token.value)
    env.clock.advance(5)
    grandchild = env.engine.refresh_session(child.refresh_token.value)
    row = env.row(tokens.handle)
    assert row is not None
    assert row["refresh_token_hash_2"] == h(h(child.refresh_token.value))
    assert row["prev_refresh_token_hash_2"] == h(h(tokens.refresh_token.value))
    assert row["rotated_at"] == env.now_ms
    assert row["expires_at"] == env.now_ms + IDLE * 1000
    access = claims(grandchild.access_token.value)
    assert access["parentRefreshTokenHash1"] == h(child.refresh_token.value)
    assert access["refreshTokenHash1"] == h(grandchild.refresh_token.value)
    # The child is current now: refreshing with it again is R2 and returns the same token.
    again = env.engine.refresh_session(child.refresh_token.value)
    assert again.refresh_token.value == grandchild.refresh_token.value
    assert env.row(tokens.handle) == row


def test_R4_predecessor_inside_grace_gets_the_current_token_back(make_env: Callable[..., Env]) -> None:
    env = make_env(enable_anti_csrf=True)
    tokens = env.engine.create_new_session("alice")
    child = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.refresh_session(child.refresh_token.value)  # commits the child (R3)
    committed = env.row(tokens.handle)
    env.clock.advance(GRACE)  # the window is inclusive
    recovered = env.engine.refresh_session(tokens.refresh_token.value)
    assert recovered.refresh_token.value == child.refresh_token.value
    assert recovered.anti_csrf_token == child.anti_csrf_token
    access = claims(recovered.access_token.value)
    assert "parentRefreshTokenHash1" not in access  # C is already committed
    assert access["refreshTokenHash1"] == h(child.refresh_token.value)
    assert env.row(tokens.handle) == committed  # nothing written, window not extended
    verified = env.engine.get_session(recovered.access_token.value)
    assert verified.new_access_token is None


def test_R5_grandparent_is_theft_and_revokes(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    child, _ = committed_child(env, tokens.refresh_token.value)
    grandchild, _ = committed_child(env, child)
    with pytest.raises(TokenTheftDetectedError) as caught:
        env.engine.refresh_session(tokens.refresh_token.value)  # two generations back, at once
    assert caught.value.session_handle == tokens.handle
    assert caught.value.user_id == "alice"
    assert env.row(tokens.handle) is None
    for token in (grandchild, child, tokens.refresh_token.value):
        with pytest.raises(UnauthorizedError):
            env.engine.refresh_session(token)


def test_R5_predecessor_after_grace_is_theft(env: Env) -> None:
    tokens = env.engine.create_new_session("bob")
    child, _ = committed_child(env, tokens.refresh_token.value)
    env.clock.advance(GRACE + 0.001)
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(tokens.refresh_token.value)
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(child)


def test_R5_grace_zero_disables_the_window(make_env: Callable[..., Env]) -> None:
    env = make_env(refresh_token_reuse_grace_period=0)
    tokens = env.engine.create_new_session("bob")
    committed_child(env, tokens.refresh_token.value)
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(tokens.refresh_token.value)


def test_R5_thief_refreshing_first_ends_the_session_for_both(env: Env) -> None:
    victim = env.engine.create_new_session("carol")
    stolen = victim.refresh_token.value
    thief_child, _ = committed_child(env, stolen)  # the thief refreshes and uses it
    env.clock.advance(GRACE + 1)
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(victim.refresh_token.value)  # the victim's next refresh
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(thief_child)


def test_grace_window_is_anchored_at_the_commit_and_never_extended(env: Env) -> None:
    tokens = env.engine.create_new_session("dave")
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.clock.advance(7)  # the commit happens later than the refresh
    verified = env.engine.get_session(refreshed.access_token.value)
    assert verified.new_access_token is not None
    commit_ms = env.now_ms
    env.clock.advance(GRACE - 1)
    reused = env.engine.refresh_session(tokens.refresh_token.value)
    assert reused.refresh_token.value == refreshed.refresh_token.value
    # Using the current token and its access token in between must not move the anchor.
    env.engine.refresh_session(refreshed.refresh_token.value)
    env.engine.get_session(reused.access_token.value)
    row = env.row(tokens.handle)
    assert row is not None
    assert row["rotated_at"] == commit_ms
    env.clock.advance(2)  # commit + grace + 1
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(tokens.refresh_token.value)


def test_failed_store_operation_advances_nothing(env: Env) -> None:
    tokens = env.engine.create_new_session("erin")
    child = env.engine.refresh_session(tokens.refresh_token.value)
    before = env.row(tokens.handle)
    with held_write_lock(env.path):
        with pytest.raises(StorageUnavailableError):
            env.engine.refresh_session(child.refresh_token.value)  # R3 needs a write
        # R2 writes nothing, so a read-only path still answers.
        assert env.engine.refresh_session(tokens.refresh_token.value).refresh_token == child.refresh_token
    assert env.row(tokens.handle) == before
    after = env.engine.refresh_session(child.refresh_token.value)
    row = env.row(tokens.handle)
    assert row is not None
    assert row["refresh_token_hash_2"] == h(h(child.refresh_token.value))
    assert after.refresh_token.value != child.refresh_token.value


def test_theft_with_store_down_is_storage_error_not_a_verdict(env: Env) -> None:
    tokens = env.engine.create_new_session("erin")
    committed_child(env, tokens.refresh_token.value)
    env.clock.advance(GRACE + 1)
    with held_write_lock(env.path), pytest.raises(StorageUnavailableError):
        env.engine.refresh_session(tokens.refresh_token.value)
    assert env.row(tokens.handle) is not None
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(tokens.refresh_token.value)


def test_unreachable_store_is_storage_unavailable(tmp_path: Path) -> None:
    config = Config(store="sqlite:///unused.db", access_token_algorithm="HS256")
    url = f"sqlite:///{tmp_path}"  # a directory: SQLite cannot open it as a database file
    with SessionWard(config, store=url) as engine, pytest.raises(StorageUnavailableError):
        engine.create_new_session("alice")


# -- V1-V4 -------------------------------------------------------------------------------


def test_V1_first_use_commits_and_replaces(env: Env) -> None:
    tokens = env.engine.create_new_session("alice", {"n": 1})
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.clock.advance(30)
    verified = env.engine.get_session(refreshed.access_token.value)
    assert verified.handle == tokens.handle
    assert verified.user_id == "alice"
    assert verified.jwt_payload == {"n": 1}
    assert verified.new_access_token is not None
    assert verified.front_token is not None
    replacement = claims(verified.new_access_token.value)
    assert "parentRefreshTokenHash1" not in replacement
    assert replacement["refreshTokenHash1"] == h(refreshed.refresh_token.value)
    assert replacement["exp"] == int(env.clock.now) + VALIDITY  # fresh expiry
    assert verified.new_access_token.expires_at == replacement["exp"] * 1000
    front = json.loads(base64.b64decode(verified.front_token))
    assert front == {"uid": "alice", "ate": replacement["exp"] * 1000, "up": {"n": 1}}
    row = env.row(tokens.handle)
    assert row is not None
    assert row["refresh_token_hash_2"] == h(h(refreshed.refresh_token.value))
    assert row["prev_refresh_token_hash_2"] == h(h(tokens.refresh_token.value))
    assert row["rotated_at"] == env.now_ms
    assert row["expires_at"] == env.now_ms + IDLE * 1000
    # The replacement is an ordinary token: verified without the store.
    reads = env.store.calls["get_session"]
    env.engine.get_session(verified.new_access_token.value)
    assert env.store.calls["get_session"] == reads


def test_V2_already_promoted_by_a_parallel_request(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    first = env.engine.get_session(refreshed.access_token.value)
    row = env.row(tokens.handle)
    promoted = env.store.promoted
    env.clock.advance(3)
    second = env.engine.get_session(refreshed.access_token.value)
    assert second.new_access_token is not None
    assert first.new_access_token is not None
    assert "parentRefreshTokenHash1" not in claims(second.new_access_token.value)
    assert claims(second.new_access_token.value)["exp"] == int(env.clock.now) + VALIDITY
    assert env.store.promoted == promoted  # the compare-and-set is refused: hash2 already moved on
    assert env.row(tokens.handle) == row
    # A refresh that committed the child (R3) also counts as "already promoted".
    other = env.engine.create_new_session("bob")
    child = env.engine.refresh_session(other.refresh_token.value)
    env.engine.refresh_session(child.refresh_token.value)
    assert env.engine.get_session(child.access_token.value).new_access_token is not None


def test_V3_session_moved_on_stale_token_still_valid(env: Env) -> None:
    tokens = env.engine.create_new_session("alice", {"v": "old"})
    child = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.update_jwt_payload(tokens.handle, {"v": "new"})
    committed_child(env, child.refresh_token.value)  # commits child, then grandchild
    row = env.row(tokens.handle)
    verified = env.engine.get_session(child.access_token.value)
    assert verified.new_access_token is None
    assert verified.front_token is None
    assert verified.jwt_payload == {"v": "old"}  # what the token carries
    assert env.row(tokens.handle) == row
    env.clock.advance(VALIDITY)
    with pytest.raises(TryRefreshTokenError):
        env.engine.get_session(child.access_token.value)


def test_V4_row_gone_is_unauthorized(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.revoke_session(tokens.handle)
    with pytest.raises(UnauthorizedError):
        env.engine.get_session(refreshed.access_token.value)
    assert env.row(tokens.handle) is None


def test_V4_expired_row_is_unauthorized(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.clock.advance(IDLE - 50)
    fresh = env.engine.refresh_session(tokens.refresh_token.value)  # R2, idle not extended
    env.clock.advance(51)  # the row has expired, the fresh token has not
    with pytest.raises(UnauthorizedError):
        env.engine.get_session(fresh.access_token.value)
    with pytest.raises(TryRefreshTokenError):
        env.engine.get_session(refreshed.access_token.value)  # expired token: token error first


def test_V_store_down_is_storage_unavailable_and_session_survives(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    before = env.row(tokens.handle)
    with held_write_lock(env.path), pytest.raises(StorageUnavailableError):
        env.engine.get_session(refreshed.access_token.value)
    assert env.row(tokens.handle) == before
    verified = env.engine.get_session(refreshed.access_token.value)
    assert verified.new_access_token is not None


# -- idle timeout, payload updates -------------------------------------------------------


def test_idle_timeout_extended_by_each_promotion_only(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    created_row = env.row(tokens.handle)
    assert created_row is not None
    assert created_row["expires_at"] == env.now_ms + IDLE * 1000
    refresh = tokens.refresh_token.value
    for _ in range(5):  # 5 x 250 s, far beyond the first deadline
        env.clock.advance(250)
        refresh, _ = committed_child(env, refresh)
        row = env.row(tokens.handle)
        assert row is not None
        assert row["expires_at"] == env.now_ms + IDLE * 1000
    # A refresh that is never used (R2) writes nothing and so extends nothing.
    env.clock.advance(250)
    unused = env.engine.refresh_session(refresh)
    env.clock.advance(51)
    with pytest.raises(UnauthorizedError):
        env.engine.refresh_session(unused.refresh_token.value)


def test_update_jwt_payload_takes_effect_at_next_refresh_and_promotion(env: Env) -> None:
    tokens = env.engine.create_new_session("alice", {"plan": "free"})
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.update_jwt_payload(tokens.handle, {"plan": "pro"})
    assert env.engine.get_jwt_payload(tokens.handle) == {"plan": "pro"}
    # Existing tokens carry what they were signed with.
    assert env.engine.get_session(tokens.access_token.value).jwt_payload == {"plan": "free"}
    # The promotion's replacement carries the stored payload.
    promoted = env.engine.get_session(refreshed.access_token.value)
    assert promoted.jwt_payload == {"plan": "pro"}
    assert promoted.new_access_token is not None
    assert claims(promoted.new_access_token.value)["userData"] == {"plan": "pro"}
    env.engine.update_jwt_payload(tokens.handle, {"plan": "team"})
    again = env.engine.refresh_session(refreshed.refresh_token.value)
    assert again.jwt_payload == {"plan": "team"}
    assert claims(again.access_token.value)["userData"] == {"plan": "team"}
    front = json.loads(base64.b64decode(again.front_token))
    assert front["up"] == {"plan": "team"}


def test_session_data_round_trip_and_missing_session(env: Env) -> None:
    tokens = env.engine.create_new_session("alice", None, {"cart": [1, 2]})
    assert env.engine.get_session_data(tokens.handle) == {"cart": [1, 2]}
    env.engine.update_session_data(tokens.handle, {"cart": []})
    assert env.engine.get_session_data(tokens.handle) == {"cart": []}
    env.engine.revoke_session(tokens.handle)
    for call in (
        lambda: env.engine.get_session_data(tokens.handle),
        lambda: env.engine.update_session_data(tokens.handle, {}),
        lambda: env.engine.get_jwt_payload(tokens.handle),
        lambda: env.engine.update_jwt_payload(tokens.handle, {}),
    ):
        with pytest.raises(UnauthorizedError):
            call()


# -- revoke and listing ------------------------------------------------------------------


def test_revoke_one_many_all(env: Env) -> None:
    a1 = env.engine.create_new_session("alice").handle
    env.clock.advance(1)
    a2 = env.engine.create_new_session("alice").handle
    env.clock.advance(1)
    a3 = env.engine.create_new_session("alice").handle
    b1 = env.engine.create_new_session("bob").handle
    assert env.engine.revoke_session(a1) is True
    assert env.engine.revoke_session(a1) is False
    assert env.engine.revoke_multiple_sessions([]) == []
    removed = env.engine.revoke_multiple_sessions([a2, a1, "no-such-handle", a2])
    assert removed == [a2]
    assert env.engine.get_all_session_handles_for_user("alice") == [a3]
    assert env.engine.revoke_all_sessions_for_user("alice") == [a3]
    assert env.engine.revoke_all_sessions_for_user("alice") == []
    assert env.engine.get_all_session_handles_for_user("bob") == [b1]
    assert env.row(b1) is not None


def test_revoke_many_across_users(env: Env) -> None:
    handles = [env.engine.create_new_session(f"user{i}").handle for i in range(5)]
    assert sorted(env.engine.revoke_multiple_sessions(handles[:3])) == sorted(handles[:3])
    for handle in handles[:3]:
        assert env.row(handle) is None
    for handle in handles[3:]:
        assert env.row(handle) is not None


def test_get_all_session_handles_for_user(env: Env) -> None:
    assert env.engine.get_all_session_handles_for_user("alice") == []
    handles = []
    for _ in range(3):
        handles.append(env.engine.create_new_session("alice").handle)
        env.clock.advance(100)
    env.engine.create_new_session("alice-2")
    assert env.engine.get_all_session_handles_for_user("alice") == handles  # oldest first
    env.clock.advance(1)  # T0 + 301: the first session (created at T0) has expired
    assert env.engine.get_all_session_handles_for_user("alice") == handles[1:]


def test_get_session_information(env: Env) -> None:
    tokens = env.engine.create_new_session("alice", {"p": 1}, {"d": 2})
    info = env.engine.get_session_information(tokens.handle)
    assert info.handle == tokens.handle
    assert info.user_id == "alice"
    assert info.session_data == {"d": 2}
    assert info.jwt_payload == {"p": 1}
    assert info.created_at == env.now_ms
    assert info.expires_at == env.now_ms + IDLE * 1000
    env.clock.advance(50)
    committed_child(env, tokens.refresh_token.value)
    later = env.engine.get_session_information(tokens.handle)
    assert later.created_at == info.created_at
    assert later.expires_at == env.now_ms + IDLE * 1000
    with pytest.raises(UnauthorizedError):
        env.engine.get_session_information("00000000-0000-4000-8000-000000000000")
    env.clock.advance(IDLE + 1)
    with pytest.raises(UnauthorizedError):
        env.engine.get_session_information(tokens.handle)


def test_delete_expired_sessions(env: Env) -> None:
    old = [env.engine.create_new_session("alice").handle for _ in range(3)]
    env.clock.advance(200)
    young = env.engine.create_new_session("alice").handle
    assert env.engine.delete_expired_sessions() == 0
    env.clock.advance(IDLE - 200 + 1)
    assert env.engine.delete_expired_sessions() == 3
    assert env.engine.delete_expired_sessions() == 0
    for handle in old:
        assert env.row(handle) is None
    assert env.row(young) is not None
    env.clock.advance(IDLE)
    assert env.engine.delete_expired_sessions() == 1


# -- blacklisting and the verified-token cache -------------------------------------------


def test_blacklisting_rejects_revoked_sessions_even_from_cache(make_env: Callable[..., Env]) -> None:
    env = make_env(access_token_blacklisting=True)
    tokens = env.engine.create_new_session("alice")
    other = env.engine.create_new_session("alice")
    assert env.engine.get_session(tokens.access_token.value).handle == tokens.handle  # now cached
    assert env.engine.get_session(tokens.access_token.value).handle == tokens.handle
    env.engine.revoke_session(tokens.handle)
    with pytest.raises(UnauthorizedError):
        env.engine.get_session(tokens.access_token.value)
    # Another engine on the same file, with a cold cache, agrees.
    with SessionWard(env.config, clock=env.clock) as second:
        with pytest.raises(UnauthorizedError):
            second.get_session(tokens.access_token.value)
        assert second.get_session(other.access_token.value).handle == other.handle
    env.engine.revoke_all_sessions_for_user("alice")
    with pytest.raises(UnauthorizedError):
        env.engine.get_session(other.access_token.value)


def test_blacklisting_rejects_expired_rows(make_env: Callable[..., Env]) -> None:
    env = make_env(access_token_blacklisting=True, refresh_token_validity=100)
    tokens = env.engine.create_new_session("alice")
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.get_session(refreshed.access_token.value)  # V1: row deadline T0 + 100
    env.clock.advance(50)
    again = env.engine.get_session(refreshed.access_token.value)  # V2: replacement until T0 + 110
    assert again.new_access_token is not None
    assert env.engine.get_session(again.new_access_token.value).handle == tokens.handle
    env.clock.advance(51)  # the row expired at T0 + 100; the replacement is still signed-valid
    with pytest.raises(UnauthorizedError):
        env.engine.get_session(again.new_access_token.value)


def test_without_blacklisting_revoked_token_lives_until_expiry(make_env: Callable[..., Env]) -> None:
    env = make_env(change_feed=False)  # nor the change feed
    tokens = env.engine.create_new_session("alice")
    env.engine.revoke_session(tokens.handle)
    assert env.engine.get_session(tokens.access_token.value).handle == tokens.handle  # bounded
    env.clock.advance(VALIDITY)
    with pytest.raises(TryRefreshTokenError):
        env.engine.get_session(tokens.access_token.value)


def test_cache_hit_returns_same_result_without_store(env: Env) -> None:
    tokens = env.engine.create_new_session("alice", {"k": [1, {"x": None}]})
    first = env.engine.get_session(tokens.access_token.value)
    calls = sum(env.store.calls.values())
    second = env.engine.get_session(tokens.access_token.value)
    assert second == first
    assert second.jwt_payload == {"k": [1, {"x": None}]}
    assert sum(env.store.calls.values()) == calls


def test_cache_never_used_past_expiry(env: Env) -> None:
    tokens = env.engine.create_new_session("alice")
    exp = claims(tokens.access_token.value)["exp"]
    env.engine.get_session(tokens.access_token.value)
    env.clock.now = exp - 0.001
    env.engine.get_session(tokens.access_token.value)
    env.clock.now = exp
    with pytest.raises(TryRefreshTokenError):
        env.engine.get_session(tokens.access_token.value)


def test_cache_keeps_checking_anti_csrf(make_env: Callable[..., Env]) -> None:
    env = make_env(enable_anti_csrf=True)
    tokens = env.engine.create_new_session("alice")
    csrf = tokens.anti_csrf_token
    assert csrf is not None
    env.engine.get_session(tokens.access_token.value, csrf, do_anti_csrf_check=True)
    env.engine.get_session(tokens.access_token.value)
    for wrong in (None, "", csrf[:-1], csrf + "x"):
        with pytest.raises(TryRefreshTokenError):
            env.engine.get_session(tokens.access_token.value, wrong, do_anti_csrf_check=True)
    env.engine.get_session(tokens.access_token.value, csrf, do_anti_csrf_check=True)


def test_cache_emptied_when_a_key_is_dropped(env: Env) -> None:
    env.engine.create_new_session("warm-up")
    env.engine.rotate_signing_key()
    tokens = env.engine.create_new_session("alice")
    kid = header(tokens.access_token.value)["kid"]
    env.engine.get_session(tokens.access_token.value)
    assert env.engine._core.cache.entries
    with closing(sqlite3.connect(env.path)) as connection:
        deleted = 0
        for name, value in connection.execute("SELECT name, value FROM key_value").fetchall():
            if name.startswith("access_token_signing_key/") and json.loads(value)["kid"] == kid:
                connection.execute("DELETE FROM key_value WHERE name = ?", (name,))
                deleted += 1
        connection.commit()
    assert deleted == 1
    env.engine.jwks()  # any key sync notices the key is gone
    assert not env.engine._core.cache.entries
    with pytest.raises(TryRefreshTokenError):
        env.engine.get_session(tokens.access_token.value)
