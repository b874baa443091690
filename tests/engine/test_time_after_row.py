"""Time is read after the data it judges: a refresh or promotion that waited on the store
while another request committed a rotation is never judged with the clock of before the
wait, and no operation returns a token that is already expired.

Each test makes the store "wait" deterministically: a wrapper runs another request (and
moves the fake clock) inside a chosen store call, before the call reads its row — what a
lock, a pool wait or a busy machine does to a real request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.tokens import claims

from sessionward import Config, SessionWard, TokenTheftDetectedError
from sessionward.stores.sqlite import SQLiteStore

GRACE = 10


class InterleavingStore:
    """Delegates to a SQLite store; ``before(method, action)`` runs ``action`` once, inside
    the next call of ``method``, before the real call happens."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.pending: dict[str, Callable[[], None]] = {}

    def before(self, method: str, action: Callable[[], None]) -> None:
        self.pending[method] = action

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any) -> Any:
            action = self.pending.pop(name, None)
            if action is not None:
                action()
            return attribute(*args)

        return call


class Env:
    def __init__(self, path: Path, **options: Any) -> None:
        settings: dict[str, Any] = {
            "access_token_algorithm": "HS256",
            "access_token_validity": 60,
            "refresh_token_validity": 3600,
            "refresh_token_reuse_grace_period": GRACE,
        }
        settings.update(options)
        self.clock = FakeClock()
        self.config = Config(store=f"sqlite:///{path}", **settings)
        self.inner = SQLiteStore(f"sqlite:///{path}")
        self.store = InterleavingStore(self.inner)
        self.engine = SessionWard(self.config, store=self.store, clock=self.clock)
        # A second engine on the same file plays "another tab / another process".
        self.other = SessionWard(self.config, store=f"sqlite:///{path}", clock=self.clock)

    def close(self) -> None:
        self.engine.close()
        self.other.close()
        self.inner.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path / "s.db")
    yield made
    made.close()


def test_refresh_that_waited_while_another_tab_committed_is_not_theft(env: Env) -> None:
    created = env.engine.create_new_session("alice")
    first = env.engine.refresh_session(created.refresh_token.value)

    def other_tab_commits_later() -> None:
        env.clock.advance(1)  # the other tab's request runs during our wait
        env.other.refresh_session(first.refresh_token.value)  # first use of the child: commit

    env.store.before("get_session", other_tab_commits_later)
    again = env.engine.refresh_session(created.refresh_token.value)
    # The predecessor within the grace window gets the committed child back.
    assert again.refresh_token.value == first.refresh_token.value
    assert env.engine.get_session_information(created.handle).handle == created.handle


def test_promotion_that_waited_while_another_tab_committed_keeps_the_session(env: Env) -> None:
    created = env.engine.create_new_session("alice")
    first = env.engine.refresh_session(created.refresh_token.value)

    def other_tab_commits_later() -> None:
        env.clock.advance(1)
        env.other.get_session(first.access_token.value)  # promotion by the other tab

    env.store.before("promote_returning", other_tab_commits_later)
    verified = env.engine.get_session(first.access_token.value)
    assert verified.handle == created.handle
    # A later refresh with the predecessor is still within grace, never theft.
    env.engine.refresh_session(created.refresh_token.value)


@pytest.mark.parametrize("skew", [0.5, 4.9])
def test_rotation_stamped_by_a_clock_ahead_counts_as_zero_age(tmp_path: Path, skew: float) -> None:
    env = Env(tmp_path / "s.db")
    try:
        created = env.engine.create_new_session("alice")
        first = env.engine.refresh_session(created.refresh_token.value)
        env.clock.advance(skew)  # another host's clock runs `skew` seconds ahead
        env.other.refresh_session(first.refresh_token.value)
        env.clock.advance(-skew)
        again = env.engine.refresh_session(created.refresh_token.value)
        assert again.refresh_token.value == first.refresh_token.value
    finally:
        env.close()


def test_skew_tolerance_grows_with_the_configured_leeway(tmp_path: Path) -> None:
    env = Env(tmp_path / "s.db", clock_skew_leeway=30)
    try:
        created = env.engine.create_new_session("alice")
        first = env.engine.refresh_session(created.refresh_token.value)
        env.clock.advance(34)
        env.other.refresh_session(first.refresh_token.value)
        env.clock.advance(-34)
        env.engine.refresh_session(created.refresh_token.value)
    finally:
        env.close()


def test_rotation_far_in_the_future_is_still_theft(env: Env) -> None:
    created = env.engine.create_new_session("alice")
    first = env.engine.refresh_session(created.refresh_token.value)
    env.clock.advance(6)  # beyond leeway (0) + 5 s
    env.other.refresh_session(first.refresh_token.value)
    env.clock.advance(-6)
    with pytest.raises(TokenTheftDetectedError):
        env.engine.refresh_session(created.refresh_token.value)


def test_refresh_after_a_long_store_wait_returns_an_unexpired_access_token(tmp_path: Path) -> None:
    env = Env(tmp_path / "s.db", access_token_validity=2)
    try:
        created = env.engine.create_new_session("alice")
        first = env.engine.refresh_session(created.refresh_token.value)
        env.store.before("get_session", lambda: env.clock.advance(5))
        second = env.engine.refresh_session(first.refresh_token.value)  # waits, then promotes
        assert second.access_token.expires_at > env.clock.now * 1000
        assert claims(second.access_token.value)["exp"] > env.clock.now
        assert second.refresh_token.expires_at > env.clock.now * 1000
    finally:
        env.close()


def test_refresh_after_a_long_promote_wait_returns_an_unexpired_access_token(tmp_path: Path) -> None:
    env = Env(tmp_path / "s.db", access_token_validity=2)
    try:
        created = env.engine.create_new_session("alice")
        first = env.engine.refresh_session(created.refresh_token.value)
        env.store.before("promote_returning", lambda: env.clock.advance(5))
        second = env.engine.refresh_session(first.refresh_token.value)
        assert second.access_token.expires_at > env.clock.now * 1000
    finally:
        env.close()


def test_promotion_after_a_long_wait_mints_an_unexpired_replacement(tmp_path: Path) -> None:
    env = Env(tmp_path / "s.db", access_token_validity=3)
    try:
        created = env.engine.create_new_session("alice")
        first = env.engine.refresh_session(created.refresh_token.value)
        env.store.before("promote_returning", lambda: env.clock.advance(4))
        verified = env.engine.get_session(first.access_token.value)
        assert verified.new_access_token is not None
        assert verified.new_access_token.expires_at > env.clock.now * 1000
    finally:
        env.close()


def test_create_after_a_long_insert_wait_returns_an_unexpired_access_token(tmp_path: Path) -> None:
    env = Env(tmp_path / "s.db", access_token_validity=2)
    try:
        env.engine.create_new_session("warm-up")  # keys loaded
        env.store.before("insert_session", lambda: env.clock.advance(5))
        created = env.engine.create_new_session("alice")
        assert created.access_token.expires_at > env.clock.now * 1000
        assert env.engine.get_session(created.access_token.value).user_id == "alice"
    finally:
        env.close()
