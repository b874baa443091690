"""Latency drill: browsers with several tabs race on their sessions while the store is slow.

Every store call that reads or commits a session (``get_session``, ``promote_returning``, and a little
on ``insert_session`` and ``load_keys``) waits a random 0 to 200 ms first (``latency_store``:
real sleeps, real clock, seeded draws), so a request's wait regularly spans another tab's
commit. Each session is a "browser" whose tabs share one cookie jar and play rounds; in
each round, all at once:

- one tab refreshes with the jar's refresh token and others may do the same;
- one tab uses the jar's access token — the first use of a token issued by a refresh
  commits the rotation (promotion) while the other tabs are refreshing;
- a tab may replay the refresh token the jar held before (a response the browser lost),
  within the grace window;

and the jar then keeps whichever response arrived last, which is sometimes the answer to
the replay, i.e. the predecessor's. Access tokens live 2 s, so rotations never stop.
The same race runs from threads (``SessionWard``), from asyncio tasks
(``AsyncSessionWard``) and from four OS processes sharing the sessions
(``reliability_worker.py`` with its store wrapped in the same delays), over every store.

Asserted: no theft verdict, no lost session, no other error, every successor of one token
identical, and every access token unexpired when it is returned. At the end of the drill
each session plays a genuine theft — a refresh token two generations old, or the
predecessor replayed after the grace window (an engine with a 1 s window) — which must
be detected and must end the session: a drill that passes because theft detection was
switched off fails here.

Each run prints one summary line (``-s`` shows it) and writes it as JSON under ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reliability.latency_store import AsyncDelayingStore, DelayingStore, LatencyPlan
from reliability.worker_client import Worker

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.engine.types import SessionTokens, Token
from sessionward.stores.urls import open_async_store, open_store

OPTIONS: dict[str, Any] = {
    "access_token_algorithm": "HS256",
    "access_token_validity": 2,
    "refresh_token_validity": 600,
    "refresh_token_reuse_grace_period": 10,
    "cookie_secure": False,
}
#: The grace window of the engine that replays predecessors after it has passed.
CONTROL_GRACE = 1
DELAYS: dict[str, tuple[float, float]] = {
    "get_session": (0.0, 0.2),
    "promote_returning": (0.0, 0.1),
    "insert_session": (0.0, 0.05),
    "load_keys": (0.0, 0.05),
}
TABS = 4
#: A tab replays the jar's previous refresh token with this probability per round.
REPLAY_SHARE = 0.3
#: A tab uses the access token only while it has this long to live (as a frontend reading
#: the front-token's expiry does); otherwise it refreshes.
VERIFY_MARGIN_MS = 500
#: The drill is too small to mean anything below this many refreshes per run.
MIN_REFRESHES = 1000
WORKER_DRIVERS = ("sync", "async", "sync", "async")


@dataclass(frozen=True)
class Outcome:
    """One tab's call as the browser saw it: what came back and when it arrived."""

    kind: str  # "refresh", "replay" (a refresh with the previous token) or "verify"
    at: float  # CLOCK_MONOTONIC when the response arrived
    error: str | None = None  # the exception's class name
    message: str = ""
    refresh: str | None = None
    access: str | None = None
    access_expires_at: int | None = None
    ms_left: float | None = None  # the access token's remaining life when it was returned

    @classmethod
    def returned(cls, kind: str, refresh: str | None, access: Token | None) -> Outcome:
        """Taken as the engine returns: the remaining life is measured right here."""
        if access is None:
            return cls(kind, time.monotonic(), refresh=refresh)
        left = access.expires_at - time.time() * 1000
        return cls(kind, time.monotonic(), None, "", refresh, access.value, access.expires_at, left)

    @classmethod
    def failed(cls, kind: str, exc: Exception) -> Outcome:
        return cls(kind, time.monotonic(), type(exc).__name__, str(exc)[:200])

    @classmethod
    def from_worker(cls, kind: str, result: list[Any]) -> Outcome:
        """From a ``calls`` reply of ``reliability_worker.py`` with ``"stamp": true``."""
        stamp = result[-1]
        if result[0] != "ok":
            return cls(kind, stamp["at"], result[1], result[2])
        refresh = None if kind == "verify" else result[1]
        access = result[1] if kind == "verify" else result[2]
        return cls(kind, stamp["at"], None, "", refresh, access, stamp["exp"], stamp["left"])


@dataclass
class Tally:
    """The numbers of one run (quoted by the summary line)."""

    store: str
    driver: str
    sessions: int
    tabs: int
    rounds: int
    refreshes: int = 0
    replays: int = 0
    verifications: int = 0
    promotions: int = 0
    injected_delays: int = 0
    injected_seconds: float = 0.0
    thefts: int = 0
    lost_sessions: int = 0
    expired_tokens: int = 0
    divergent_successors: int = 0
    other_errors: int = 0
    controls: int = 0
    controls_detected: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        if len(self.failures) < 8:
            self.failures.append(text)

    def line(self) -> str:
        return (
            f"latency drill: store={self.store} driver={self.driver} sessions={self.sessions} "
            f"tabs={self.tabs} rounds={self.rounds} refreshes={self.refreshes} (replays {self.replays}) "
            f"promotions={self.promotions} verifications={self.verifications} "
            f"injected_delays={self.injected_delays} ({self.injected_seconds:.0f} s) "
            f"thefts={self.thefts} lost_sessions={self.lost_sessions} expired_tokens={self.expired_tokens} "
            f"divergent_successors={self.divergent_successors} other_errors={self.other_errors} "
            f"theft_controls={self.controls_detected}/{self.controls} in {self.seconds:.1f} s"
        )

    def report(self, directory: Path) -> str:
        """Print the summary line, write it as JSON; return it with the first failures."""
        line = self.line()
        print(line)
        (directory / f"latency-drill-{self.store}-{self.driver}.json").write_text(json.dumps(asdict(self)))
        return "\n".join([line, *self.failures])

    def check(self, directory: Path) -> None:
        text = self.report(directory)
        assert self.thefts == 0, text
        assert self.lost_sessions == 0, text
        assert self.other_errors == 0, text
        assert self.expired_tokens == 0, text
        assert self.divergent_successors == 0, text
        assert self.controls_detected == self.controls == self.sessions, text
        assert self.refreshes >= MIN_REFRESHES, text
        assert self.promotions > 0 and self.injected_delays > 0, text


class Browser:
    """One session: the cookie jar its tabs share, and the chain of refresh tokens the jar
    has held (each the child of the one before)."""

    def __init__(self, index: int, tokens: SessionTokens, seed: int) -> None:
        self.index = index
        self.handle = tokens.handle
        self.rng = random.Random(seed)
        self.refresh = tokens.refresh_token.value
        self.access = tokens.access_token.value
        self.access_expires_at = tokens.access_token.expires_at
        self.chain = [self.refresh]
        self.dead = False

    def plan(self, tabs: int) -> list[tuple[str, str]]:
        """This round's calls, one per tab: ``(kind, token)``."""
        usable = self.access_expires_at - time.time() * 1000 > VERIFY_MARGIN_MS
        calls = [("refresh", self.refresh)]
        for tab in range(1, tabs):
            roll = self.rng.random()
            if tab > 1 and roll < REPLAY_SHARE and len(self.chain) > 1:
                calls.append(("replay", self.chain[-2]))
            elif usable and (tab == 1 or roll < 0.6):
                calls.append(("verify", self.access))
            else:
                calls.append(("refresh", self.refresh))
        self.rng.shuffle(calls)  # tabs are not ordered: any of them may start first
        return calls

    def settle(self, outcomes: list[Outcome], tally: Tally) -> None:
        """Judge a round's responses, then let the jar keep them in arrival order."""
        start = self.refresh
        successors = {o.refresh for o in outcomes if o.kind == "refresh" and o.error is None}
        if len(successors) > 1:
            tally.divergent_successors += 1
            tally.fail(f"session {self.index}: {len(successors)} different successors of one token")
        for o in sorted(outcomes, key=lambda o: o.at):
            if o.kind == "verify":
                tally.verifications += 1
            else:
                tally.refreshes += 1
                tally.replays += o.kind == "replay"
            if o.error is not None:
                self.dead = True
                if o.error == "TokenTheftDetectedError":
                    tally.thefts += 1
                elif o.error == "UnauthorizedError":
                    tally.lost_sessions += 1
                else:
                    tally.other_errors += 1
                tally.fail(
                    f"session {self.index}, {o.kind} at generation {len(self.chain)}: {o.error}: {o.message}"
                )
                continue
            if o.kind == "replay" and o.refresh != start:
                tally.divergent_successors += 1
                tally.fail(f"session {self.index}: a replay in grace did not return the current token")
            if o.ms_left is not None and o.ms_left <= 0:
                tally.expired_tokens += 1
                tally.fail(f"session {self.index}: {o.kind} returned a token {-o.ms_left:.0f} ms expired")
            if o.refresh is not None:
                self.refresh = o.refresh
            if o.access is not None and o.access_expires_at is not None:
                self.access, self.access_expires_at = o.access, o.access_expires_at
        if self.refresh != self.chain[-1]:
            self.chain.append(self.refresh)

    def genuine_theft(self) -> tuple[str, bool]:
        """The control replay: ``(token, whether it must wait out the grace window)``.

        Called after three sequential refreshes R→R1→R2→R3, which committed R2 (and R1
        before it): even sessions replay R, two generations old; odd ones replay R1, the
        predecessor, once the control engine's 1 s grace window has passed."""
        if self.index % 2:
            return self.chain[-3], True
        return self.chain[-4], False

    def judge_control(self, replay: Outcome, after: Outcome, tally: Tally) -> None:
        tally.controls += 1
        if replay.error == "TokenTheftDetectedError" and after.error == "UnauthorizedError":
            tally.controls_detected += 1
            return
        tally.fail(
            f"session {self.index}: genuine theft control: replay gave {replay.error or 'success'}, "
            f"the current token afterwards {after.error or 'success'}"
        )


def config(**overrides: Any) -> Config:
    return Config(**{**OPTIONS, **overrides})


# -- threads -------------------------------------------------------------------------------


def sync_call(engine: SessionWard, kind: str, token: str) -> Outcome:
    try:
        if kind == "verify":
            verified = engine.get_session(token)
            return Outcome.returned(kind, None, verified.new_access_token)
        tokens = engine.refresh_session(token)
        return Outcome.returned(kind, tokens.refresh_token.value, tokens.access_token)
    except Exception as exc:
        return Outcome.failed(kind, exc)


def run_threads(url: str, tally: Tally, plan: LatencyPlan) -> None:
    engine = SessionWard(config(), store=DelayingStore(open_store(url), plan))
    control = SessionWard(
        config(refresh_token_reuse_grace_period=CONTROL_GRACE), store=DelayingStore(open_store(url), plan)
    )
    tabs = ThreadPoolExecutor(tally.sessions * tally.tabs)

    def play(browser: Browser) -> None:
        for _ in range(tally.rounds):
            calls = browser.plan(tally.tabs)
            futures = [tabs.submit(sync_call, engine, kind, token) for kind, token in calls]
            browser.settle([future.result() for future in futures], tally)
            if browser.dead:
                return
        for _ in range(3):
            browser.settle([sync_call(engine, "refresh", browser.refresh)], tally)
            if browser.dead:
                return
        token, after_grace = browser.genuine_theft()
        if after_grace:
            time.sleep(CONTROL_GRACE + 0.5)
        replay = sync_call(control if after_grace else engine, "replay", token)
        browser.judge_control(replay, sync_call(engine, "refresh", browser.refresh), tally)

    try:
        browsers = [
            Browser(i, engine.create_new_session(f"user-{i}"), plan.seed * 1000 + i)
            for i in range(tally.sessions)
        ]
        with ThreadPoolExecutor(tally.sessions) as players:
            list(players.map(play, browsers))
    finally:
        tabs.shutdown()
        engine.store.close()
        control.store.close()


# -- asyncio tasks -------------------------------------------------------------------------


async def async_call(engine: AsyncSessionWard, kind: str, token: str) -> Outcome:
    try:
        if kind == "verify":
            verified = await engine.get_session(token)
            return Outcome.returned(kind, None, verified.new_access_token)
        tokens = await engine.refresh_session(token)
        return Outcome.returned(kind, tokens.refresh_token.value, tokens.access_token)
    except Exception as exc:
        return Outcome.failed(kind, exc)


async def run_tasks(url: str, tally: Tally, plan: LatencyPlan) -> None:
    engine = AsyncSessionWard(config(), store=AsyncDelayingStore(open_async_store(url), plan))
    control = AsyncSessionWard(
        config(refresh_token_reuse_grace_period=CONTROL_GRACE),
        store=AsyncDelayingStore(open_async_store(url), plan),
    )

    async def play(browser: Browser) -> None:
        for _ in range(tally.rounds):
            calls = browser.plan(tally.tabs)
            browser.settle(list(await asyncio.gather(*(async_call(engine, k, t) for k, t in calls))), tally)
            if browser.dead:
                return
        for _ in range(3):
            browser.settle([await async_call(engine, "refresh", browser.refresh)], tally)
            if browser.dead:
                return
        token, after_grace = browser.genuine_theft()
        if after_grace:
            await asyncio.sleep(CONTROL_GRACE + 0.5)
        replay = await async_call(control if after_grace else engine, "replay", token)
        browser.judge_control(replay, await async_call(engine, "refresh", browser.refresh), tally)

    try:
        browsers = [
            Browser(i, await engine.create_new_session(f"user-{i}"), plan.seed * 1000 + i)
            for i in range(tally.sessions)
        ]
        await asyncio.gather(*(play(browser) for browser in browsers))
    finally:
        await engine.store.close()
        await control.store.close()


# -- the in-process runs -------------------------------------------------------------------


SESSIONS, ROUNDS = 24, 30


def drill(backend: str, driver: str, run: Callable[[Tally, LatencyPlan], None], seed: int) -> Tally:
    tally = Tally(backend, driver, SESSIONS, TABS, ROUNDS)
    plan = LatencyPlan(DELAYS, seed)
    started = time.monotonic()
    run(tally, plan)
    tally.seconds = time.monotonic() - started
    tally.promotions = plan.promotions
    tally.injected_delays = plan.injected_total
    tally.injected_seconds = plan.injected_seconds
    return tally


def test_tabs_in_threads_race_on_a_slow_store(backend: str, store_url: str, tmp_path: Path) -> None:
    tally = drill(backend, "threads", lambda t, p: run_threads(store_url, t, p), seed=1)
    tally.check(tmp_path)


def test_tabs_in_asyncio_tasks_race_on_a_slow_store(backend: str, store_url: str, tmp_path: Path) -> None:
    tally = drill(backend, "asyncio", lambda t, p: asyncio.run(run_tasks(store_url, t, p)), seed=2)
    tally.check(tmp_path)


# -- several processes ---------------------------------------------------------------------


class Fleet:
    """Worker processes, each with its own engine over the delaying store, and this
    process's engine (to create sessions, and with a 1 s grace window for the controls)."""

    def __init__(self, url: str, logs: Path, seed: int) -> None:
        self.plan = LatencyPlan(DELAYS, seed)
        self.engine = SessionWard(config(), store=DelayingStore(open_store(url), self.plan))
        self.control = SessionWard(
            config(refresh_token_reuse_grace_period=CONTROL_GRACE),
            store=DelayingStore(open_store(url), self.plan),
        )
        self.engine.jwks()  # migrate and create the keys before the workers start
        self.workers = [
            Worker(url, driver, logs / f"worker-{i}.log", OPTIONS, LatencyPlan(DELAYS, seed * 100 + i))
            for i, driver in enumerate(WORKER_DRIVERS)
        ]
        self.injected = 0
        self.injected_seconds = 0.0
        self.promoted = 0
        for worker in self.workers:
            worker.request("warm")

    def step(self, plans: dict[int, list[tuple[str, str]]]) -> dict[int, list[Outcome]]:
        """Every session's calls at once, released together; the tabs of session ``b`` go
        to workers ``b``, ``b + 1``, ... (mod 4), so each session is spread over processes."""
        batches: list[list[tuple[int, str, str]]] = [[] for _ in self.workers]
        for b, calls in plans.items():
            for t, (kind, token) in enumerate(calls):
                batches[(b + t) % len(self.workers)].append((b, kind, token))
        start_at = time.monotonic() + 0.02
        idents = [
            worker.send(
                "calls",
                calls=[["verify" if kind == "verify" else "refresh", token] for _, kind, token in batch],
                start_at=start_at,
                stamp=True,
            )
            for worker, batch in zip(self.workers, batches, strict=True)
        ]
        outcomes: dict[int, list[Outcome]] = {b: [] for b in plans}
        for worker, ident, batch in zip(self.workers, idents, batches, strict=True):
            reply = worker.receive(ident)
            self.injected += reply["injected"]
            self.injected_seconds += reply["injected_seconds"]
            self.promoted += reply["promoted"]
            for (b, kind, _), result in zip(batch, reply["results"], strict=True):
                outcomes[b].append(Outcome.from_worker(kind, result))
        return outcomes

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.engine.store.close()
        self.control.store.close()


@pytest.fixture
def fleet(store_url: str, tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(store_url, tmp_path, seed=3)
    try:
        yield made
    finally:
        made.close()


@pytest.mark.slow
def test_tabs_in_four_processes_race_on_a_slow_store(backend: str, fleet: Fleet, tmp_path: Path) -> None:
    tally = Tally(backend, "4 processes", sessions=20, tabs=TABS, rounds=25)
    started = time.monotonic()
    browsers = [
        Browser(i, fleet.engine.create_new_session(f"user-{i}"), 3000 + i) for i in range(tally.sessions)
    ]

    for _ in range(tally.rounds):
        outcomes = fleet.step({b.index: b.plan(TABS) for b in browsers if not b.dead})
        for index, answers in outcomes.items():
            browsers[index].settle(answers, tally)
    for _ in range(3):
        outcomes = fleet.step({b.index: [("refresh", b.refresh)] for b in browsers if not b.dead})
        for index, answers in outcomes.items():
            browsers[index].settle(answers, tally)
    alive = [b for b in browsers if not b.dead]
    replays = fleet.step({b.index: [("replay", b.genuine_theft()[0])] for b in alive if not b.index % 2})
    time.sleep(CONTROL_GRACE + 0.5)
    for browser in alive:
        if browser.index % 2:
            replays[browser.index] = [sync_call(fleet.control, "replay", browser.genuine_theft()[0])]
    afters = fleet.step({b.index: [("refresh", b.refresh)] for b in alive})
    for browser in alive:
        browser.judge_control(replays[browser.index][0], afters[browser.index][0], tally)
    tally.seconds = time.monotonic() - started
    tally.promotions = fleet.promoted + fleet.plan.promotions
    tally.injected_delays = fleet.injected + fleet.plan.injected_total
    tally.injected_seconds = fleet.injected_seconds + fleet.plan.injected_seconds
    tally.check(tmp_path)
