"""Fault injection on PostgreSQL (issue 4, "Must show"): the store goes away under load.

The engine reaches the shared server through a TCP proxy in this process (``tcp_proxy.py``).
While threads (sync driver) or tasks (async driver) keep verifying and refreshing, the proxy
is cut for several seconds — open connections reset, new ones refused — and then restored.
Asserted:

- with ``change_feed=False``, verification of access tokens keeps working throughout, from
  the keys the engine holds; with the change feed (the default), whose listener loses its
  connection too, verification falls back to reading the store and answers
  ``StorageUnavailableError`` during the outage (fail safe: a revocation made meanwhile
  must not be missed), and verifies again once the server is back;
- refresh during the outage answers ``StorageUnavailableError``, promptly, and nothing else;
- no session is lost and no theft verdict is given, before, during or after;
- every client refreshes successfully again within 10 s of the server's return, on the same
  engine object (no restart).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from reliability.tcp_proxy import CuttableProxy
from support.backends import POSTGRES_URL, postgres_schema, with_query
from support.services import reachable, skip_or_fail

from sessionward import (
    AsyncSessionWard,
    Config,
    SessionWard,
    UnauthorizedError,
)
from sessionward.stores.urls import open_store

CLIENTS = 6
BASELINE = 1.0
OUTAGE = 5.0
VERIFIER = "verifier"
POOL_TIMEOUT = 1.5  # how long a request may wait for a connection (URL parameter pool_timeout)
RECOVERY_LIMIT = 10.0
OPTIONS: dict[str, Any] = {
    "access_token_algorithm": "HS256",
    "access_token_validity": 120,
    "refresh_token_validity": 600,
    "cookie_secure": False,
}


@dataclass
class Client:
    """One browser's view: the tokens it holds and what happened to its requests."""

    handle: str
    refresh_token: str
    access_token: str  # carries no parent claim: verified without the store
    events: list[tuple[float, str, str, float]] = field(default_factory=list)  # (t, op, outcome, seconds)

    def record(self, op: str, outcome: str, started: float) -> None:
        now = time.monotonic()
        self.events.append((now, op, outcome, now - started))


@dataclass
class Timeline:
    cut_at: float = 0.0
    restored_at: float = 0.0


@pytest.fixture
def proxied_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, CuttableProxy]]:
    if not reachable(POSTGRES_URL):
        skip_or_fail(f"postgres is not reachable at {POSTGRES_URL}")
    with postgres_schema(POSTGRES_URL) as url:
        parts = urlsplit(url)
        proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        try:
            netloc = parts.netloc.rsplit("@", 1)
            host = f"127.0.0.1:{proxy.port}"
            proxied = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
            yield with_query(proxied, pool_timeout=str(POOL_TIMEOUT)), proxy
        finally:
            proxy.close()


def outcome_of(exc: BaseException | None) -> str:
    return "ok" if exc is None else type(exc).__name__


def sync_client_loop(engine: SessionWard, client: Client, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            engine.get_session(client.access_token)
            client.record("verify", "ok", started)
        except Exception as exc:
            client.record("verify", outcome_of(exc), started)
        started = time.monotonic()
        try:
            refreshed = engine.refresh_session(client.refresh_token)
            client.refresh_token = refreshed.refresh_token.value  # keep the newest, as a browser does
            verified = engine.get_session(refreshed.access_token.value)  # first use commits
            assert verified.new_access_token is not None
            client.access_token = verified.new_access_token.value
            client.record("refresh", "ok", started)
        except Exception as exc:
            client.record("refresh", outcome_of(exc), started)
        time.sleep(0.02)


async def async_client_loop(engine: AsyncSessionWard, client: Client, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            await engine.get_session(client.access_token)
            client.record("verify", "ok", started)
        except Exception as exc:
            client.record("verify", outcome_of(exc), started)
        started = time.monotonic()
        try:
            refreshed = await engine.refresh_session(client.refresh_token)
            client.refresh_token = refreshed.refresh_token.value
            verified = await engine.get_session(refreshed.access_token.value)
            assert verified.new_access_token is not None
            client.access_token = verified.new_access_token.value
            client.record("refresh", "ok", started)
        except Exception as exc:
            client.record("refresh", outcome_of(exc), started)
        await asyncio.sleep(0.02)


def sync_verifier_loop(engine: SessionWard, tokens: list[str], sink: Client, stop: threading.Event) -> None:
    """Verify the clients' first access tokens over and over (no store needed)."""
    while not stop.is_set():
        for token in tokens:
            started = time.monotonic()
            try:
                engine.get_session(token)
                sink.record("verify", "ok", started)
            except Exception as exc:
                sink.record("verify", outcome_of(exc), started)
        time.sleep(0.005)


async def async_verifier_loop(
    engine: AsyncSessionWard, tokens: list[str], sink: Client, stop: threading.Event
) -> None:
    while not stop.is_set():
        for token in tokens:
            started = time.monotonic()
            try:
                await engine.get_session(token)
                sink.record("verify", "ok", started)
            except Exception as exc:
                sink.record("verify", outcome_of(exc), started)
        await asyncio.sleep(0.005)


def drive_outage(proxy: CuttableProxy, clients: list[Client], stop: threading.Event) -> Timeline:
    """Baseline load, cut, outage, restore; stop once every client refreshed again."""
    timeline = Timeline()
    time.sleep(BASELINE)
    timeline.cut_at = time.monotonic()
    proxy.cut()
    time.sleep(OUTAGE)
    proxy.restore()
    timeline.restored_at = time.monotonic()
    deadline = timeline.restored_at + RECOVERY_LIMIT + 2
    while time.monotonic() < deadline:
        if all(recovered_at(c, timeline) is not None for c in clients):
            break
        time.sleep(0.05)
    time.sleep(0.3)  # some load after recovery too
    stop.set()
    return timeline


def recovered_at(client: Client, timeline: Timeline) -> float | None:
    if client.handle == VERIFIER:
        return timeline.restored_at
    for t, op, outcome, seconds in client.events:
        if op == "refresh" and outcome == "ok" and t - seconds > timeline.restored_at:
            return t
    return None


def check(clients: list[Client], timeline: Timeline, feed: bool = False) -> dict[str, Any]:
    """The assertions shared by both drivers; returns the measured numbers."""
    events = [event for client in clients for event in client.events]
    verify_failures = [e for e in events if e[1] == "verify" and e[2] != "ok"]
    if feed:
        # Fail safe: the store is read while the feed is down, so the outage shows.
        unexpected = [
            e
            for e in verify_failures
            if e[2] != "StorageUnavailableError"
            or not timeline.cut_at < e[0] < timeline.restored_at + RECOVERY_LIMIT
        ]
        assert not unexpected, f"verification failed outside the outage: {unexpected[:5]}"
        # Once every client refreshed again, verification works again (from the store
        # until the feed has reconnected, then from the feed).
        back = max(recovered_at(c, timeline) or timeline.restored_at for c in clients)
        late = [e for e in events if e[1] == "verify" and e[0] - e[3] > back]
        assert late and all(e[2] == "ok" for e in late), "verification did not recover"
        verify_failures = []
    assert not verify_failures, f"verification failed while the store was away: {verify_failures[:5]}"
    verdicts = [e for e in events if e[2] in ("UnauthorizedError", "TokenTheftDetectedError")]
    assert not verdicts, f"a session was lost: {verdicts[:5]}"
    others = [e for e in events if e[2] not in ("ok", "StorageUnavailableError")]
    assert not others, f"unexpected errors: {others[:5]}"
    during = [
        e
        for e in events
        if e[1] == "refresh" and e[0] - e[3] > timeline.cut_at + 0.2 and e[0] < timeline.restored_at
    ]
    assert during, "no refresh was attempted during the outage"
    assert all(e[2] == "StorageUnavailableError" for e in during), [e for e in during if e[2] == "ok"][:3]
    slowest = max(e[3] for e in during)
    assert slowest < POOL_TIMEOUT + 1.5, f"a refresh waited {slowest:.1f} s for the absent store"
    unavailable = sum(e[2] == "StorageUnavailableError" for e in events)
    recovery = []
    for client in clients:
        at = recovered_at(client, timeline)
        assert at is not None, f"session {client.handle} never refreshed after the server returned"
        recovery.append(at - timeline.restored_at)
    assert max(recovery) <= RECOVERY_LIMIT, f"recovery took {max(recovery):.1f} s"
    verifies = sum(e[1] == "verify" for e in events if timeline.cut_at < e[0] < timeline.restored_at)
    return {
        "verifications_during_outage": verifies,
        "storage_unavailable": unavailable,
        "slowest_refresh_during_outage_s": round(slowest, 3),
        "recovery_s": round(max(recovery), 3),
    }


def assert_sessions_intact(url: str, clients: list[Client]) -> None:
    """Every client's session row is still in the store (read through a new connection)."""
    store = open_store(url)
    try:
        for client in clients:
            assert store.get_session(client.handle) is not None, f"session {client.handle} lost"
    finally:
        store.close()


@pytest.mark.parametrize("feed", [False, True], ids=["no-feed", "feed"])
def test_postgres_outage_sync_driver(proxied_url: tuple[str, CuttableProxy], feed: bool) -> None:
    url, proxy = proxied_url
    with SessionWard(Config(store=url, change_feed=feed, **OPTIONS)) as engine:
        clients = []
        for index in range(CLIENTS):
            tokens = engine.create_new_session(f"user{index}")
            clients.append(Client(tokens.handle, tokens.refresh_token.value, tokens.access_token.value))
        stop = threading.Event()
        threads = [threading.Thread(target=sync_client_loop, args=(engine, c, stop)) for c in clients]
        verifier = Client(VERIFIER, "", "")
        first_tokens = [c.access_token for c in clients]
        verifying = (engine, first_tokens, verifier, stop)
        threads.append(threading.Thread(target=sync_verifier_loop, args=verifying))
        for thread in threads:
            thread.start()
        try:
            timeline = drive_outage(proxy, clients, stop)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        numbers = check([*clients, verifier], timeline, feed)
        for client in clients:  # the same engine, never restarted, serves every session
            refreshed = engine.refresh_session(client.refresh_token)
            assert engine.get_session(refreshed.access_token.value).new_access_token is not None
        with pytest.raises(UnauthorizedError):
            engine.get_session_data("00000000-0000-4000-8000-000000000000")
    assert_sessions_intact(url, clients)
    print(f"postgres outage (sync, feed={feed}): {numbers}")


@pytest.mark.parametrize("feed", [False, True], ids=["no-feed", "feed"])
def test_postgres_outage_async_driver(proxied_url: tuple[str, CuttableProxy], feed: bool) -> None:
    url, proxy = proxied_url
    stop = threading.Event()
    clients: list[Client] = []
    verifier = Client(VERIFIER, "", "")

    async def main() -> dict[str, Any]:
        async with AsyncSessionWard(Config(store=url, change_feed=feed, **OPTIONS)) as engine:
            for index in range(CLIENTS):
                tokens = await engine.create_new_session(f"user{index}")
                clients.append(Client(tokens.handle, tokens.refresh_token.value, tokens.access_token.value))
            loops = [asyncio.create_task(async_client_loop(engine, c, stop)) for c in clients]
            first_tokens = [c.access_token for c in clients]
            loops.append(asyncio.create_task(async_verifier_loop(engine, first_tokens, verifier, stop)))
            timeline = await asyncio.to_thread(drive_outage, proxy, clients, stop)
            await asyncio.wait_for(asyncio.gather(*loops), timeout=30)
            numbers = check([*clients, verifier], timeline, feed)
            for client in clients:
                refreshed = await engine.refresh_session(client.refresh_token)
                assert (await engine.get_session(refreshed.access_token.value)).new_access_token is not None
            return numbers

    numbers = asyncio.run(main())
    assert_sessions_intact(url, clients)
    print(f"postgres outage (async, feed={feed}): {numbers}")
