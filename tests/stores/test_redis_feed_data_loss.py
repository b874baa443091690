"""The Redis change feed when Redis loses data: a restart without persistence (or after a
crash, with snapshots only), a failover to a replica that lagged, a ``FLUSHALL``.

The change counter then starts again below the position the listeners had reached, and the
sequence numbers they had seen are handed out anew. A listener reading only after its own
position would never see those changes — revocations missed for as long as the access tokens
live — so the listener checks the log whenever it (re)connects and at every quiet heartbeat,
and delivers everything the log holds again once it went back. Each test runs on a
``redis-server`` of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from support.redis_server import RedisServer, private_redis_server
from support.rows import make_row

from sessionward import Config, SessionWard, StorageUnavailableError, UnauthorizedError
from sessionward.stores.changes import Change
from sessionward.stores.redis import RedisStore
from sessionward.stores.redis.changes import RedisChangeListener

T = TypeVar("T")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis_server(tmp_path) as started:  # no persistence: a restart empties it
        yield started


class Collected:
    """A listener callback keeping every change delivered."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def __call__(self, batch: list[Change]) -> None:
        self.changes.extend(batch)

    def subjects(self) -> list[str]:
        return [change.subject for change in self.changes]

    def wait_for(self, subject: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while subject not in self.subjects():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def revoke(store: RedisStore, *handles: str) -> None:
    for handle in handles:
        store.insert_session(make_row(handle))
        store.delete_sessions([handle])


def last_change_seq(server: RedisServer) -> int:
    store = RedisStore(server.url)
    try:
        return store.last_change_seq()
    finally:
        store.close()


def restart_empty(server: RedisServer) -> None:
    server.stop()
    server.start()
    server.wait_ready()


def test_a_listener_delivers_changes_whose_seq_it_had_seen_before_the_data_was_lost(
    server: RedisServer,
) -> None:
    store = RedisStore(server.url)
    try:
        collected = Collected()
        listener = RedisChangeListener(store.settings, collected)
        # Reconnect no sooner than 0.5 s: the new log is written before the listener is back.
        listener.min_backoff = listener.max_backoff = 1.0
        with listener.start():
            assert listener.wait_connected(5)
            revoke(store, "old-1", "old-2", "old-3")
            assert collected.wait_for("old-3")
            restart_empty(server)
            revoke(store, "new-1", "new-2", "new-3", "new-4")  # seq 1 to 4 again
            assert collected.wait_for("new-4")
            assert listener.wait_connected(5)
        assert collected.subjects() == ["old-1", "old-2", "old-3", "new-1", "new-2", "new-3", "new-4"]
    finally:
        store.close()


def test_a_listener_notices_a_flush_on_a_connection_that_stayed_up(server: RedisServer) -> None:
    store = RedisStore(server.url)
    try:
        collected = Collected()
        with store.change_listener(collected) as listener:
            assert listener.wait_connected(5)
            revoke(store, "old-1", "old-2", "old-3")
            assert collected.wait_for("old-3")
            with server.client() as admin:
                admin.flushall()
            revoke(store, "new-1")  # seq 1, behind the listener
            assert collected.wait_for("new-1", timeout=3), collected.subjects()
            assert listener.state().disconnects == 0
    finally:
        store.close()


def test_a_revocation_after_redis_lost_its_data_is_refused_elsewhere(server: RedisServer) -> None:
    config = Config(store=server.url, access_token_validity=3600, cookie_secure=False)
    with SessionWard(config) as changer, SessionWard(config) as verifier:
        for index in range(5):
            tokens = changer.create_new_session(f"before-{index}")
            verifier.get_session(tokens.access_token.value)
            changer.revoke_session(tokens.handle)
        reached = last_change_seq(server)  # the revocations and the keys written
        assert wait_until(lambda: verifier.change_feed_state().last_seq == reached)
        restart_empty(server)
        assert wait_until(lambda: verifier.change_feed_state().disconnects >= 1)
        tokens = retried(lambda: changer.create_new_session("after"))
        assert wait_until(lambda: verifier.change_feed_state().live, timeout=10)
        verifier.get_session(tokens.access_token.value)
        changer.revoke_session(tokens.handle)  # seq 1 of the new log

        def refused() -> bool:
            try:
                verifier.get_session(tokens.access_token.value)
            except UnauthorizedError:
                return True
            return False

        assert wait_until(refused, timeout=3), verifier.change_feed_state()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def retried(call: Callable[[], T]) -> T:
    """``call()``, made again while Redis is still starting."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return call()
        except StorageUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
