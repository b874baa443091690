"""The change feed at an engine's start-up (docs/change-feed.md): a process started after a
revocation — a worker spawned or respawned later than the others — refuses the revoked
session like every other process, because a starting engine replays the changes of the
last access-token lifetime (``replay_from``: a binary search, a handful of store reads
however long the log); and no verification slips between the engine becoming ready and
its feed being consulted (another thread verifying while the first one starts the
listener reads the row); and a key retired while an engine starts is not missed.

Run on SQLite, PostgreSQL and Redis; the engine-level tests with both drivers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support.clock import FakeClock
from support.engines import Driven
from support.processes import child_environment
from support.stores import RecordingStore
from support.tokens import kid_of
from support.waiting import DEADLINE, wait_until

from sessionward import Config, SessionWard, TryRefreshTokenError, UnauthorizedError
from sessionward.engine.feed import REPLAY_MARGIN, replay_from
from sessionward.engine.flow import perform
from sessionward.stores.changes import Change
from sessionward.stores.urls import open_store


class FeedRecordingStore(RecordingStore):
    """A :class:`RecordingStore` that names the change-feed operations (an ``isinstance``
    check against the ``ChangeFeed`` protocol finds them), counted like the others."""

    def changes_since(self, seq: int, limit: int = 1000) -> Any:
        return self.__getattr__("changes_since")(seq, limit)

    def last_change_seq(self) -> Any:
        return self.__getattr__("last_change_seq")()

    def prune_changes(self, before_ms: int) -> Any:
        return self.__getattr__("prune_changes")(before_ms)

    def change_listener(self, callback: Any, since: int | None = None) -> Any:
        return self.__getattr__("change_listener")(callback, since)


def expected_start(log: list[Change], cutoff_ms: int) -> int:
    """The ``seq`` of the newest change written before ``cutoff_ms`` (0 if none)."""
    older = [change.seq for change in log if change.at < cutoff_ms]
    return max(older, default=0)


def test_replay_from_finds_the_newest_change_before_the_cutoff(store_url: str) -> None:
    engine = SessionWard(Config(store=store_url, cookie_secure=False))
    store = RecordingStore(open_store(store_url))
    try:
        handles = []
        for index in range(40):
            handles.append(engine.create_new_session(f"user{index}").handle)
        for index, handle in enumerate(handles):
            engine.revoke_session(handle)
            if index % 8 == 0:
                time.sleep(0.003)  # several distinct store times, and ties between them
        # A log that does not start at 1: its first changes pruned.
        first = store.inner.changes_since(0, 3)
        store.inner.prune_changes(first[-1].at + 1)
        log = store.inner.changes_since(0, 1000)
        assert log[0].seq > 1
        last = store.inner.last_change_seq()
        cutoffs = sorted({change.at for change in log} | {log[0].at - 1, log[-1].at + 1})
        for cutoff in cutoffs:
            store.calls.clear()
            assert perform(store, replay_from(last, cutoff)) == expected_start(log, cutoff), cutoff
            assert store.calls["changes_since"] <= 2 + math.ceil(math.log2(len(log))) + 1
        # A log whose newest change is old: one read. An empty log: none.
        store.calls.clear()
        assert perform(store, replay_from(last, log[-1].at + 1)) == last
        assert store.calls["changes_since"] == 1
        assert perform(store, replay_from(0, 0)) == 0
    finally:
        engine.close()
        store.inner.close()


def test_an_engine_started_after_a_revocation_refuses_the_session(
    make_engine: Callable[..., Driven],
) -> None:
    a = make_engine()
    revoked = a.create_new_session("alice")
    updated = a.create_new_session("bob", {"v": 1})
    kept = a.create_new_session("carol")
    a.revoke_session(revoked.handle)
    a.update_jwt_payload(updated.handle, {"v": 2})  # stamped later than the token's iat
    b = make_engine()  # a process started after both changes
    with pytest.raises(UnauthorizedError):
        b.get_session(revoked.access_token.value)
    with pytest.raises(TryRefreshTokenError):
        b.get_session(updated.access_token.value)
    wait_until(lambda: b.change_feed_state().live)
    assert revoked.handle in b.core.feed.revoked
    assert updated.handle in b.core.feed.payload_changed
    assert b.get_session(kept.access_token.value).user_id == "carol"
    with pytest.raises(UnauthorizedError):  # from the feed now
        b.get_session(revoked.access_token.value)


def test_an_engine_started_after_a_revocation_refuses_it_without_store_reads_once_live(
    store_url: str,
) -> None:
    config = Config(store=store_url, cookie_secure=False)
    a = SessionWard(config)
    store = FeedRecordingStore(open_store(store_url))
    b = SessionWard(config, store=store)
    try:
        revoked = a.create_new_session("alice")
        a.revoke_session(revoked.handle)
        b.jwks()  # start-up (and the listener, which replays the revocation)
        wait_until(lambda: b.change_feed_state().live and b.change_feed_state().revoked_tracked == 1)
        store.calls.clear()
        for _ in range(3):
            with pytest.raises(UnauthorizedError):
                b.get_session(revoked.access_token.value)
        assert sum(store.calls.values()) == 0
    finally:
        b.close()
        a.close()
        store.inner.close()


def test_changes_older_than_the_tokens_are_not_replayed(
    make_engine: Callable[..., Driven], fake_clock: FakeClock
) -> None:
    a = make_engine()
    old = a.create_new_session("alice")
    a.revoke_session(old.handle)
    # Every access token that session could have had has expired by now.
    window = a.engine.config.access_token_validity + a.engine.config.clock_skew_leeway + REPLAY_MARGIN
    fake_clock.advance(window + 5)
    b = make_engine()
    b.jwks()
    wait_until(lambda: b.change_feed_state().live)
    assert b.change_feed_state().revoked_tracked == 0
    recent = a.create_new_session("bob")
    a.revoke_session(recent.handle)
    wait_until(lambda: b.change_feed_state().revoked_tracked == 1)
    assert set(b.core.feed.revoked) == {recent.handle}


class InterleavingStore(FeedRecordingStore):
    """Runs ``action`` once, just before the first ``last_change_seq`` (the start-up's)."""

    def __init__(self, inner: Any, action: Callable[[], None]) -> None:
        super().__init__(inner)
        self.action: Callable[[], None] | None = action

    def last_change_seq(self) -> Any:
        action, self.action = self.action, None
        if action is not None:
            action()
        return super().last_change_seq()


def test_a_key_retired_while_an_engine_starts_is_not_missed(store_url: str) -> None:
    """A key change is either in the keys the starting engine loads or delivered by its
    listener, whichever side of the start-up's read of the log's end it falls."""
    config = Config(store=store_url, cookie_secure=False)
    a = SessionWard(config)
    token = a.create_new_session("alice").access_token.value
    store = InterleavingStore(open_store(store_url), lambda: a.retire_signing_key(kid_of(token)))
    b = SessionWard(config, store=store)
    try:
        with pytest.raises(TryRefreshTokenError):  # its first call: start-up, then this
            b.get_session(token)
        wait_until(lambda: b.change_feed_state().live)
        with pytest.raises(TryRefreshTokenError):
            b.get_session(token)
    finally:
        b.close()
        a.close()
        store.inner.close()


class GatedListenerStore(FeedRecordingStore):
    """Holds ``change_listener`` until :attr:`release` is set (:attr:`entered` says it was
    called): the listener is being started, the engine is already started up."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.entered = threading.Event()
        self.release = threading.Event()

    def change_listener(self, callback: Any, since: int | None = None) -> Any:
        self.entered.set()
        self.release.wait(DEADLINE)
        return super().change_listener(callback, since)


def test_a_verification_while_the_listener_is_being_started_reads_the_row(store_url: str) -> None:
    config = Config(store=store_url, cookie_secure=False)
    a = SessionWard(config)
    store = GatedListenerStore(open_store(store_url))
    b = SessionWard(config, store=store)
    starting = threading.Thread(target=b.jwks)  # start-up, then the listener: held
    try:
        revoked = a.create_new_session("alice")
        a.revoke_session(revoked.handle)
        starting.start()
        assert store.entered.wait(DEADLINE)
        # Another thread (a gthread worker's, say) verifies meanwhile: the engine is ready,
        # its listener not there yet, so the row is read.
        store.calls.clear()
        with pytest.raises(UnauthorizedError):
            b.get_session(revoked.access_token.value)
        assert store.calls["get_session"] == 1
        store.release.set()
        starting.join(DEADLINE)
        wait_until(lambda: b.change_feed_state().live)
    finally:
        store.release.set()
        if starting.is_alive():
            starting.join(DEADLINE)
        b.close()
        a.close()
        store.inner.close()


def test_a_payload_changed_before_start_up_makes_older_tokens_refresh_without_store_reads(
    make_engine: Callable[..., Driven],
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    fake_clock: FakeClock,
) -> None:
    a = make_engine()
    fake_clock.advance(-30)  # issued well before the change (and still valid)
    session = a.create_new_session("alice", {"plan": "free"})
    fake_clock.advance(30)
    a.update_jwt_payload(session.handle, {"plan": "pro"})
    b, store = recorded()  # a process started after the change
    b.create_new_session("warm-up")
    wait_until(lambda: b.change_feed_state().live)
    store.calls.clear()
    for _ in range(3):
        with pytest.raises(TryRefreshTokenError):
            b.get_session(session.access_token.value)
    assert sum(store.calls.values()) == 0
    assert b.refresh_session(session.refresh_token.value).jwt_payload == {"plan": "pro"}


def test_key_changes_before_start_up_are_not_replayed(
    make_engine: Callable[..., Driven], recorded: Callable[..., tuple[Driven, RecordingStore]]
) -> None:
    a = make_engine()
    token = a.create_new_session("alice").access_token.value
    a.rotate_signing_key()
    a.retire_signing_key(kid_of(token))
    b, store = recorded()
    with pytest.raises(TryRefreshTokenError):  # signed by the retired key
        b.get_session(token)
    wait_until(lambda: b.change_feed_state().live)
    assert not b.core.keys.stale  # the keys read at start-up are current: no reload due
    store.calls.clear()
    b.create_new_session("carol")
    assert dict(store.calls) == {"insert_session": 1}


CHILD = """
import json, sys, time
from sessionward import Config, SessionWard
config = Config.from_env()
with SessionWard(config, store=config.store) as engine:
    engine.jwks()  # start-up
    deadline = time.monotonic() + 10
    while not engine.change_feed_state().live and time.monotonic() < deadline:
        time.sleep(0.01)
    outcomes = [engine.change_feed_state().live]
    for token in sys.argv[1:]:
        try:
            outcomes.append(engine.get_session(token).handle)
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    print(json.dumps(outcomes), flush=True)
"""


def test_a_process_started_after_a_revocation_refuses_the_session(
    make_engine: Callable[..., Driven], store_url: str, driver: str
) -> None:
    if driver == "async":
        pytest.skip("one driver is enough: the new process is the point")
    a = make_engine()
    gone = a.create_new_session("alice")
    kept = a.create_new_session("bob")
    a.revoke_session(gone.handle)
    env = child_environment({"SESSIONWARD_STORE": store_url, "SESSIONWARD_ACCESS_TOKEN_ALGORITHM": "HS256"})
    done = subprocess.run(
        [sys.executable, "-c", CHILD, gone.access_token.value, kept.access_token.value],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, "UnauthorizedError", kept.handle]
