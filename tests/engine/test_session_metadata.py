"""Sessions people can see and control, on every store with both drivers: per-session
lifetimes (shortened, non-persistent) kept across rotation, the ``auth_time`` claim and
``max_auth_age``, ``check_database``, ``mark_reauthenticated``, ``revoke_other_sessions``
and ``get_all_sessions_for_user`` with the client recorded at creation and promotion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.clock import FakeClock
from support.engines import Driven
from support.tokens import claims

from sessionward import (
    ClientInfo,
    GeneralError,
    ReauthenticationRequiredError,
    SessionInformation,
    TryRefreshTokenError,
    UnauthorizedError,
    VerifiedSession,
)
from sessionward.tokens.encoding import b64url_encode, dumps_compact
from sessionward.tokens.keys import SigningKey

MakeEngine = Callable[..., Driven]
LAPTOP = ClientInfo("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
PHONE = ClientInfo("2001:db8::1", "Mozilla/5.0 (iPhone) Safari/605.1")
TRAIN = ClientInfo("198.51.100.23", "Mozilla/5.0 (iPhone) Safari/605.1 on a train")


def signing_key(engine: Driven) -> SigningKey:
    state = engine.core.keys.state
    assert state is not None
    return state.signing_key


# -- lifetimes -------------------------------------------------------------------------------


def test_default_session_is_persistent_with_the_configured_lifetime(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    assert tokens.persistent is True
    assert tokens.refresh_token.expires_at == fake_clock.ms + 300_000
    info = engine.get_session_information(tokens.handle)
    assert (info.persistent, info.refresh_validity, info.expires_at) == (
        True,
        300_000,
        fake_clock.ms + 300_000,
    )


@pytest.mark.parametrize(
    ("options", "lifetime", "persistent"),
    [
        ({"refresh_token_validity": 100}, 100, True),
        ({"persistent": False}, 120, False),  # non_persistent_refresh_token_validity
        ({"persistent": False, "refresh_token_validity": 50}, 50, False),
        ({"persistent": False, "refresh_token_validity": 200}, 120, False),
        ({"refresh_token_validity": 300}, 300, True),  # the configured value itself
    ],
)
def test_own_lifetime_is_kept_across_rotation(
    make_engine: MakeEngine, fake_clock: FakeClock, options: dict[str, Any], lifetime: int, persistent: bool
) -> None:
    engine = make_engine()
    created = engine.create_new_session("alice", **options)
    assert created.persistent is persistent
    assert (
        created.refresh_token.expires_at
        == created.id_refresh_token.expires_at
        == fake_clock.ms + lifetime * 1000
    )
    tokens = created
    for _ in range(3):
        fake_clock.advance(lifetime * 0.6)  # inside the idle lifetime: each rotation extends it
        refreshed = engine.refresh_session(tokens.refresh_token.value)
        assert refreshed.persistent is persistent
        # The refresh cookie ends when the promotion will make the row end: now + own lifetime.
        assert refreshed.refresh_token.expires_at == fake_clock.ms + lifetime * 1000
        promoted = engine.get_session(refreshed.access_token.value)
        assert promoted.new_access_token is not None
        # The promotion read the row: it says whether the cookies outlive the browser.
        assert promoted.persistent is persistent
        assert engine.get_session(promoted.new_access_token.value).persistent is None
        info = engine.get_session_information(tokens.handle)
        assert info.expires_at == fake_clock.ms + lifetime * 1000
        assert (info.persistent, info.refresh_validity) == (persistent, lifetime * 1000)
        tokens = refreshed
    # Idle for longer than its own lifetime (but not the configured one): over.
    fake_clock.advance(lifetime + 1)
    with pytest.raises(UnauthorizedError):
        engine.refresh_session(tokens.refresh_token.value)


def test_lifetime_is_kept_when_a_refresh_commits_the_child(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice", persistent=False)
    child = engine.refresh_session(tokens.refresh_token.value)
    fake_clock.advance(60)
    grandchild = engine.refresh_session(child.refresh_token.value)  # R3: commits the child
    assert grandchild.persistent is False
    assert grandchild.refresh_token.expires_at == fake_clock.ms + 120_000
    assert engine.get_session_information(tokens.handle).expires_at == fake_clock.ms + 120_000


def test_session_max_lifetime_still_caps_a_shortened_session(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine(session_max_lifetime=150)
    tokens = engine.create_new_session("alice", refresh_token_validity=100)
    assert tokens.refresh_token.expires_at == fake_clock.ms + 100_000
    fake_clock.advance(90)
    refreshed = engine.refresh_session(tokens.refresh_token.value)
    assert refreshed.refresh_token.expires_at == fake_clock.ms + 60_000  # created + 150 s


@pytest.mark.parametrize("value", [0, -1, 301, 10**12, True, 1.5, "100", [100]])
def test_refresh_token_validity_may_only_shorten(make_engine: MakeEngine, value: Any) -> None:
    engine = make_engine()
    with pytest.raises(GeneralError, match="refresh_token_validity") as refused:
        engine.create_new_session("alice", refresh_token_validity=value)
    assert "300" in str(refused.value)  # names the configured bound
    assert engine.get_all_session_handles_for_user("alice") == []


@pytest.mark.parametrize("value", [None, 0, 1, "false", "no"])
def test_persistent_must_be_a_bool(make_engine: MakeEngine, value: Any) -> None:
    engine = make_engine()
    with pytest.raises(GeneralError, match="persistent"):
        engine.create_new_session("alice", persistent=value)
    assert engine.get_all_session_handles_for_user("alice") == []


# -- auth_time ---------------------------------------------------------------------------------


def test_auth_time_travels_in_every_access_token_across_rotation(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    login_time = int(fake_clock.now) * 1000
    tokens = engine.create_new_session("alice")
    assert tokens.auth_time == login_time
    assert claims(tokens.access_token.value)["auth_time"] == login_time // 1000
    assert engine.get_session(tokens.access_token.value).auth_time == login_time
    for _ in range(3):
        fake_clock.advance(100)
        refreshed = engine.refresh_session(tokens.refresh_token.value)
        assert refreshed.auth_time == login_time
        assert claims(refreshed.access_token.value)["auth_time"] == login_time // 1000
        promoted = engine.get_session(refreshed.access_token.value)
        assert promoted.auth_time == login_time
        assert promoted.new_access_token is not None
        assert claims(promoted.new_access_token.value)["auth_time"] == login_time // 1000
        assert engine.get_session(promoted.new_access_token.value).auth_time == login_time
        tokens = refreshed
    assert engine.get_session_information(tokens.handle).auth_time == login_time


def test_mark_reauthenticated_updates_the_row_and_replaces_the_token(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice", {"role": "reader"})
    login_time = tokens.auth_time
    fake_clock.advance(40)
    marked: VerifiedSession = engine.mark_reauthenticated(tokens.handle, tokens.access_token.value)
    now = int(fake_clock.now) * 1000
    assert marked.auth_time == now > login_time
    assert marked.new_access_token is not None and marked.front_token is not None
    assert marked.new_access_token.expires_at == tokens.access_token.expires_at  # same expiry
    new_claims, old_claims = claims(marked.new_access_token.value), claims(tokens.access_token.value)
    assert new_claims["auth_time"] == now // 1000
    assert {k: v for k, v in new_claims.items() if k not in ("auth_time", "iat")} == {
        k: v for k, v in old_claims.items() if k not in ("auth_time", "iat")
    }
    verified = engine.get_session(marked.new_access_token.value, max_auth_age=5)
    assert (verified.handle, verified.auth_time, verified.jwt_payload) == (
        tokens.handle,
        now,
        {"role": "reader"},
    )
    info = engine.get_session_information(tokens.handle)
    assert info.auth_time == now
    assert info.last_active_at == fake_clock.ms
    # Refreshes from now on carry the new time.
    fake_clock.advance(30)
    refreshed = engine.refresh_session(tokens.refresh_token.value)
    assert refreshed.auth_time == now
    assert engine.get_session(refreshed.access_token.value).auth_time == now


def test_regenerate_access_token_keeps_auth_time(make_engine: MakeEngine, fake_clock: FakeClock) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    fake_clock.advance(5)
    regenerated = engine.regenerate_access_token(tokens.access_token.value, {"new": True})
    assert regenerated is not None and regenerated.new_access_token is not None
    assert regenerated.auth_time == tokens.auth_time
    assert claims(regenerated.new_access_token.value)["auth_time"] == tokens.auth_time // 1000


def test_mark_reauthenticated_refuses_a_bad_or_foreign_token_before_writing(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    alice = engine.create_new_session("alice")
    bob = engine.create_new_session("bob")
    fake_clock.advance(10)
    with pytest.raises(TryRefreshTokenError):
        engine.mark_reauthenticated(alice.handle, "not-a-token")
    with pytest.raises(TryRefreshTokenError):
        engine.mark_reauthenticated(alice.handle, alice.refresh_token.value)
    with pytest.raises(GeneralError, match="another session"):
        engine.mark_reauthenticated(alice.handle, bob.access_token.value)
    assert engine.get_session_information(alice.handle).auth_time == alice.auth_time
    engine.revoke_session(alice.handle)
    with pytest.raises(UnauthorizedError):
        engine.mark_reauthenticated(alice.handle, alice.access_token.value)


# -- max_auth_age ----------------------------------------------------------------------------


def test_max_auth_age_fresh_passes_and_stale_raises(make_engine: MakeEngine, fake_clock: FakeClock) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    token = tokens.access_token.value
    assert engine.get_session(token, max_auth_age=30).handle == tokens.handle
    assert engine.get_session(token, max_auth_age=0).handle == tokens.handle  # same second
    fake_clock.advance(31)
    assert engine.get_session(token).handle == tokens.handle  # without the keyword: fine
    with pytest.raises(ReauthenticationRequiredError) as stale:
        engine.get_session(token, max_auth_age=30)  # served from the verified-token cache
    assert (stale.value.auth_time, stale.value.max_auth_age) == (tokens.auth_time, 30)
    assert engine.get_session(token, max_auth_age=60).handle == tokens.handle
    # Never a refresh: refreshing keeps the old authentication time.
    refreshed = engine.refresh_session(tokens.refresh_token.value)
    with pytest.raises(ReauthenticationRequiredError):
        engine.get_session(refreshed.access_token.value, max_auth_age=30)  # the promotion
    marked = engine.mark_reauthenticated(tokens.handle, token)
    assert marked.new_access_token is not None
    assert engine.get_session(marked.new_access_token.value, max_auth_age=30).handle == tokens.handle


def test_max_auth_age_refuses_a_token_without_auth_time(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    core = engine.core
    original = claims(tokens.access_token.value)
    old_style = core.access_codec.encode(  # as issued before the claim existed
        signing_key(engine),
        user_id="alice",
        session_handle=tokens.handle,
        refresh_token_hash1=original["refreshTokenHash1"],
        parent_refresh_token_hash1=None,
        user_data={},
        anti_csrf_token=None,
        issued_at=original["iat"],
        expires_at=original["exp"],
    )
    assert "auth_time" not in claims(old_style)
    verified = engine.get_session(old_style)
    assert (verified.handle, verified.auth_time) == (tokens.handle, 0)
    with pytest.raises(ReauthenticationRequiredError) as unknown:
        engine.get_session(old_style, max_auth_age=10**9)
    assert unknown.value.auth_time == 0


@pytest.mark.parametrize("value", [-1, 1.5, "60", True])
def test_max_auth_age_must_be_a_non_negative_integer(make_engine: MakeEngine, value: Any) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    with pytest.raises(GeneralError, match="max_auth_age"):
        engine.get_session(tokens.access_token.value, max_auth_age=value)


def test_auth_time_claim_out_of_range_is_a_bad_token(make_engine: MakeEngine) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    key = signing_key(engine)
    head = engine.core.access_codec.header_segment(key)
    original = claims(tokens.access_token.value)

    def signed(auth_time: Any) -> str:
        signing_input = (
            head + "." + b64url_encode(dumps_compact({**original, "auth_time": auth_time}).encode())
        )
        return signing_input + "." + b64url_encode(key.sign(signing_input.encode()))

    assert engine.get_session(signed(original["auth_time"])).auth_time == tokens.auth_time
    assert engine.get_session(signed(None)).auth_time == 0  # null: as without the claim
    for bad in (-1, 10**13, 1.5, "1700000000", True, [1]):
        with pytest.raises(TryRefreshTokenError, match="auth_time"):
            engine.get_session(signed(bad))


# -- check_database --------------------------------------------------------------------------


def test_check_database_sees_a_revocation_by_another_engine(make_engine: MakeEngine) -> None:
    # Without the change feed, which would tell "here" (test_change_feed_engine.py).
    here = make_engine(change_feed=False)
    elsewhere = make_engine(change_feed=False)  # another process, the same store
    tokens = here.create_new_session("alice")
    token = tokens.access_token.value
    assert here.get_session(token, check_database=True).handle == tokens.handle
    assert elsewhere.revoke_session(tokens.handle) is True
    assert here.get_session(token).handle == tokens.handle  # cached, no store read: still valid
    with pytest.raises(UnauthorizedError):
        here.get_session(token, check_database=True)
    with pytest.raises(UnauthorizedError):
        elsewhere.get_session(token, check_database=True)  # never cached there
    assert here.get_session(token).handle == tokens.handle  # the cache rules are unchanged


def test_check_database_sees_expiry(make_engine: MakeEngine, fake_clock: FakeClock) -> None:
    engine = make_engine(access_token_validity=200, refresh_token_validity=300)
    tokens = engine.create_new_session("alice", refresh_token_validity=100)
    fake_clock.advance(150)  # the access token lives on; the session's own lifetime is over
    assert engine.get_session(tokens.access_token.value).handle == tokens.handle
    with pytest.raises(UnauthorizedError):
        engine.get_session(tokens.access_token.value, check_database=True)


# -- the client, revoke_other_sessions, get_all_sessions_for_user ---------------------------------


def test_sessions_of_a_user_newest_activity_first_with_client_metadata(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    laptop = engine.create_new_session("alice", client=LAPTOP)
    created_laptop = fake_clock.ms
    fake_clock.advance(10)
    phone = engine.create_new_session("alice", {"device": "phone"}, client=PHONE)
    created_phone = fake_clock.ms
    engine.create_new_session("bob", client=LAPTOP)
    listed = engine.get_all_sessions_for_user("alice")
    assert [info.handle for info in listed] == [phone.handle, laptop.handle]
    first = listed[0]
    assert isinstance(first, SessionInformation)
    assert (first.ip, first.user_agent, first.created_ip, first.created_user_agent) == (
        PHONE.ip,
        PHONE.user_agent,
        PHONE.ip,
        PHONE.user_agent,
    )
    assert (first.last_active_at, first.created_at, first.jwt_payload) == (
        created_phone,
        created_phone,
        {"device": "phone"},
    )
    # The laptop rotates from the train: its promotion records the client and the time.
    fake_clock.advance(20)
    calls: list[int] = []

    def client() -> ClientInfo:
        calls.append(1)
        return TRAIN

    refreshed = engine.refresh_session(laptop.refresh_token.value, client=TRAIN)
    promoted_at = fake_clock.ms
    assert engine.get_session(refreshed.access_token.value, client=client).new_access_token is not None
    assert calls == [1]
    listed = engine.get_all_sessions_for_user("alice")
    assert [info.handle for info in listed] == [laptop.handle, phone.handle]
    moved = listed[0]
    assert (moved.ip, moved.user_agent) == (TRAIN.ip, TRAIN.user_agent)
    assert (moved.created_ip, moved.created_user_agent) == (LAPTOP.ip, LAPTOP.user_agent)
    assert (moved.last_active_at, moved.created_at) == (promoted_at, created_laptop)
    assert moved.auth_time == laptop.auth_time
    assert engine.get_all_sessions_for_user("carol") == []


def test_client_callable_is_called_only_by_a_promotion(make_engine: MakeEngine) -> None:
    engine = make_engine()
    calls: list[int] = []

    def client() -> ClientInfo:
        calls.append(1)
        return PHONE

    tokens = engine.create_new_session("alice")
    for _ in range(3):
        engine.get_session(tokens.access_token.value, client=client)
    engine.get_session(tokens.access_token.value, client=client, check_database=True, max_auth_age=100)
    assert calls == []
    refreshed = engine.refresh_session(tokens.refresh_token.value)
    engine.get_session(refreshed.access_token.value, client=client)
    engine.get_session(refreshed.access_token.value, client=client)  # already committed: no write
    assert len(calls) <= 2 and calls  # called for the promotion attempt(s) only


def test_a_refresh_that_writes_nothing_records_no_client(
    make_engine: MakeEngine, fake_clock: FakeClock
) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice", client=LAPTOP)
    fake_clock.advance(5)
    engine.refresh_session(tokens.refresh_token.value, client=PHONE)  # R2: nothing written
    info = engine.get_session_information(tokens.handle)
    assert (info.ip, info.last_active_at) == (LAPTOP.ip, info.created_at)


def test_client_values_are_cleaned_and_capped(make_engine: MakeEngine) -> None:
    engine = make_engine()
    tokens = engine.create_new_session(
        "alice", client=ClientInfo("10.0.0.1\x00", "A" * 600 + "\r\nX-Evil: 1")
    )
    info = engine.get_session_information(tokens.handle)
    assert info.ip == "10.0.0.1"
    assert info.user_agent == "A" * 512
    empty = engine.create_new_session("alice", client=ClientInfo("", ""))
    assert engine.get_session_information(empty.handle).ip is None
    for bad in ("10.0.0.1", ("10.0.0.1",), ClientInfo(1, None), ClientInfo(None, b"ua")):  # type: ignore[arg-type]
        with pytest.raises(GeneralError, match="client"):
            engine.create_new_session("alice", client=bad)


def test_revoke_other_sessions_keeps_the_current_one_and_other_users(make_engine: MakeEngine) -> None:
    engine = make_engine()
    alice = [engine.create_new_session("alice", client=client) for client in (LAPTOP, PHONE, TRAIN)]
    bob = engine.create_new_session("bob")
    keep = alice[1]
    removed = engine.revoke_other_sessions("alice", keep.handle)
    assert sorted(removed) == sorted([alice[0].handle, alice[2].handle])
    assert engine.get_all_session_handles_for_user("alice") == [keep.handle]
    assert engine.get_all_session_handles_for_user("bob") == [bob.handle]
    engine.refresh_session(keep.refresh_token.value)
    for gone in (alice[0], alice[2]):
        with pytest.raises(UnauthorizedError):
            engine.refresh_session(gone.refresh_token.value)
    assert engine.revoke_other_sessions("alice", keep.handle) == []
    # A handle the user does not have: every session of the user ends.
    assert engine.revoke_other_sessions("alice", bob.handle) == [keep.handle]
    assert engine.get_all_session_handles_for_user("bob") == [bob.handle]


@pytest.mark.parametrize("bad", [None, 42, b"alice", ["alice"]], ids=repr)
def test_new_management_calls_refuse_what_is_not_a_string(make_engine: MakeEngine, bad: Any) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    with pytest.raises(GeneralError, match="user_id"):
        engine.get_all_sessions_for_user(bad)
    with pytest.raises(GeneralError, match="revoke_other_sessions"):
        engine.revoke_other_sessions(bad, tokens.handle)
    with pytest.raises(GeneralError, match="revoke_other_sessions"):
        engine.revoke_other_sessions("alice", bad)
    with pytest.raises(GeneralError, match="handle"):
        engine.mark_reauthenticated(bad, tokens.access_token.value)
    with pytest.raises(TryRefreshTokenError):
        engine.mark_reauthenticated(tokens.handle, bad)
    assert engine.get_all_session_handles_for_user("alice") == [tokens.handle]


@pytest.mark.parametrize("hostile", ["'; DROP TABLE session_info;--", "*", "%", "_", "é" * 300])
def test_hostile_user_ids_match_nothing(make_engine: MakeEngine, hostile: str) -> None:
    engine = make_engine()
    tokens = engine.create_new_session("alice")
    assert engine.get_all_sessions_for_user(hostile) == []
    assert engine.revoke_other_sessions(hostile, tokens.handle) == []
    assert [info.handle for info in engine.get_all_sessions_for_user("alice")] == [tokens.handle]
