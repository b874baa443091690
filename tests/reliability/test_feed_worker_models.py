"""The change feed in every worker model, on real servers (``worker_models.py``), on SQLite,
PostgreSQL and Redis:

- gunicorn's ``gthread`` worker: two processes of four threads, the threads of a process
  verifying concurrently on one engine;
- gunicorn's ``sync`` worker, three processes, ``--preload``, the engine (and its
  listener) started in the master before the fork;
- uvicorn ``--workers 2`` (processes spawned, not forked);
- gunicorn with uvicorn's worker class, two processes, ``--preload`` (the async engine
  created in the master, started in each worker).

For each, several client threads of this process verify one session's access token over
keep-alive connections (re-dialled now and then) until every worker process — and, with
``gthread``, several threads of each — has served it with its feed live. Then this
process revokes the session, and:

- every worker answers 401 within the bound (5 s, as the revocation drill; the real delays
  are printed), and once a worker has refused the session, no request sent to it later is
  accepted, whichever thread serves it;
- every worker process runs exactly one listener thread, started in that process (the
  listener's own pid), on a connection of its own (PostgreSQL backend pid, Redis client id:
  one per worker); with a warm ``--preload`` master, none is the master's;
- from the moment every worker's feed is live, verifications — of the valid token and of
  the revoked one — make no store call in any worker (the calls are counted in the worker).

Then one worker is killed (SIGKILL); the server replaces it and the new worker refuses the
revoked session from its first answer, runs its own listener, and a second revocation
reaches every worker, the new one included, as above.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reliability.worker_models import MODELS, Answer, Pollers, Server, WorkerModel, pollers
from support.backends import isolated_store_url

from sessionward import Config, SessionWard

pytestmark = pytest.mark.slow

BOUND_MS = 5000.0
OPTIONS: dict[str, Any] = {
    "access_token_validity": 3600,
    "refresh_token_validity": 7200,
    "cookie_secure": False,
}
POLLERS = 8
"""Client threads verifying at once."""
SETTLE = 15.0
"""Seconds to wait for every worker to serve the token with its feed live."""
STEADY = 0.3
"""Seconds of verification, every feed live, before the revocation."""
AFTER_REFUSAL = 0.3
"""Seconds of verification after every worker refused, before the round ends."""


@dataclass
class Store:
    url: str
    backend: str
    engine: SessionWard
    logs: Path


@pytest.fixture(scope="module", params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    tmp = tmp_path_factory.mktemp(f"workers-{request.param}")
    with isolated_store_url(str(request.param), tmp) as url:
        engine = SessionWard(Config(store=url, **OPTIONS))
        try:
            engine.jwks()  # migrations and keys before any server starts
            yield Store(url, str(request.param), engine, tmp)
        finally:
            engine.close()


@dataclass
class Round:
    """What one revocation showed: per worker pid, its answers of the round."""

    label: str
    token: str
    """The revoked session's access token."""
    by_worker: dict[int, list[Answer]]
    returned: float
    """When ``revoke_session`` returned (CLOCK_MONOTONIC)."""
    steady_from: float
    """From when every worker's feed was live."""
    latency_ms: dict[int, float] = field(default_factory=dict)


def wait_for(condition: Any, timeout: float, what: Any) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting: {what()}")
        time.sleep(0.02)


def group(answers: list[Answer], server: Server) -> dict[int, list[Answer]]:
    """Answers by worker pid (children of the server only; transport errors left out)."""
    by_worker: dict[int, list[Answer]] = defaultdict(list)
    for answer in answers:
        if answer.worker is None:
            continue
        assert answer.worker["ppid"] == server.pid, answer.worker
        by_worker[int(answer.worker["pid"])].append(answer)
    server.seen_pids.update(by_worker)
    return by_worker


def is_live(answer: Answer) -> bool:
    """Whether the worker's feed was live when it answered."""
    feeds = answer.described["feeds"]
    return bool(feeds) and bool(feeds[0]["live"])


def summary(by_worker: dict[int, list[Answer]]) -> str:
    return "; ".join(
        f"{pid}: {len(answers)} answers, statuses {sorted({a.status for a in answers})}, "
        f"last {answers[-1].worker}"
        for pid, answers in by_worker.items()
    )


def revocation_round(
    store: Store, server: Server, polling: Pollers, label: str, workers: set[int] | None = None
) -> Round:
    """Verify a new session through every worker until all are live, revoke it, and
    collect every worker's answers until all refused it. ``workers``: the pids expected
    (default: any ``model.workers`` children of the server)."""
    model = server.model
    tokens = store.engine.create_new_session(f"user-{label}")
    polling.poll(label, tokens.access_token.value)

    def settled() -> bool:
        by_worker = group(polling.of(label), server)
        if workers is not None and set(by_worker) != workers:
            return False
        if len(by_worker) != model.workers:
            return False
        for answers in by_worker.values():
            if not any(is_live(answer) for answer in answers[-3:]):
                return False
            if len({answer.described["thread"] for answer in answers}) < min(model.threads, 2):
                return False
        return True

    wait_for(settled, SETTLE, lambda: f"{label}: {summary(group(polling.of(label), server))}")
    steady_from = time.monotonic()
    time.sleep(STEADY)
    store.engine.revoke_session(tokens.handle)
    returned = time.monotonic()

    def refused_everywhere() -> bool:
        by_worker = group(polling.of(label), server)
        refused = [
            [answer.received for answer in answers if answer.status == 401] for answers in by_worker.values()
        ]
        return all(refused) and time.monotonic() - max(min(times) for times in refused) > AFTER_REFUSAL

    deadline = returned + BOUND_MS / 1000 + 1
    while not refused_everywhere() and time.monotonic() < deadline:
        time.sleep(0.02)
    polling.poll(None)
    time.sleep(0.05)  # the requests in flight
    return Round(label, tokens.access_token.value, group(polling.of(label), server), returned, steady_from)


def check_round(result: Round, server: Server, store: Store) -> list[str]:
    """Every assertion of a round; returns one report line per worker."""
    lines = []
    connections: dict[int, Any] = {}
    master = server.loaded()
    assert (master is not None) == server.model.warm_master, master
    for pid, answers in result.by_worker.items():
        statuses = {answer.status for answer in answers}
        assert statuses <= {200, 401}, (pid, statuses, answers[-1])
        refusals = [answer.received for answer in answers if answer.status == 401]
        assert refusals, f"worker {pid} never refused the revoked session: {answers[-1].worker}"
        first = min(refusals)
        latency = (first - result.returned) * 1000
        result.latency_ms[pid] = latency
        assert latency <= BOUND_MS, (pid, latency)
        # Once refused, refused for good: a request sent after the first refusal reached
        # this client is never accepted, whichever thread serves it.
        late = [answer for answer in answers if answer.status == 200 and answer.sent > first]
        assert not late, f"worker {pid} accepted the revoked session after refusing it: {late[:3]}"
        # No store call once every feed is live: the valid token and the revoked one.
        steady = [answer.described["calls"] for answer in answers if answer.sent >= result.steady_from]
        assert steady and min(steady) == max(steady), (
            f"worker {pid} made {max(steady) - min(steady)} store calls while its feed was live"
        )
        # One listener per process, started in it, live, on a connection of its own. (A
        # request answered while another thread of the worker was still starting the
        # listener may show none: that verification read the row.)
        live_at = min(answer.received for answer in answers if is_live(answer))
        for answer in answers:
            described = answer.described
            allowed = (1,) if answer.sent > live_at else (0, 1)
            assert len(described["listeners"]) in allowed, f"worker {pid}: listener threads {described}"
            assert len(described["feeds"]) in allowed, described
            for feed in described["feeds"]:
                assert feed["pid"] == pid and feed["thread"] in described["listeners"], described
        last = answers[-1].described
        feed = last["feeds"][0]
        assert feed["pid"] == pid, f"worker {pid} uses a listener started in {feed['pid']}"
        assert feed["thread"] == last["listeners"][0], last
        assert feed["live"], last
        if store.backend != "sqlite":
            assert feed["connection"] is not None, last
            connections[pid] = feed["connection"]
        if master is not None:
            master_feed = master["feeds"][0]
            assert master_feed["pid"] == server.pid, master
            assert feed["thread"] != master_feed["thread"], (last, master)
            if store.backend != "sqlite":
                assert feed["connection"] != master_feed["connection"], (last, master)
        threads = {answer.described["thread"] for answer in answers}
        assert len(threads) >= min(server.model.threads, 2), (pid, threads)
        lines.append(
            f"  worker {pid}: {len(answers)} verifications by {len(threads)} thread(s), refused "
            f"{latency:.1f} ms after the revocation returned; listener thread {feed['thread']}, "
            f"connection {feed['connection']}; store calls while live: 0"
        )
    if connections:
        assert len(set(connections.values())) == len(connections), connections
    return lines


def respawn(server: Server, polling: Pollers, revoked: Round) -> tuple[int, int]:
    """Kill one worker; the server's replacement must refuse the revoked session from its
    first answer on. Returns (killed pid, new pid)."""
    victim = min(revoked.by_worker)
    before = set(revoked.by_worker)
    server.kill_worker(victim)
    label = f"{revoked.label}-after-kill"
    # The revoked session's token again, from every client thread.
    polling.poll(label, revoked.token)

    def new_worker_answered() -> bool:
        by_worker = group(polling.of(label), server)
        fresh = set(by_worker) - before
        return bool(fresh) and len(by_worker[min(fresh)]) >= 5

    wait_for(
        new_worker_answered,
        SETTLE,
        lambda: (
            f"no replacement for {victim} answered: {summary(group(polling.of(label), server))}"
            f" (before: {sorted(before)})\n{server.log()}"
        ),
    )
    polling.poll(None)
    time.sleep(0.05)
    by_worker = group(polling.of(label), server)
    fresh = min(set(by_worker) - before)
    accepted = [answer for answer in by_worker[fresh] if answer.status != 401]
    assert not accepted, f"the replacement worker {fresh} accepted the revoked session: {accepted[:3]}"
    for answer in by_worker[fresh]:  # its own listener, never two
        described = answer.described
        assert len(described["listeners"]) <= 1, described
        assert all(feed["pid"] == fresh for feed in described["feeds"]), described
    for pid, answers in by_worker.items():
        # The answers that were not 401 first: they are what a failure must show.
        assert all(answer.status == 401 for answer in answers), (
            pid,
            [answer for answer in answers if answer.status != 401][:3],
        )
    return victim, fresh


@pytest.mark.parametrize("model", MODELS, ids=[model.name for model in MODELS])
def test_every_worker_refuses_a_revoked_session(
    store: Store, model: WorkerModel, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = model.available()
    if reason is not None:
        pytest.skip(reason)
    config = Config(store=store.url, **OPTIONS)
    report = [f"{model.name} on {store.backend}:"]
    with Server(model, config, store.logs) as server, pollers(server.base, POLLERS) as polling:
        first = revocation_round(store, server, polling, "first")
        report += check_round(first, server, store)
        victim, fresh = respawn(server, polling, first)
        report.append(f"  worker {victim} killed; its replacement {fresh} refused the revoked session")
        workers = (set(first.by_worker) - {victim}) | {fresh}
        second = revocation_round(store, server, polling, "second", workers)
        report += check_round(second, server, store)
    with capsys.disabled():
        print("\n" + "\n".join(report))
