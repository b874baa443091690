"""The change feed as engines use it (docs/change-feed.md): a revocation or payload update
made through one engine (or process) reaches the others within about
``change_feed_max_lag``; while the feed is live verification makes no store call; while it
is not, verification reads the store and still refuses revoked sessions.

Run on SQLite, PostgreSQL and Redis with the sync and the async engine. The measured
delays are printed (``pytest -s``).
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from support.clock import FakeClock
from support.engines import Driven
from support.processes import child_environment
from support.stores import RecordingStore
from support.waiting import DEADLINE, wait_until

from sessionward import (
    ChangeFeedState,
    Config,
    SessionWard,
    TokenTheftDetectedError,
    TryRefreshTokenError,
    UnauthorizedError,
)
from sessionward.stores.changes import Change

GRACE_PERIOD = 10  # refresh_token_reuse_grace_period of the engine fixtures


def wait_live(engine: Driven) -> None:
    wait_until(lambda: engine.change_feed_state().live)


def refused(engine: Driven, token: str, error: type[Exception] = UnauthorizedError) -> Callable[[], bool]:
    def check() -> bool:
        try:
            engine.get_session(token)
        except error:
            return True
        return False

    return check


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sessionward-changes")]


# -- revocations reach the other engine ----------------------------------------------------------


def test_revocations_by_one_engine_reach_another_within_the_bound(
    make_engine: Callable[..., Driven], fake_clock: FakeClock, backend: str, driver: str
) -> None:
    a, b = make_engine(), make_engine()
    s1 = a.create_new_session("alice", {"role": "user"})
    s2 = a.create_new_session("alice")
    s3 = a.create_new_session("bob")
    s4 = a.create_new_session("bob")
    for session in (s1, s2, s3, s4):
        b.get_session(session.access_token.value)  # cached in B from now on
    wait_live(b)
    delays: dict[str, float] = {}

    assert a.revoke_session(s1.handle)
    # A refuses at once; B within the bound (its cached token too).
    with pytest.raises(UnauthorizedError):
        a.get_session(s1.access_token.value)
    delays["revoke_session"] = wait_until(refused(b, s1.access_token.value))
    b.get_session(s2.access_token.value)  # the others still verify

    assert a.revoke_all_sessions_for_user("alice") == [s2.handle]
    delays["revoke_all_sessions_for_user"] = wait_until(refused(b, s2.access_token.value))

    assert a.revoke_other_sessions("bob", s3.handle) == [s4.handle]
    delays["revoke_other_sessions"] = wait_until(refused(b, s4.access_token.value))
    b.get_session(s3.access_token.value)

    # Theft: a refresh token reused after its child was committed ends the session.
    child = a.refresh_session(s3.refresh_token.value)
    promoted = b.get_session(child.access_token.value)  # first use: the rotation commits
    current = promoted.new_access_token or child.access_token
    b.get_session(current.value)
    fake_clock.advance(GRACE_PERIOD + 1)
    with pytest.raises(TokenTheftDetectedError):
        a.refresh_session(s3.refresh_token.value)
    delays["theft"] = wait_until(refused(b, current.value))
    print(f"\n{backend}/{driver}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in delays.items()))
    assert max(delays.values()) < 2 * Config().change_feed_max_lag


def test_a_payload_update_makes_older_tokens_refresh_elsewhere(make_engine: Callable[..., Driven]) -> None:
    a, b = make_engine(), make_engine()
    session = a.create_new_session("alice", {"plan": "free"})
    assert b.get_session(session.access_token.value).jwt_payload == {"plan": "free"}
    wait_live(b)
    a.update_jwt_payload(session.handle, {"plan": "pro"})
    wait_until(refused(b, session.access_token.value, TryRefreshTokenError))
    with pytest.raises(TryRefreshTokenError):  # the cached token, again
        b.get_session(session.access_token.value)
    fresh = b.refresh_session(session.refresh_token.value)
    assert fresh.jwt_payload == {"plan": "pro"}
    verified = b.get_session(fresh.access_token.value)
    assert verified.jwt_payload == {"plan": "pro"}
    token = verified.new_access_token.value if verified.new_access_token else fresh.access_token.value
    for _ in range(3):
        assert b.get_session(token).jwt_payload == {"plan": "pro"}
        assert a.get_session(token).jwt_payload == {"plan": "pro"}


def test_a_token_issued_well_before_the_payload_change_is_refused_without_a_store_read(
    make_engine: Callable[..., Driven],
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    fake_clock: FakeClock,
) -> None:
    a = make_engine()
    b, store = recorded()
    fake_clock.advance(-30)  # the token is issued 30 s before the change (and still valid)
    session = a.create_new_session("alice", {"plan": "free"})
    fake_clock.advance(30)
    b.get_session(session.access_token.value)
    wait_live(b)
    a.update_jwt_payload(session.handle, {"plan": "pro"})
    wait_until(lambda: session.handle in b.core.feed.payload_changed)
    store.calls.clear()
    for _ in range(3):
        with pytest.raises(TryRefreshTokenError):
            b.get_session(session.access_token.value)
    assert sum(store.calls.values()) == 0


def test_revoked_sessions_are_forgotten_once_their_tokens_have_expired(
    make_engine: Callable[..., Driven], fake_clock: FakeClock
) -> None:
    a, b = make_engine(), make_engine()
    first = a.create_new_session("alice")
    second = a.create_new_session("bob")
    b.get_session(first.access_token.value)
    wait_live(b)
    a.revoke_session(first.handle)
    wait_until(lambda: b.change_feed_state().revoked_tracked == 1)
    fake_clock.advance(59)  # access_token_validity is 60: a token of the session may still live
    a.revoke_session(second.handle)
    wait_until(lambda: b.change_feed_state().revoked_tracked == 2)
    fake_clock.advance(10)  # the first session's tokens have all expired now
    third = a.create_new_session("carol")
    a.revoke_session(third.handle)  # any change: the listener's thread prunes
    wait_until(lambda: third.handle in b.core.feed.revoked)
    assert b.change_feed_state().revoked_tracked == 2
    assert first.handle not in b.core.feed.revoked
    assert set(b.core.feed.revoked) == {second.handle, third.handle}


# -- no store call while live; the fallback while not --------------------------------------------


def test_no_store_call_per_verification_while_live(
    make_engine: Callable[..., Driven], recorded: Callable[..., tuple[Driven, RecordingStore]]
) -> None:
    a = make_engine()
    b, store = recorded()
    tokens = [a.create_new_session(f"user{i}").access_token.value for i in range(5)]
    b.get_session(tokens[0])
    wait_live(b)
    store.calls.clear()
    for _ in range(20):
        for token in tokens:  # misses first, then cache hits
            b.get_session(token)
    assert sum(store.calls.values()) == 0
    state = b.change_feed_state()
    assert state.enabled and state.connected and state.live and state.disconnects == 0


def test_while_not_live_verification_reads_the_store_and_misses_nothing(
    make_engine: Callable[..., Driven],
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sessionward.engine")
    a = make_engine(change_feed=False)  # only b's feed logs
    b, store = recorded()
    keep = a.create_new_session("alice")
    gone = a.create_new_session("bob")
    b.get_session(keep.access_token.value)
    b.get_session(gone.access_token.value)
    wait_live(b)
    feed = b.core.feed
    feed.max_lag = 0.0  # the listener's last contact is now always too old: not live
    feed.fresh_until = -math.inf  # and the window it opened at its last contact is closed
    try:
        assert not b.change_feed_state().live
        assert [r.levelname for r in caplog.records if "change feed not live" in r.message] == ["WARNING"]
        store.calls.clear()
        b.get_session(keep.access_token.value)
        assert store.calls["get_session"] == 1  # the row is read, as with blacklisting
        a.revoke_session(gone.handle)
        with pytest.raises(UnauthorizedError):  # refused at once: the row is gone
            b.get_session(gone.access_token.value)
        # A payload change is seen through the row too.
        a.update_jwt_payload(keep.handle, {"v": 2})
        with pytest.raises(TryRefreshTokenError):
            b.get_session(keep.access_token.value)
    finally:
        feed.max_lag = Config().change_feed_max_lag
    wait_live(b)
    # Live at start-up, not live, live again.
    transitions = [r.levelname for r in caplog.records if r.message.startswith("change feed")]
    assert transitions == ["INFO", "WARNING", "INFO"]
    # Delivered by the listener meanwhile (it stayed connected; only its age was refused).
    wait_until(lambda: b.change_feed_state().revoked_tracked == 1 and keep.handle in feed.payload_changed)
    store.calls.clear()
    with pytest.raises(UnauthorizedError):  # from the feed now: nothing was missed
        b.get_session(gone.access_token.value)
    assert sum(store.calls.values()) == 0
    # A token issued within seconds of the payload change: the row tells once, then the
    # verdict is remembered.
    for _ in range(3):
        with pytest.raises(TryRefreshTokenError):
            b.get_session(keep.access_token.value)
    assert store.calls["get_session"] <= 1 and sum(store.calls.values()) <= 1


def kill_listener_connection(listener: Any, store_url: str, backend: str) -> None:
    """End the listener's connection from the server's side."""
    if backend == "postgres":
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))
    else:
        import redis

        redis_admin = redis.Redis.from_url(store_url.split("?", 1)[0])
        try:
            assert redis_admin.client_kill_filter(_id=listener.client_id) == 1
        finally:
            redis_admin.close()


def test_a_killed_listener_connection_falls_back_then_resumes(
    make_engine: Callable[..., Driven],
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    backend: str,
    store_url: str,
) -> None:
    if backend == "sqlite":
        pytest.skip("an SQLite listener's connection is a file: nothing to kill")

    a = make_engine()
    b, store = recorded()
    victim = a.create_new_session("alice")
    b.get_session(victim.access_token.value)
    wait_live(b)
    kill_listener_connection(b.core.feed.listener, store_url, backend)
    a.revoke_session(victim.handle)
    # Refused within the bound: from the row once the listener is known to be down (or
    # too quiet), or from the feed once it has reconnected and caught up.
    delay = wait_until(refused(b, victim.access_token.value))
    print(f"\nrefused {delay * 1000:.1f} ms after the revocation, listener connection killed")
    assert delay < 2 * Config().change_feed_max_lag
    wait_until(lambda: b.change_feed_state().disconnects >= 1)
    wait_live(b)
    store.calls.clear()
    with pytest.raises(UnauthorizedError):
        b.get_session(victim.access_token.value)
    assert sum(store.calls.values()) == 0


# -- the cached path: freshness window and eviction ----------------------------------------------


def test_the_freshness_window_follows_the_listener(
    make_engine: Callable[..., Driven], fake_clock: FakeClock, backend: str, store_url: str
) -> None:
    engine = make_engine()
    engine.create_new_session("alice")
    wait_live(engine)
    feed = engine.core.feed
    wait_until(lambda: feed.fresh_from <= fake_clock() < feed.fresh_until)
    assert feed.fresh_until - feed.fresh_from == pytest.approx(feed.max_lag)
    if backend != "sqlite":
        kill_listener_connection(feed.listener, store_url, backend)
        # Closed as soon as the listener sees the loss, whatever the clock says.
        wait_until(lambda: feed.fresh_until == -math.inf or engine.change_feed_state().disconnects >= 1)
        wait_until(lambda: feed.fresh_from <= fake_clock() < feed.fresh_until)  # reconnected
    engine.close()
    assert feed.fresh_until == -math.inf


def test_a_flagged_session_leaves_the_cache(
    make_engine: Callable[..., Driven], recorded: Callable[..., tuple[Driven, RecordingStore]]
) -> None:
    a = make_engine()
    b, store = recorded()
    gone = a.create_new_session("alice")
    changed = a.create_new_session("bob", {"plan": "free"})
    kept = a.create_new_session("carol")
    for session in (gone, changed, kept):
        b.get_session(session.access_token.value)
    wait_live(b)
    entries = b.core.cache.entries
    assert {gone.access_token.value, changed.access_token.value} <= set(entries)
    a.revoke_session(gone.handle)
    a.update_jwt_payload(changed.handle, {"plan": "pro"})
    wait_until(lambda: changed.handle in b.core.feed.payload_changed)
    entries = b.core.cache.entries
    assert gone.access_token.value not in entries
    assert changed.access_token.value not in entries
    assert kept.access_token.value in entries
    store.calls.clear()
    with pytest.raises(UnauthorizedError):
        b.get_session(gone.access_token.value)
    assert b.get_session(kept.access_token.value).handle == kept.handle
    assert sum(store.calls.values()) == 0


def test_a_token_cached_after_its_sessions_flag_is_refused_and_not_kept(
    make_engine: Callable[..., Driven], fake_clock: FakeClock
) -> None:
    # The order the cached path relies on: a verification caches first and checks the
    # flags second; the feed flags first and evicts second. Here the flag (and its
    # eviction) comes before the token is ever cached.
    a, b = make_engine(), make_engine()
    victim = a.create_new_session("alice")
    b.create_new_session("warm-up")
    wait_live(b)
    feed = b.core.feed
    feed.on_changes([Change(10**12, "revoked", victim.handle, int(fake_clock() * 1000))])
    for _ in range(3):  # never served from the cache: it was refused before
        with pytest.raises(UnauthorizedError):
            b.get_session(victim.access_token.value)
        assert victim.access_token.value not in b.core.cache.entries


def test_a_token_issued_after_a_payload_change_stays_cached(
    make_engine: Callable[..., Driven],
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    fake_clock: FakeClock,
) -> None:
    a = make_engine()
    b, store = recorded()
    fake_clock.advance(-30)
    session = a.create_new_session("alice", {"plan": "free"})
    fake_clock.advance(30)
    b.get_session(session.access_token.value)
    wait_live(b)
    a.update_jwt_payload(session.handle, {"plan": "pro"})
    wait_until(lambda: session.handle in b.core.feed.payload_changed)
    fake_clock.advance(10)  # the new token is issued well after the change: no row to read
    fresh = a.refresh_session(session.refresh_token.value)
    token = a.get_session(fresh.access_token.value).new_access_token
    assert token is not None
    wait_until(lambda: b.core.feed.fresh_from <= fake_clock() < b.core.feed.fresh_until)
    store.calls.clear()
    for _ in range(3):
        assert b.get_session(token.value).jwt_payload == {"plan": "pro"}
    assert token.value in b.core.cache.entries
    assert sum(store.calls.values()) == 0


def test_a_clock_set_back_falls_back_to_the_monotonic_check(
    make_engine: Callable[..., Driven],
    recorded: Callable[..., tuple[Driven, RecordingStore]],
    fake_clock: FakeClock,
) -> None:
    a = make_engine()
    b, store = recorded()
    victim = a.create_new_session("alice")
    kept = a.create_new_session("bob")
    b.get_session(victim.access_token.value)
    b.get_session(kept.access_token.value)
    wait_live(b)
    fake_clock.advance(10)
    feed = b.core.feed
    wait_until(lambda: feed.fresh_from <= fake_clock() < feed.fresh_until)
    a.revoke_session(victim.handle)
    wait_until(lambda: victim.handle in feed.revoked)
    # Back before the window the listener opened (the tokens are still not from the
    # future): the window alone is not trusted.
    fake_clock.advance(-5)
    assert not feed.fresh_from <= fake_clock() < feed.fresh_until
    store.calls.clear()
    with pytest.raises(UnauthorizedError):
        b.get_session(victim.access_token.value)
    assert b.get_session(kept.access_token.value).handle == kept.handle
    assert sum(store.calls.values()) == 0  # live by the monotonic clock: no row read


# -- off, closing, processes ---------------------------------------------------------------------


def test_change_feed_off_behaves_as_before(
    make_engine: Callable[..., Driven], recorded: Callable[..., tuple[Driven, RecordingStore]]
) -> None:
    before = set(listener_threads())
    a = make_engine(change_feed=False)
    b, store = recorded(change_feed=False)
    session = a.create_new_session("alice")
    b.get_session(session.access_token.value)
    assert set(listener_threads()) == before
    assert b.change_feed_state() == ChangeFeedState(False, False, False, 0, None, 0, 0)
    store.calls.clear()
    a.revoke_session(session.handle)
    time.sleep(0.2)
    # As without the feed: the token verifies until it expires, without a store read.
    assert b.get_session(session.access_token.value).handle == session.handle
    assert sum(store.calls.values()) == 0


def test_no_listener_thread_is_left_after_close(make_engine: Callable[..., Driven]) -> None:
    before = set(listener_threads())
    engines = [make_engine() for _ in range(3)]
    for engine in engines:
        engine.create_new_session("alice")
    assert len(set(listener_threads()) - before) == 3
    for engine in engines:
        engine.close()
        assert not engine.change_feed_state().live
    assert set(listener_threads()) == before


CHILD = """
import sys, time
from sessionward import Config, SessionWard
config = Config.from_env()
with SessionWard(config, store=config.store) as engine:
    engine.get_jwt_payload(sys.argv[1])  # started up: the revocation alone is timed
    before = time.monotonic()  # CLOCK_MONOTONIC: one clock for the whole machine
    revoked = engine.revoke_session(sys.argv[1])
    print(revoked, before, time.monotonic(), flush=True)
"""


def test_a_revocation_in_another_process_reaches_this_one(
    make_engine: Callable[..., Driven], store_url: str, backend: str, driver: str
) -> None:
    if driver == "async":
        pytest.skip("one driver is enough: the other process is the point")
    b = make_engine()
    session = b.create_new_session("alice")
    b.get_session(session.access_token.value)
    wait_live(b)
    env = child_environment({"SESSIONWARD_STORE": store_url, "SESSIONWARD_ACCESS_TOKEN_ALGORITHM": "HS256"})
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, session.handle],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(refused(b, session.access_token.value), timeout=60)  # polled while the child runs
        refused_at = time.monotonic()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    revoked, before, after = out.split()
    assert revoked == "True"
    delay = refused_at - float(before)
    call = float(after) - float(before)
    print(
        f"\n{backend}: refused here {delay * 1000:.1f} ms after the revoke call began "
        f"(the call took {call * 1000:.1f} ms)"
    )
    assert delay < DEADLINE


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_listener(make_engine: Callable[..., Driven], driver: str) -> None:
    if driver == "async":
        pytest.skip("forking under a running event loop is not supported")
    a, b = make_engine(), make_engine()
    first = a.create_new_session("alice")
    second = a.create_new_session("bob")
    b.get_session(first.access_token.value)
    b.get_session(second.access_token.value)
    wait_live(b)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "fork() in a multi-threaded process"
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 2
        try:
            os.close(ready_r)
            os.close(go_w)
            inherited_live = b.change_feed_state().live
            b.get_session(first.access_token.value)  # not live: the row is read, the listener restarts
            deadline = time.monotonic() + DEADLINE
            while not b.change_feed_state().live and time.monotonic() < deadline:
                time.sleep(0.01)
            own = [t for t in listener_threads() if t.is_alive()]
            os.write(ready_w, b"1")
            os.read(go_r, 1)  # the parent revoked
            refused_in_time = False
            while time.monotonic() < deadline + DEADLINE:
                try:
                    b.get_session(first.access_token.value)
                except UnauthorizedError:
                    refused_in_time = True
                    break
                time.sleep(0.005)
            code = 0 if (not inherited_live and len(own) == 1 and refused_in_time) else 1
            assert isinstance(b.engine, SessionWard)
            b.engine.close()
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    assert os.read(ready_r, 1) == b"1"
    a.revoke_session(first.handle)
    os.write(go_w, b"1")
    _, status = os.waitpid(pid, 0)
    os.close(ready_r)
    os.close(go_w)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own listener is unaffected.
    wait_until(refused(b, first.access_token.value))
    assert b.change_feed_state().disconnects == 0
    b.get_session(second.access_token.value)


# -- gauges --------------------------------------------------------------------------------------


def test_the_gauges_report_lag_and_liveness_per_engine(make_engine: Callable[..., Driven]) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from sessionward.metrics import FEED_INSTRUMENT_NAMES, ChangeFeedGauges

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])

    def points() -> dict[str, dict[str, float]]:
        data = reader.get_metrics_data()
        assert data is not None
        return {
            metric.name: {
                str((point.attributes or {})["engine"]): point.value  # type: ignore[union-attr]
                for point in metric.data.data_points
            }
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }

    try:
        a, b = make_engine(), make_engine()
        a.create_new_session("alice")
        b.create_new_session("bob")
        wait_live(a)
        wait_live(b)
        gauges = ChangeFeedGauges(provider)
        for feed in (a.core.feed, b.core.feed, b.core.feed):  # once per engine
            gauges.add(feed)
        seen = points()
        assert set(seen) == set(FEED_INSTRUMENT_NAMES)
        assert seen["sessionward.change_feed.connected"] == {"1": 1, "2": 1}
        lags = seen["sessionward.change_feed.lag"]
        assert set(lags) == {"1", "2"}
        assert all(0 <= lag < 1000 * Config().change_feed_max_lag for lag in lags.values())
        a.core.feed.max_lag = 0.0  # not live: reported as 0
        b.close()  # a closed engine stops reporting
        assert points()["sessionward.change_feed.connected"] == {"1": 0}
    finally:
        provider.shutdown()
