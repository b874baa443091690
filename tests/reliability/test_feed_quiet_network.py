"""The change feed across a quiet network that comes back: what the listener hears late must
not pass for news.

A verifier reaches the store (PostgreSQL, Redis) through a proxy (``tcp_proxy.FaultyProxy``)
that goes quiet — forwards nothing, closes nothing — and then forwards what it held. A
revocation is made directly meanwhile. When the network comes back, the listener first
receives the answer to a read it made *before* the revocation: that answer tells nothing
about the time since, so it must not make the feed look fresh. The check runs on the
listener's thread right before its next read, which is when a stale answer would have been
trusted: a verification there must refuse the session (the feed is not live, the row is
read), not accept it from memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability.feed_faults import faulty_proxy_to, proxied
from support.backends import isolated_store_url

from sessionward import Config, SessionWard, UnauthorizedError
from sessionward.stores.changes import Change

QUIET = 2.3
"""The revocation returns more than ``change_feed_max_lag`` (1 s) before the network comes
back, at either offset."""


@pytest.fixture(params=["postgres", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_store_url(str(request.param), tmp_path) as url:
        yield url


@pytest.mark.parametrize("offset", [0.1, 0.8], ids=["during-its-read", "after-its-read"])
def test_an_answer_held_by_a_quiet_network_does_not_make_the_feed_look_live(
    store_url: str, offset: float
) -> None:
    """``offset``: when the revocation is made, in seconds after the network went quiet —
    while the listener's pending read (a Redis ``XREAD BLOCK`` of 0.5 s) may still be
    waiting, so that its held-up answer carries the revocation, or after it ended, so that
    its held-up answer is empty."""
    options: dict[str, Any] = {"access_token_validity": 3600, "cookie_secure": False}
    with (
        faulty_proxy_to(store_url) as proxy,
        SessionWard(Config(store=store_url, **options)) as changer,
        SessionWard(Config(store=proxied(store_url, proxy.port), **options)) as verifier,
    ):
        tokens = changer.create_new_session("alice")
        verifier.get_session(tokens.access_token.value)
        deadline = time.monotonic() + 10
        while not verifier.change_feed_state().live:
            assert time.monotonic() < deadline, verifier.change_feed_state()
            time.sleep(0.02)
        listener = verifier._core.feed.listener
        assert listener is not None
        read = listener._read
        healed = threading.Event()
        seen: list[tuple[str, float | None]] = []

        def checked_read(seq: int, limit: int) -> list[Change]:
            # The first read begun after the network came back: verify as a request would.
            if healed.is_set() and not seen:
                lag = listener.state().lag_ms
                try:
                    verifier.get_session(tokens.access_token.value)
                    seen.append(("passed", lag))
                except UnauthorizedError:
                    seen.append(("refused", lag))
            result: list[Change] = read(seq, limit)
            return result

        listener._read = checked_read  # type: ignore[method-assign]
        proxy.blackhole()
        time.sleep(offset)
        changer.revoke_session(tokens.handle)
        returned = time.monotonic()
        time.sleep(QUIET - offset)
        healed.set()
        proxy.heal()
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline, "the listener made no read after the network came back"
            time.sleep(0.01)
        since = (time.monotonic() - returned) * 1000
        outcome, lag = seen[0]
        assert outcome == "refused", (
            f"a verification {since:.0f} ms after the revocation returned passed: the listener "
            f"reported hearing from the store {lag:.0f} ms before"
        )
