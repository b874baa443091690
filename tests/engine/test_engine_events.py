"""The events the engine emits (docs/events.md): one per store write that succeeded, with the
right kind, reason and facts, never a token; a subscriber that raises changes nothing for
the request; a failed store write emits nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.engines import Driven, recorded_events

from sessionward import (
    AsyncSessionWard,
    ClientInfo,
    Config,
    ConfigError,
    GeneralError,
    SessionTokens,
    SessionWard,
    StorageUnavailableError,
    TokenTheftDetectedError,
    UnauthorizedError,
)
from sessionward.events import (
    RevocationReason,
    SessionCreated,
    SessionEvent,
    SessionRefreshed,
    SessionRevoked,
    SessionUpdated,
    TokenTheftDetected,
)
from sessionward.stores.sqlite import SQLiteStore
from sessionward.stores.threaded import ThreadedAsyncStore

MakeEngine = Callable[..., Driven]
CLIENT = ClientInfo("192.0.2.44", "Mozilla/5.0 (Macintosh) Safari/17")


def secrets_of(tokens: SessionTokens) -> list[str]:
    values = [
        tokens.access_token.value,
        tokens.refresh_token.value,
        tokens.id_refresh_token.value,
        tokens.front_token,
    ]
    if tokens.anti_csrf_token is not None:
        values.append(tokens.anti_csrf_token)
    return values


def assert_no_token(events: list[SessionEvent], secrets: list[str]) -> None:
    for event in events:
        texts = [repr(event), *(str(getattr(event, f.name)) for f in dataclasses.fields(event))]
        for secret in secrets:
            for text in texts:
                # Every token is far longer than any field but the user agent; a token's
                # characteristic middle part must not appear anywhere.
                assert secret[8:40] not in text, (type(event).__name__, text)


def test_every_operation_emits_its_event_once(make_engine: MakeEngine, fake_clock: FakeClock) -> None:
    engine = make_engine(enable_anti_csrf=True)
    events: list[SessionEvent] = []
    engine.subscribe(events.append)
    secrets: list[str] = []

    tokens = engine.create_new_session("alice", {"role": "admin"}, persistent=False, client=CLIENT)
    secrets += secrets_of(tokens)
    assert events == [
        SessionCreated(tokens.handle, "alice", fake_clock.ms, False, CLIENT.ip, CLIENT.user_agent)
    ]
    engine.get_session(tokens.access_token.value)  # no store write: no event
    assert len(events) == 1

    fake_clock.advance(5)
    refreshed = engine.refresh_session(tokens.refresh_token.value, client=CLIENT)
    secrets += secrets_of(refreshed)
    (event,) = events[1:]
    assert isinstance(event, SessionRefreshed)
    assert (event.handle, event.user_id, event.at, event.promoted) == (
        tokens.handle,
        "alice",
        fake_clock.ms,
        False,
    )
    assert 0 <= event.duration < 30

    verified = engine.get_session(refreshed.access_token.value, client=lambda: CLIENT)
    assert verified.new_access_token is not None
    secrets.append(verified.new_access_token.value)
    (event,) = events[2:]
    assert isinstance(event, SessionRefreshed) and event.promoted and event.handle == tokens.handle
    engine.get_session(refreshed.access_token.value)  # committed already: no second event
    assert len(events) == 3

    engine.update_jwt_payload(tokens.handle, {"role": "reader"})
    engine.update_session_data(tokens.handle, {"cart": [1]})
    marked = engine.mark_reauthenticated(tokens.handle, verified.new_access_token.value)
    assert marked.new_access_token is not None
    secrets.append(marked.new_access_token.value)
    assert events[3:] == [
        SessionUpdated(tokens.handle, "alice", fake_clock.ms, "jwt_payload"),
        SessionUpdated(tokens.handle, "alice", fake_clock.ms, "session_data"),
        SessionUpdated(tokens.handle, "alice", fake_clock.ms, "auth_time"),
    ]
    assert_no_token(events, secrets)


def test_revocations_carry_their_reason(make_engine: MakeEngine, fake_clock: FakeClock) -> None:
    engine = make_engine()
    events: list[SessionEvent] = []
    engine.subscribe(events.append)
    made = [engine.create_new_session("alice") for _ in range(4)]
    bob = engine.create_new_session("bob")
    other = engine.create_new_session("carol")
    short = engine.create_new_session("dave", refresh_token_validity=10)
    del events[:]

    assert engine.revoke_session(made[0].handle) is True
    assert engine.revoke_session(made[0].handle) is False  # nothing deleted: no event
    assert events == [SessionRevoked(made[0].handle, None, fake_clock.ms, RevocationReason.USER)]
    del events[:]

    engine.revoke_other_sessions("alice", made[1].handle)
    assert sorted(e.handle for e in events) == sorted([made[2].handle, made[3].handle])
    assert {(type(e), e.user_id, e.reason) for e in events if isinstance(e, SessionRevoked)} == {
        (SessionRevoked, "alice", RevocationReason.OTHER_DEVICES)
    }
    assert len(events) == 2
    del events[:]

    engine.revoke_all_sessions_for_user("alice")
    assert events == [SessionRevoked(made[1].handle, "alice", fake_clock.ms, RevocationReason.USER)]
    del events[:]

    engine.revoke_multiple_sessions([bob.handle], reason=RevocationReason.ADMIN)
    engine.revoke_all_sessions_for_user("carol", reason="admin")  # the value is accepted too
    assert events == [
        SessionRevoked(bob.handle, None, fake_clock.ms, RevocationReason.ADMIN),
        SessionRevoked(other.handle, "carol", fake_clock.ms, RevocationReason.ADMIN),
    ]
    with pytest.raises(GeneralError, match="reason"):
        engine.revoke_session(short.handle, reason="bored")
    del events[:]

    fake_clock.advance(11)
    assert engine.delete_expired_sessions() == 1
    assert events == [SessionRevoked(short.handle, "dave", fake_clock.ms, RevocationReason.EXPIRED)]


def test_theft_emits_theft_and_revocation(make_engine: MakeEngine, fake_clock: FakeClock) -> None:
    engine = make_engine()
    events: list[SessionEvent] = []
    engine.subscribe(events.append)
    root = engine.create_new_session("alice")
    child = engine.refresh_session(root.refresh_token.value)
    engine.refresh_session(child.refresh_token.value)  # commits the child
    fake_clock.advance(11)  # past the grace window
    del events[:]
    with pytest.raises(TokenTheftDetectedError):
        engine.refresh_session(root.refresh_token.value)
    assert events == [
        TokenTheftDetected(root.handle, "alice", fake_clock.ms),
        SessionRevoked(root.handle, "alice", fake_clock.ms, RevocationReason.THEFT),
    ]
    assert_no_token(events, secrets_of(root) + secrets_of(child))


def test_unsubscribe_stops_delivery(make_engine: MakeEngine) -> None:
    engine = make_engine()
    events: list[SessionEvent] = []
    unsubscribe = engine.subscribe(events.append)
    engine.create_new_session("alice")
    unsubscribe()
    engine.create_new_session("alice")
    assert len(events) == 1


# -- subscribers that fail, configured subscribers ------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def sqlite_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driven]:
    config = Config(store=f"sqlite:///{tmp_path}/e.db", access_token_algorithm="HS256", cookie_secure=False)
    if request.param == "sync":
        driven = Driven(SessionWard(config), None)
        yield driven
        driven.close()
        return
    with asyncio.Runner() as runner:
        driven = Driven(AsyncSessionWard(config), runner)
        yield driven
        driven.close()


def test_a_raising_subscriber_breaks_nothing_and_is_logged(
    sqlite_engine: Driven, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("subscriber bug")

    sqlite_engine.subscribe(broken)
    sqlite_engine.subscribe(delivered.append)  # later subscribers still run
    with caplog.at_level(logging.INFO, logger="sessionward.events"):
        tokens = sqlite_engine.create_new_session("alice")
        refreshed = sqlite_engine.refresh_session(tokens.refresh_token.value)
        assert sqlite_engine.get_session(refreshed.access_token.value).new_access_token is not None
        sqlite_engine.revoke_session(tokens.handle)
    assert [type(e) for e in delivered] == [
        SessionCreated,
        SessionRefreshed,
        SessionRefreshed,
        SessionRevoked,
    ]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 4
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures)
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in secrets_of(tokens) + secrets_of(refreshed):
            assert secret[8:40] not in text


def test_configured_subscribers_are_imported_at_construction(tmp_path: Path) -> None:
    recorded_events.clear()
    direct: list[SessionEvent] = []
    config = Config(
        store=f"sqlite:///{tmp_path}/e.db",
        access_token_algorithm="HS256",
        event_subscribers=("support.engines:record_event", direct.append),
    )
    with SessionWard(config) as engine:
        tokens = engine.create_new_session("alice")
    assert [e.handle for e in recorded_events] == [e.handle for e in direct] == [tokens.handle]


@pytest.mark.parametrize(
    "subscriber",
    ["support.no_such_module:record", "support.engines:no_such_function", "support.engines:CLIENT_NAME"],
)
def test_a_subscriber_that_cannot_be_imported_fails_the_engine_construction(
    tmp_path: Path, subscriber: str
) -> None:
    config = Config(store=f"sqlite:///{tmp_path}/e.db", event_subscribers=(subscriber,))
    with pytest.raises(ConfigError, match="event_subscribers"):
        SessionWard(config)
    with pytest.raises(ConfigError, match="event_subscribers"):
        AsyncSessionWard(config)


# -- failed writes emit nothing ---------------------------------------------------------------------


class FailingStore:
    """A real SQLite store whose method ``failing`` raises ``StorageUnavailableError`` (as a
    store that lost its connection does) while ``failing`` is set."""

    def __init__(self, url: str) -> None:
        self.inner = SQLiteStore(url)
        self.failing: str | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name != self.failing:
            return attribute

        def fail(*args: Any) -> Any:
            raise StorageUnavailableError(f"{name}: the store is unreachable")

        return fail


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_no_event_when_the_store_write_fails(tmp_path: Path, driver: str) -> None:
    clock = FakeClock()
    store = FailingStore(f"sqlite:///{tmp_path}/f.db")
    config = Config(store="sqlite:///unused.db", access_token_algorithm="HS256")
    runner = asyncio.Runner() if driver == "async" else None
    if runner is None:
        engine = Driven(SessionWard(config, store=store, clock=clock), None)
    else:
        engine = Driven(AsyncSessionWard(config, store=ThreadedAsyncStore(store), clock=clock), runner)
    try:
        events: list[SessionEvent] = []
        engine.subscribe(events.append)
        tokens = engine.create_new_session("alice")
        other = engine.create_new_session("alice")
        refreshed = engine.refresh_session(tokens.refresh_token.value)
        clock.advance(1)
        del events[:]
        attempts: list[tuple[str, Callable[[], Any]]] = [
            ("insert_session", lambda: engine.create_new_session("alice")),
            ("promote_returning", lambda: engine.get_session(refreshed.access_token.value)),
            ("update_jwt_payload", lambda: engine.update_jwt_payload(tokens.handle, {"a": 1})),
            ("update_session_data", lambda: engine.update_session_data(tokens.handle, {"a": 1})),
            (
                "update_auth_time",
                lambda: engine.mark_reauthenticated(tokens.handle, tokens.access_token.value),
            ),
            ("delete_sessions", lambda: engine.revoke_session(tokens.handle)),
            ("delete_sessions_for_user", lambda: engine.revoke_all_sessions_for_user("alice")),
            ("delete_other_sessions", lambda: engine.revoke_other_sessions("alice", other.handle)),
            ("delete_expired_sessions", lambda: engine.delete_expired_sessions()),
        ]
        for method, attempt in attempts:
            store.failing = method
            with pytest.raises(StorageUnavailableError):
                attempt()
            assert events == [], method
        store.failing = None
        # The same calls succeed (and report) once the store is back.
        engine.update_jwt_payload(tokens.handle, {"a": 1})
        assert [type(e) for e in events] == [SessionUpdated]
        engine.revoke_session(tokens.handle)
        with pytest.raises(UnauthorizedError):
            engine.update_session_data(tokens.handle, {})  # gone: nothing written, no event
        assert [type(e) for e in events] == [SessionUpdated, SessionRevoked]
    finally:
        engine.close()
        store.inner.close()
        if runner is not None:
            runner.close()
