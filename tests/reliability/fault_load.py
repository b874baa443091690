"""Continuous session traffic on a sync and an async engine while a fault is injected again
and again: the load and the bookkeeping shared by the store fault tests.

Each simulated browser holds its own session and, round after round, verifies its access
token, refreshes, and uses the new access token (which commits the rotation); after losing
its session (``UnauthorizedError``) it logs in again. Every engine call is recorded with its
outcome, so a test can assert what a client may see while the store is away and how soon
every client is served again once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.errors import TokenTheftDetectedError, TryRefreshTokenError, UnauthorizedError

CLIENTS_PER_DRIVER = 4
ROUND_PAUSE = 0.01
LOAD_BEFORE_FAULT = 0.8
RECOVERY_LIMIT = 2.0
OPTIONS: dict[str, Any] = {
    "access_token_algorithm": "HS256",
    "access_token_validity": 300,
    "refresh_token_validity": 3600,
    "access_token_signing_key_dynamic": False,  # no key sync in the middle of a test
    "cookie_secure": False,
}
STORE_OPS = ("login", "refresh", "promote")  # verifying a plain access token needs no store


@dataclass(frozen=True, slots=True)
class Call:
    """One engine call a client made: what, with which outcome, when (``time.monotonic``)."""

    op: str
    outcome: str
    started: float
    ended: float


@dataclass
class Client:
    """One browser: its tokens and the calls it made."""

    driver: str
    user_id: str
    access_token: str | None = None
    refresh_token: str | None = None
    calls: list[Call] = field(default_factory=list)

    def record(self, op: str, error: BaseException | None, started: float) -> None:
        outcome = "ok" if error is None else type(error).__name__
        self.calls.append(Call(op, outcome, started, time.monotonic()))
        if isinstance(error, UnauthorizedError | TokenTheftDetectedError):
            self.access_token = self.refresh_token = None  # logged out: log in again

    def served_again(self, fault: Fault) -> float | None:
        """When the first store call started after ``fault`` settled succeeded (or ``None``)."""
        for call in self.calls:
            if call.started > fault.settled and call.op in STORE_OPS and call.outcome == "ok":
                return call.ended
        return None


Step = tuple[str, str, tuple[Any, ...]]  # (label, engine method, arguments)


def browser_round(client: Client) -> Generator[Step, Any, None]:
    """One round of a browser; yields the engine calls to make and receives their results."""
    if client.access_token is None:
        tokens = yield "login", "create_new_session", (client.user_id,)
        client.access_token, client.refresh_token = tokens.access_token.value, tokens.refresh_token.value
        return
    yield "verify", "get_session", (client.access_token,)
    refreshed = yield "refresh", "refresh_session", (client.refresh_token,)
    client.refresh_token = refreshed.refresh_token.value  # the newest, as a browser keeps it
    verified = yield "promote", "get_session", (refreshed.access_token.value,)
    if verified.new_access_token is not None:
        client.access_token = verified.new_access_token.value


def play_sync(engine: SessionWard, client: Client, stop: threading.Event) -> None:
    """Play rounds until ``stop``; a failed call ends its round."""
    while not stop.is_set():
        steps, result = browser_round(client), None
        with contextlib.suppress(StopIteration):  # the round is over
            while True:
                label, method, args = steps.send(result)
                started = time.monotonic()
                try:
                    result = getattr(engine, method)(*args)
                except TryRefreshTokenError as exc:
                    client.record(label, exc, started)
                    if label != "verify":
                        break
                    result = None  # as a browser does: refresh next (the round's next step)
                except Exception as exc:
                    client.record(label, exc, started)
                    break
                else:
                    client.record(label, None, started)
        time.sleep(ROUND_PAUSE)


async def play_async(engine: AsyncSessionWard, client: Client, stop: threading.Event) -> None:
    """:func:`play_sync` for the async engine."""
    while not stop.is_set():
        steps, result = browser_round(client), None
        with contextlib.suppress(StopIteration):  # the round is over
            while True:
                label, method, args = steps.send(result)
                started = time.monotonic()
                try:
                    result = await getattr(engine, method)(*args)
                except TryRefreshTokenError as exc:
                    client.record(label, exc, started)
                    if label != "verify":
                        break
                    result = None  # as a browser does: refresh next (the round's next step)
                except Exception as exc:
                    client.record(label, exc, started)
                    break
                else:
                    client.record(label, None, started)
        await asyncio.sleep(ROUND_PAUSE)


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """When a fault was injected; the moment its recovery time is counted from (the store
    accepting connections again, or the fault itself if the store never went away); when it
    settled (the store back, every connection it broke gone)."""

    began: float
    counted_from: float
    settled: float


@dataclass
class Run:
    """The clients of both drivers and the faults injected."""

    clients: list[Client]
    faults: list[Fault]

    def of(self, driver: str) -> list[Client]:
        return [client for client in self.clients if client.driver == driver]


def _await_recovery(clients: list[Client], fault: Fault) -> None:
    deadline = fault.settled + RECOVERY_LIMIT + 3
    while time.monotonic() < deadline:
        if all(client.served_again(fault) is not None for client in clients):
            return
        time.sleep(0.02)


def _await_sessions(clients: list[Client]) -> None:
    deadline = time.monotonic() + 10
    while not all(any(c.op == "refresh" and c.outcome == "ok" for c in cl.calls) for cl in clients):
        assert time.monotonic() < deadline, "the clients never got going"
        time.sleep(0.02)


def run_with_faults(url: str, inject: Callable[[], tuple[float, float]], faults: int) -> Run:
    """Drive both engines on ``url`` and call ``inject`` ``faults`` times, the next once every
    client is served again. ``inject`` returns the fault's ``(counted_from, settled)``."""
    clients = [
        Client(driver, f"{driver}-user{index}")
        for driver in ("sync", "async")
        for index in range(CLIENTS_PER_DRIVER)
    ]
    run = Run(clients, [])
    stop = threading.Event()

    async def async_side() -> None:
        async with AsyncSessionWard(Config(store=url, **OPTIONS)) as engine:
            await asyncio.gather(*(play_async(engine, client, stop) for client in run.of("async")))

    with SessionWard(Config(store=url, **OPTIONS)) as engine:
        threads = [threading.Thread(target=play_sync, args=(engine, c, stop)) for c in run.of("sync")]
        threads.append(threading.Thread(target=asyncio.run, args=(async_side(),)))
        for thread in threads:
            thread.start()
        try:
            _await_sessions(clients)
            for _ in range(faults):
                time.sleep(LOAD_BEFORE_FAULT)
                began = time.monotonic()
                run.faults.append(Fault(began, *inject()))
                _await_recovery(clients, run.faults[-1])
            time.sleep(LOAD_BEFORE_FAULT / 2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
    return run


# -- what happened ----------------------------------------------------------------------------


def count(clients: list[Client], op: str | None = None, outcome: str = "ok") -> int:
    return sum(1 for c in clients for call in c.calls if call.outcome == outcome and op in (None, call.op))


def recovery_times(clients: list[Client], faults: list[Fault]) -> list[float]:
    """Per fault and client: seconds from ``counted_from`` to the client's first success."""
    times = []
    for fault in faults:
        for client in clients:
            served = client.served_again(fault)
            assert served is not None, f"{client.user_id} was never served again after a fault"
            times.append(served - fault.counted_from)
    return times


def assert_no_relapse(run: Run, clients: list[Client]) -> None:
    """Once a client is served again, the store's trouble is over for it until the next fault
    (no stale pooled connection fails later)."""
    ends = [fault.began for fault in run.faults[1:]] + [float("inf")]
    for fault, next_fault in zip(run.faults, ends, strict=True):
        for client in clients:
            served = client.served_again(fault)
            assert served is not None
            relapses = [
                call
                for call in client.calls
                if served < call.started
                and call.ended < next_fault
                # The answers to lost data (checked against what is allowed elsewhere).
                and call.outcome not in ("ok", "UnauthorizedError", "TryRefreshTokenError")
            ]
            assert not relapses, f"{client.user_id} failed again after recovering: {relapses[:3]}"


def check_and_report(run: Run, label: str, *, data_may_vanish: bool) -> dict[str, dict[str, Any]]:
    """Assert the promises; print and return the numbers of each driver.

    Never a theft verdict; while the store is away nothing but ``StorageUnavailableError``;
    no session lost unless the store really lost its data (``data_may_vanish``), and then
    exactly one ``UnauthorizedError`` per client and fault, after which logging in works;
    every client served again within :data:`RECOVERY_LIMIT` seconds of each return.
    """
    # A store that lost its data lost the signing keys too: with the change feed the
    # engines learn it, and tokens signed by a vanished key answer "try refresh".
    vanished = {"UnauthorizedError", "TryRefreshTokenError"}
    allowed = {"ok", "StorageUnavailableError"} | (vanished if data_may_vanish else set())
    report = {}
    for driver in ("sync", "async"):
        clients = run.of(driver)
        outcomes = {call.outcome for c in clients for call in c.calls}
        assert count(clients, outcome="TokenTheftDetectedError") == 0
        assert outcomes <= allowed, f"{driver}: unexpected outcomes {outcomes - allowed}"
        unavailable = count(clients, outcome="StorageUnavailableError")
        for client in clients:
            lost = count([client], outcome="UnauthorizedError")
            assert lost == (len(run.faults) if data_may_vanish else 0), (client.user_id, lost)
        assert_no_relapse(run, clients)
        recovery = recovery_times(clients, run.faults)
        report[driver] = {
            "sessions": count(clients, "login"),
            "verifications": count(clients, "verify"),
            "refreshes": count(clients, "refresh"),
            "rotations_committed": count(clients, "promote"),
            "faults": len(run.faults),
            "storage_unavailable_503": unavailable,
            "theft": 0,
            "lost_sessions": count(clients, outcome="UnauthorizedError"),
            "recovery_max_s": round(max(recovery), 3),
            "recovery_median_s": round(statistics.median(recovery), 3),
        }
        print(f"{label} ({driver}): {report[driver]}")
    for numbers in report.values():
        assert numbers["recovery_max_s"] <= RECOVERY_LIMIT, f"{label}: {report}"
    return report
