"""Store round trips per engine operation, counted exactly: every store call is one round
trip (one statement on PostgreSQL, one script on Redis). A rotation costs two: the refresh
reads, and the first use of its access token is one compare-and-set that answers with the
row (``promote_returning``), whatever its outcome (V1-V4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.stores import RecordingStore

from sessionward import ClientInfo, Config, SessionWard, TokenTheftDetectedError, UnauthorizedError
from sessionward.cookies import MAX_COOKIE_BYTES
from sessionward.engine.budget import PayloadBudget
from sessionward.engine.types import SessionTokens
from sessionward.errors import PayloadTooLargeError
from sessionward.stores.sqlite import SQLiteStore
from sessionward.tokens.access import AccessTokenCodec
from sessionward.tokens.keys import generate_signing_key

GRACE = 10


class Env:
    def __init__(self, path: Path, **options: Any) -> None:
        self.clock = FakeClock()
        settings: dict[str, Any] = {
            "access_token_algorithm": "HS256",
            "refresh_token_reuse_grace_period": GRACE,
            "enable_anti_csrf": True,
        }
        settings.update(options)
        self.store = RecordingStore(SQLiteStore(f"sqlite:///{path}"))
        self.engine = SessionWard(Config(**settings), store=self.store, clock=self.clock)
        self.engine.create_new_session("warm-up")  # start-up: schema, secret and keys

    def trips(self) -> dict[str, int]:
        """The calls made since the last look."""
        counted = {name: count for name, count in self.store.calls.items() if count}
        self.store.calls.clear()
        return counted

    def login(self, user: str = "alice", payload: dict[str, Any] | None = None) -> SessionTokens:
        tokens = self.engine.create_new_session(user, payload)
        self.trips()
        return tokens


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path / "s.db")
    yield made
    made.store.inner.close()


def test_create_is_one_insert(env: Env) -> None:
    env.trips()
    env.engine.create_new_session("alice", {"role": "admin"}, {"cart": [1]})
    assert env.trips() == {"insert_session": 1}


def test_verifying_an_access_token_without_parent_claim_needs_no_store(env: Env) -> None:
    tokens = env.login()
    env.engine.get_session(tokens.access_token.value)
    assert env.trips() == {}


def test_full_rotation_is_two_round_trips(env: Env) -> None:
    tokens = env.login()
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)  # R2
    assert env.trips() == {"get_session": 1}
    verified = env.engine.get_session(refreshed.access_token.value)  # V1
    assert verified.new_access_token is not None
    assert env.trips() == {"promote_returning": 1}


def test_session_metadata_adds_no_round_trip(env: Env) -> None:
    """The client, the lifetime and the events ride on the writes a session makes anyway."""
    events: list[object] = []
    env.engine.subscribe(events.append)
    client = ClientInfo("192.0.2.1", "agent/1.0")
    env.trips()
    tokens = env.engine.create_new_session("alice", {"r": 1}, persistent=False, client=client)
    assert env.trips() == {"insert_session": 1}
    called: list[int] = []

    def lazy() -> ClientInfo:
        called.append(1)
        return client

    env.engine.get_session(tokens.access_token.value, client=lazy)
    assert env.trips() == {}
    refreshed = env.engine.refresh_session(tokens.refresh_token.value, client=client)  # R2
    assert env.trips() == {"get_session": 1}
    env.engine.get_session(refreshed.access_token.value, client=lazy)  # V1
    assert env.trips() == {"promote_returning": 1}
    child = env.engine.refresh_session(refreshed.refresh_token.value, client=client)
    grandchild = env.engine.refresh_session(child.refresh_token.value, client=client)  # R3
    assert grandchild.persistent is False
    assert env.trips() == {"get_session": 2, "promote_returning": 1}
    assert called == [1] and len(events) == 5


def test_the_new_management_calls_are_one_round_trip_each(env: Env) -> None:
    tokens = env.login()
    env.engine.get_session(tokens.access_token.value, check_database=True)
    assert env.trips() == {"get_session": 1}
    env.engine.get_session(tokens.access_token.value, max_auth_age=60)
    assert env.trips() == {}
    env.engine.get_all_sessions_for_user("alice")
    assert env.trips() == {"get_sessions_for_user": 1}
    env.engine.mark_reauthenticated(tokens.handle, tokens.access_token.value)
    assert env.trips() == {"update_auth_time": 1}
    env.engine.revoke_other_sessions("alice", tokens.handle)
    assert env.trips() == {"delete_other_sessions": 1}


def test_promotion_outcomes_are_one_round_trip_each(env: Env) -> None:
    tokens = env.login()
    first = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.get_session(first.access_token.value)  # V1
    env.trips()
    again = env.engine.get_session(first.access_token.value)  # V2: promoted already
    assert again.new_access_token is not None
    assert env.trips() == {"promote_returning": 1}
    second = env.engine.refresh_session(first.refresh_token.value)
    env.engine.get_session(second.access_token.value)
    env.trips()
    stale = env.engine.get_session(first.access_token.value)  # V3: the session moved on
    assert stale.new_access_token is None
    assert env.trips() == {"promote_returning": 1}
    third = env.engine.refresh_session(second.refresh_token.value)
    env.engine.revoke_session(tokens.handle)
    env.trips()
    with pytest.raises(UnauthorizedError):
        env.engine.get_session(third.access_token.value)  # V4: revoked
    assert env.trips() == {"promote_returning": 1}


def test_refresh_of_an_uncommitted_child_is_read_then_compare_and_set(env: Env) -> None:
    tokens = env.login()
    first = env.engine.refresh_session(tokens.refresh_token.value)
    env.trips()
    second = env.engine.refresh_session(first.refresh_token.value)  # R3 commits `first`
    assert env.trips() == {"get_session": 1, "promote_returning": 1}
    env.engine.get_session(second.access_token.value)
    assert env.trips() == {"promote_returning": 1}


def test_refresh_in_grace_and_theft(env: Env) -> None:
    tokens = env.login()
    first = env.engine.refresh_session(tokens.refresh_token.value)
    env.engine.get_session(first.access_token.value)
    env.trips()
    env.engine.refresh_session(tokens.refresh_token.value)  # R4: the predecessor in grace
    assert env.trips() == {"get_session": 1}
    env.clock.advance(GRACE + 1)
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(tokens.refresh_token.value)  # R5
    assert env.trips() == {"get_session": 1, "delete_sessions": 1}


def test_promotion_refused_for_its_stored_payload_writes_nothing(env: Env) -> None:
    tokens = env.login()
    first = env.engine.refresh_session(tokens.refresh_token.value)
    env.store.inner.update_jwt_payload(tokens.handle, {"big": "x" * 5000})  # over the budget
    before = env.store.inner.get_session(tokens.handle)
    env.trips()
    with pytest.raises(UnauthorizedError, match="over the size limit"):
        env.engine.get_session(first.access_token.value)
    assert env.trips() == {"promote_returning": 1}
    assert env.store.inner.get_session(tokens.handle) == before


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
@pytest.mark.parametrize("user", ["u", "ünïcode user", "x" * 255])
@pytest.mark.parametrize("anti_csrf", [False, True])
def test_store_side_payload_limit_is_the_budget_exactly(alg: str, user: str, anti_csrf: bool) -> None:
    """The length the store compares (``max_payload_json``) admits exactly the payloads
    ``check_json`` admits."""
    config = Config(access_token_algorithm=alg, enable_anti_csrf=anti_csrf, cookie_domain="example.com")
    budget = PayloadBudget(config)
    key = generate_signing_key(alg, 0)
    header = AccessTokenCodec(alg, 0).header_segment(key)
    limit = budget.max_payload_json(header, key, user)
    assert 1_000 < limit < MAX_COOKIE_BYTES
    for length in range(limit - 8, limit + 9):
        payload_json = '{"p":"' + "x" * (length - 8) + '"}'
        assert len(payload_json) == length
        if length <= limit:
            budget.check_json(header, key, user, payload_json)
        else:
            with pytest.raises(PayloadTooLargeError):
                budget.check_json(header, key, user, payload_json)


def test_request_level_first_use_of_a_browser_session_is_one_round_trip(env: Env) -> None:
    """The promotion answers with the row, so the request layer learns that the session's
    cookies end with the browser without reading the store again."""
    from sessionward.cookies import ACCESS_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE
    from sessionward.session import SessionHandler
    from sessionward.transport.response import ResponseEffects

    handler = SessionHandler(env.engine)
    tokens = env.engine.create_new_session("alice", persistent=False)
    refreshed = env.engine.refresh_session(tokens.refresh_token.value)
    env.trips()
    cookie_header = (
        f"{ACCESS_TOKEN_COOKIE}={refreshed.access_token.value}; "
        f"{ID_REFRESH_TOKEN_COOKIE}={refreshed.id_refresh_token.value}"
    )
    effects = ResponseEffects(env.engine.config)
    handler.verify(effects, cookie_header, None, "GET", False)
    assert env.trips() == {"promote_returning": 1}
    written = effects.cookies[ACCESS_TOKEN_COOKIE].lower()
    assert "expires=" not in written and "max-age" not in written
