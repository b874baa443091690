"""Correctness when several OS processes share one store (issue 4, "Must show").

Four worker processes (``reliability_worker.py``: two with ``SessionWard`` and threads, two
with ``AsyncSessionWard`` and tasks), each with its own engine and its own connections,
race on the same sessions in every store:

- 50 concurrent refreshes of one session: all succeed with one and the same successor,
  exactly one compare-and-set commits, no theft verdict — 20 rounds per store;
- logout racing refresh, 100 iterations: the session always ends revoked, never resurrected;
- 20 users x 5 sequential refreshes, all users concurrently: no effect across sessions;
- ``kill -9`` of a worker in the middle of refreshes, repeated: every session still
  refreshes afterwards.

Calls are released together at a shared CLOCK_MONOTONIC instant (``start_at``).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability.worker_client import Worker

from sessionward import Config, SessionWard, UnauthorizedError
from sessionward.stores.urls import open_store

DRIVERS = ("sync", "async", "sync", "async")
OPTIONS: dict[str, Any] = {
    "access_token_algorithm": "HS256",
    "access_token_validity": 60,
    "refresh_token_validity": 600,
    "refresh_token_reuse_grace_period": 10,
    "enable_anti_csrf": True,
    "cookie_secure": False,
}


def h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Cluster:
    """The test's own engine (to create sessions and judge outcomes) and four workers."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.logs = logs
        self.engine = SessionWard(Config(store=url, **OPTIONS))
        self.engine.jwks()  # migrate and create the keys before the workers start
        self.store = open_store(url)
        self.workers: list[Worker] = []
        self._spawned = 0
        for driver in DRIVERS:
            self.workers.append(self.spawn(driver))
        for worker in self.workers:
            worker.send("warm")
        for worker in self.workers:
            worker.receive(worker._next_id)

    def spawn(self, driver: str) -> Worker:
        self._spawned += 1
        return Worker(self.url, driver, self.logs / f"worker-{self._spawned}-{driver}.log", OPTIONS)

    def run_calls(self, per_worker: list[list[list[Any]]], delay: float = 0.02) -> tuple[list[Any], int]:
        """Send each worker its calls, all released at one instant; (outcomes, CAS wins)."""
        start_at = time.monotonic() + delay
        pairs = list(zip(self.workers, per_worker, strict=True))
        idents = [worker.send("calls", calls=calls, start_at=start_at) for worker, calls in pairs]
        outcomes: list[Any] = []
        promoted = 0
        for worker, ident in zip(self.workers, idents, strict=True):
            reply = worker.receive(ident)
            outcomes.extend(reply["results"])
            promoted += reply["promoted"]
        return outcomes, promoted

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.engine.close()
        self.store.close()


@pytest.fixture
def cluster(store_url: str, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(store_url, tmp_path)
    try:
        yield made
    finally:
        made.close()


def errors_of(outcomes: list[Any]) -> list[Any]:
    return [o for o in outcomes if o[0] != "ok"]


def split(calls: list[list[Any]], parts: int = 4) -> list[list[list[Any]]]:
    return [calls[i::parts] for i in range(parts)]


def test_50_concurrent_refreshes_from_4_processes_one_successor(cluster: Cluster) -> None:
    for round_ in range(20):
        tokens = cluster.engine.create_new_session(f"user-{round_}", {"round": round_})
        child = cluster.engine.refresh_session(tokens.refresh_token.value)  # not yet committed
        calls: list[list[Any]] = [["refresh", child.refresh_token.value]] * 50
        if round_ % 2:  # first uses of the access token race the refreshes for the commit
            calls += [["verify", child.access_token.value]] * 8
        outcomes, promoted = cluster.run_calls(split(calls))
        assert not errors_of(outcomes), errors_of(outcomes)[:3]
        successors = {o[1] for o in outcomes if len(o) == 4}  # refresh outcomes
        assert len(successors) == 1, f"round {round_}: {len(successors)} different successors"
        assert promoted == 1, f"round {round_}: {promoted} compare-and-sets won"
        row = cluster.store.get_session(tokens.handle)
        assert row is not None
        assert row.refresh_token_hash_2 == h(h(child.refresh_token.value))
        assert row.prev_refresh_token_hash_2 == h(h(tokens.refresh_token.value))
        # The successor every process returned is the one this process computes too.
        again = cluster.engine.refresh_session(child.refresh_token.value)
        assert {again.refresh_token.value} == successors
        assert cluster.engine.refresh_session(again.refresh_token.value).handle == tokens.handle


def test_logout_racing_refresh_always_ends_revoked(cluster: Cluster) -> None:
    rng = random.Random(4)
    refreshed_before_logout = 0
    for iteration in range(100):
        tokens = cluster.engine.create_new_session("racer")
        child = cluster.engine.refresh_session(tokens.refresh_token.value)
        refresh, verify = ["refresh", child.refresh_token.value], ["verify", child.access_token.value]
        per_worker = [[refresh, verify], [refresh, refresh], [verify, refresh], [refresh, verify]]
        per_worker[iteration % 4].insert(rng.randrange(3), ["revoke", tokens.handle])
        outcomes, _ = cluster.run_calls(per_worker, delay=0.01)
        bad = [o for o in errors_of(outcomes) if o[1] != "UnauthorizedError"]
        assert not bad, f"iteration {iteration}: {bad[:3]}"
        revokes = [o for o in outcomes if o[0] == "ok" and o[1] is True]
        assert len(revokes) == 1, f"iteration {iteration}: {outcomes}"
        refreshed_before_logout += any(len(o) == 4 for o in outcomes)  # a refresh succeeded
        # Ends revoked, and nothing a client still holds brings it back.
        assert cluster.store.get_session(tokens.handle) is None
        successors = {o[1] for o in outcomes if len(o) == 4}
        held = {tokens.refresh_token.value, child.refresh_token.value} | successors
        for token in held:
            with pytest.raises(UnauthorizedError):
                cluster.engine.refresh_session(token)
        with pytest.raises(UnauthorizedError):
            cluster.engine.get_session(child.access_token.value)
        assert cluster.store.get_session(tokens.handle) is None
    assert cluster.engine.get_all_session_handles_for_user("racer") == []
    print(f"logout race: a refresh won before the logout in {refreshed_before_logout}/100 iterations")


def test_20_users_5_sequential_refreshes_concurrently_no_cross_effects(cluster: Cluster) -> None:
    sessions = [cluster.engine.create_new_session(f"user{i}", {"me": i}, {"private": i}) for i in range(20)]
    latest = {s.handle: s.refresh_token.value for s in sessions}
    for _ in range(2):
        idents = []
        for index, worker in enumerate(cluster.workers):
            mine = [[s.handle, latest[s.handle]] for s in sessions[index::4]]
            idents.append((worker, worker.send("chains", chains=mine, steps=5), mine))
        for worker, ident, mine in idents:
            results = worker.receive(ident)["results"]
            assert not errors_of(results), errors_of(results)[:3]
            for (handle, _), result in zip(mine, results, strict=True):
                latest[handle] = result[1]
                user = next(s.user_id for s in sessions if s.handle == handle)
                assert result[2] == {"me": int(user[4:])}
                assert result[3] == 5
    for session in sessions:
        row = cluster.store.get_session(session.handle)
        assert row is not None
        assert row.user_id == session.user_id
        assert row.session_data == {"private": int(session.user_id[4:])}
        assert row.jwt_user_payload == {"me": int(session.user_id[4:])}
        # The last token handed out is the child of the committed one: it commits next.
        refreshed = cluster.engine.refresh_session(latest[session.handle])
        assert cluster.store.get_session(session.handle).refresh_token_hash_2 == h(h(latest[session.handle]))  # type: ignore[union-attr]
        assert refreshed.user_id == session.user_id
        assert cluster.engine.get_all_session_handles_for_user(session.user_id) == [session.handle]


def test_kill_9_during_refreshes_every_session_still_refreshes(cluster: Cluster) -> None:
    rng = random.Random(9)
    sessions = [cluster.engine.create_new_session(f"churn{i}") for i in range(12)]
    latest = {s.handle: s.refresh_token.value for s in sessions}
    owner = {s.handle: i % 4 for i, s in enumerate(sessions)}
    killed_mid_chain = 0
    for repetition in range(4):
        victim = repetition % 4
        idents = []
        for index, worker in enumerate(cluster.workers):
            worker.progress.clear()
            mine = [[handle, latest[handle]] for handle in latest if owner[handle] == index]
            idents.append(worker.send("churn", chains=mine, seconds=0.8))
        time.sleep(rng.uniform(0.2, 0.6))
        cluster.workers[victim].kill()
        for index, (worker, ident) in enumerate(zip(cluster.workers, idents, strict=True)):
            if index != victim:
                results = worker.receive(ident)["results"]
                assert not errors_of(results), errors_of(results)[:3]
        progress = cluster.workers[victim].progress
        assert progress, "the victim was killed before it refreshed anything"
        killed_mid_chain += 1
        for worker in cluster.workers:
            for handle, token in worker.progress:
                latest[handle] = token
        cluster.workers[victim].close()
        cluster.workers[victim] = cluster.spawn(DRIVERS[victim])
        # Every session, the victim's included, refreshes from a fresh process and from here.
        reply = cluster.workers[victim].request(
            "chains", chains=[[handle, latest[handle]] for handle in latest], steps=1
        )
        assert not errors_of(reply["results"]), errors_of(reply["results"])[:3]
        for (handle, _), result in zip(latest.items(), reply["results"], strict=True):
            latest[handle] = result[1]
        for handle in latest:
            refreshed = cluster.engine.refresh_session(latest[handle])
            assert refreshed.handle == handle
    for handle, token in latest.items():
        assert cluster.engine.refresh_session(token).handle == handle
        assert cluster.store.get_session(handle) is not None
    print(f"kill -9: {killed_mid_chain} workers killed mid-churn; {len(latest)} sessions intact")
