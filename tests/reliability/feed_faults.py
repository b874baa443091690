"""Revocations while the change feed's connections fail: the drill of ``feed_drill.py`` (four
verifier processes, this process making the changes) under two faults.

Shared by ``test_feed_faults.py`` and ``bench/revocation_drill.py`` (not a test module).

- **Redis restarted** (:func:`restart_drill`): the drill runs on a private ``redis-server``
  with an append-only file fsynced on every write (``appendfsync always``): every
  acknowledged write — the session deleted, its change-stream entry, the change counter —
  is on disk before the reply, so a graceful stop (SIGTERM) and a crash (SIGKILL, which
  writes nothing on its way out) both keep it. (A snapshot on shutdown would cover the
  graceful stop only; ``appendfsync everysec`` may lose the last second.) The server is
  stopped, SIGTERM and SIGKILL in turn, and started again on the same port after
  ``downtime`` seconds, once per revocation.
- **Proxy cut** (:func:`proxy_drill`): the verifiers reach the store (PostgreSQL or Redis)
  through a :class:`~reliability.tcp_proxy.FaultyProxy`; this process reaches it directly.
  The proxy resets every connection, or goes quiet for ``quiet`` seconds (nothing
  forwarded, nothing closed: the listeners see no error and hear nothing) and then
  forwards what it held.

Each revocation is made at one *phase* of its fault (:data:`RESTART_PHASES`,
:data:`PROXY_PHASES`), in turn: just before it, during it, just after it, once it settled.
While the store cannot be reached, the fail-safe answer of a verifier is 503
(``StorageUnavailableError``): it is tolerated, the verifier keeps verifying. A revocation
made while Redis is down fails with ``StorageUnavailableError`` and is made again until it
succeeds; its figures count from that successful return.

A revocation is **missed** when a verifier did not answer 401 (``UnauthorizedError``)
within the drill's bound, or when a verification that *began* more than
``change_feed_max_lag`` after the revocation returned passed (the feed's guarantee: a
listener that hears nothing is trusted for ``change_feed_max_lag`` at most).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from reliability.feed_drill import KINDS, Drill, Outcome, summary
from reliability.tcp_proxy import FaultyProxy
from support.backends import unique_name, with_query
from support.redis_server import RedisServer, private_redis_server

from sessionward import SessionTokens, StorageUnavailableError

T = TypeVar("T")

TOLERATE = ("StorageUnavailableError",)
"""The verifiers' fail-safe answer while the store cannot be reached (503)."""
EXPECTED = "UnauthorizedError"

RESTART_PHASES: tuple[str, ...] = ("before", "down", "restarted", "settled")
"""When the revocation is made: ``before`` the server stops (returned just before it is
stopped: the listeners may not have read it yet), while it is ``down`` (the call fails and
is made again once it is back), as soon as it was ``restarted`` (the listeners reconnect
with backoff meanwhile), once ``settled`` (the listeners are back)."""
PROXY_PHASES: tuple[tuple[str, str], ...] = (
    ("reset", "before"),
    ("reset", "after"),
    ("reset", "reconnecting"),
    ("quiet", "at once"),
    ("quiet", "not live"),
    ("quiet", "healed"),
)
"""(fault, phase): ``reset`` — every proxied connection reset just after the revocation
returned (``before``), just before the call (``after``) or 0.1 s before it
(``reconnecting``); ``quiet`` — the network went quiet just before the call (``at once``:
the feed may still be trusted for up to ``change_feed_max_lag``), 1.5 times
``change_feed_max_lag`` before it (``not live``), or the call is made just after the quiet
network came back (``healed``: the listeners catch up with what they missed)."""


@dataclass
class Round:
    """One revocation at one phase of one fault."""

    fault: str
    phase: str
    outcome: Outcome
    attempts: int
    """Revocation calls made (the failed ones and the one that succeeded)."""


Miss = tuple[int, str, str, str, str | None, float | None, float | None]


@dataclass
class FaultRun:
    """The rounds of one drill on one store and what was checked afterwards."""

    store: str
    rounds: list[Round] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    """How many of each fault were made (``SIGTERM``, ``SIGKILL``, ``reset``, ``quiet``)."""
    connections_reset: int = 0
    max_lag_ms: float = 1000.0
    feed_after: dict[str, Any] | None = None
    """The plain engine process's feed state after the drill."""
    problems: list[str] = field(default_factory=list)
    """What the check after the drill found wrong (see :func:`check_afterwards`)."""

    def missed(self, bound_ms: float) -> list[Miss]:
        """``(round, fault, phase, verifier, error, refused after ms, last pass began after
        ms)`` of every missed revocation (see the module docstring)."""
        found = []
        for index, round_ in enumerate(self.rounds):
            outcome = round_.outcome
            for kind in KINDS:
                error = outcome.error.get(kind)
                latency = outcome.latency_ms.get(kind)
                accepted = outcome.accepted_ms.get(kind)
                if (
                    error != EXPECTED
                    or (latency or 0.0) > bound_ms
                    or (accepted is not None and accepted > self.max_lag_ms)
                ):
                    found.append((index, round_.fault, round_.phase, kind, error, latency, accepted))
        return found


def retry(call: Callable[[], T], limit: float = 30.0) -> tuple[T, int]:
    """``call()`` made again while it fails with ``StorageUnavailableError`` (up to
    ``limit`` seconds); its result and how many calls were made."""
    deadline = time.monotonic() + limit
    attempts = 0
    while True:
        attempts += 1
        try:
            return call(), attempts
        except StorageUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class RetryingDrill(Drill):
    """A :class:`Drill` whose sessions are created again while the store is away, and whose
    verifiers tolerate 503."""

    def __init__(self, url: str, logs: Path, **kwargs: Any) -> None:
        super().__init__(url, logs, tolerate=TOLERATE, **kwargs)

    def create(self, user_id: str, payload: dict[str, Any] | None) -> SessionTokens:
        return retry(lambda: self.engine.create_new_session(user_id, payload))[0]

    def warm_up(self) -> None:
        """Start every process's listener (their first verifications) and let them catch up."""
        tokens = self.session()
        self.change(tokens, lambda: retry(lambda: self.engine.revoke_session(tokens.handle)))
        time.sleep(1.5)


def check_afterwards(drill: Drill, run: FaultRun, revoked: list[str]) -> None:
    """Once the faults are over and the feed is live again, every verifier refuses every
    revoked token from memory (no change was lost across the faults, no store call is made
    to answer); what does not hold goes to ``run.problems``."""
    run.feed_after = (drill.by_kind("engine").counts() or {}).get("feed")
    if not drill.wait_live(timeout=15):
        run.problems.append("the plain engine process's feed was not live again within 15 s")
    drill.reset_counts()
    for kind, answers in drill.check_all(revoked).items():
        accepted = sum(answer != ["err", EXPECTED] for answer in answers)
        if accepted:
            run.problems.append(f"{kind} did not refuse {accepted} of the {len(answers)} revoked tokens")
    for kind, calls in drill.store_calls().items():
        if calls:
            run.problems.append(f"{kind} read the store to refuse the revoked tokens: {calls}")


# -- Redis restarted -----------------------------------------------------------------------------


def _restart(server: RedisServer, crash: bool, downtime: float, up: threading.Event) -> None:
    if crash:
        server.kill()
    else:
        server.stop()
    time.sleep(downtime)
    server.start()
    up.set()


def _restart_round(
    drill: Drill, server: RedisServer, phase: str, crash: bool, downtime: float, settle: float
) -> tuple[SessionTokens, Round]:
    """One session, revoked at ``phase`` of one restart."""
    tokens = drill.session()
    up = threading.Event()
    restart = threading.Thread(
        target=_restart, args=(server, crash, downtime, up), name="drill-restart", daemon=True
    )
    attempts: list[int] = []

    def revoke() -> None:
        attempts.append(retry(lambda: drill.engine.revoke_session(tokens.handle))[1])

    def action() -> None:
        if phase == "before":
            revoke()
            restart.start()
            return
        restart.start()
        if phase == "down":
            time.sleep(downtime / 2)
        else:
            up.wait(30)
            if phase == "settled":
                time.sleep(settle)
        revoke()

    outcome = drill.change(tokens, action, deadline=downtime + 10)
    restart.join(30)
    return tokens, Round("restart", phase, outcome, attempts[0] if attempts else 0)


def restart_drill(
    directory: Path, revocations: int, *, downtime: float = 1.0, settle: float = 1.5
) -> FaultRun:
    """Revocations while a private, persistent ``redis-server`` is restarted (see the module
    docstring): ``revocations`` rounds, one restart each."""
    run = FaultRun("redis")
    with private_redis_server(directory, persistent=True) as server:
        url = with_query(server.url, prefix=unique_name("swdrill") + ":")
        drill = RetryingDrill(url, directory)
        try:
            run.max_lag_ms = drill.config.change_feed_max_lag * 1000
            drill.warm_up()
            revoked: list[str] = []
            for index in range(revocations):
                phase = RESTART_PHASES[index % len(RESTART_PHASES)]
                crash = index % 2 == 1
                tokens, round_ = _restart_round(drill, server, phase, crash, downtime, settle)
                revoked.append(tokens.access_token.value)
                run.faults["SIGKILL" if crash else "SIGTERM"] += 1
                run.rounds.append(round_)
            check_afterwards(drill, run, revoked)
        finally:
            drill.close()
    return run


# -- proxy cut -----------------------------------------------------------------------------------


def proxied(url: str, port: int) -> str:
    """``url`` with its port replaced by ``port`` (on 127.0.0.1)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextmanager
def faulty_proxy_to(url: str) -> Iterator[FaultyProxy]:
    """A :class:`FaultyProxy` to the server of ``url``, closed afterwards."""
    parts = urlsplit(url)
    default = 5432 if parts.scheme.startswith("postgres") else 6379
    proxy = FaultyProxy((parts.hostname or "127.0.0.1", parts.port or default))
    try:
        yield proxy
    finally:
        proxy.close()


def _proxy_round(
    drill: Drill, proxy: FaultyProxy, run: FaultRun, fault: str, phase: str, quiet: float
) -> tuple[SessionTokens, Round]:
    """One session, revoked at ``phase`` of one ``fault`` of the proxy."""
    tokens = drill.session()
    healed = threading.Event()

    def go_quiet() -> None:
        proxy.blackhole()
        time.sleep(quiet)
        proxy.heal()
        healed.set()

    quieting = threading.Thread(target=go_quiet, name="drill-quiet", daemon=True)

    def revoke() -> None:
        drill.engine.revoke_session(tokens.handle)

    def action() -> None:
        if fault == "reset":
            if phase == "before":
                revoke()
                run.connections_reset += proxy.reset()
                return
            run.connections_reset += proxy.reset()
            if phase == "reconnecting":
                time.sleep(0.1)
            revoke()
            return
        quieting.start()
        if phase == "not live":
            time.sleep(1.5 * drill.config.change_feed_max_lag)
        elif phase == "healed":
            healed.wait(30)
        revoke()

    outcome = drill.change(tokens, action, deadline=quiet + 10)
    if fault == "quiet":
        quieting.join(30)
    return tokens, Round(fault, phase, outcome, 1)


def proxy_drill(backend: str, url: str, directory: Path, revocations: int, *, quiet: float = 2.5) -> FaultRun:
    """Revocations while the verifiers' way to the store (``url``, PostgreSQL or Redis) is
    cut (see the module docstring): ``revocations`` rounds, one fault each."""
    run = FaultRun(backend)
    with faulty_proxy_to(url) as proxy:
        drill = RetryingDrill(url, directory, verifier_url=proxied(url, proxy.port))
        try:
            run.max_lag_ms = drill.config.change_feed_max_lag * 1000
            drill.warm_up()
            revoked: list[str] = []
            for index in range(revocations):
                fault, phase = PROXY_PHASES[index % len(PROXY_PHASES)]
                tokens, round_ = _proxy_round(drill, proxy, run, fault, phase, quiet)
                revoked.append(tokens.access_token.value)
                run.faults[fault] += 1
                run.rounds.append(round_)
            check_afterwards(drill, run, revoked)
        finally:
            drill.close()
    return run


# -- the report ----------------------------------------------------------------------------------


def fault_table(title: str, runs: list[FaultRun], bound_ms: float) -> str:
    """A Markdown table: one row per store, fault and phase — the revocations, how many were
    missed, the time from the (successful) call's return to each verifier's refusal (p50 /
    p99 / max over the four verifiers), when the last verification that passed began
    (max), the 503 answers meanwhile and the failed calls made again."""
    lines = [
        f"#### {title}",
        "",
        "refused: ms from the successful call's return to the 401, p50 / p99 / max over the"
        f" {len(KINDS)} verifiers; last pass: the latest start of a verification that passed,"
        " ms after the return (a pass that began more than `change_feed_max_lag` after it is a"
        " miss); 503: fail-safe answers meanwhile; retried: revocation calls that failed and"
        " were made again",
        "",
        f"| store | fault | phase | revocations | missed (or > {bound_ms:.0f} ms) | refused | last pass"
        " | 503 | retried |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        missed = run.missed(bound_ms)
        groups: dict[tuple[str, str], list[int]] = {}
        for index, round_ in enumerate(run.rounds):
            groups.setdefault((round_.fault, round_.phase), []).append(index)
        for (fault, phase), indexes in groups.items():
            rounds = [run.rounds[index] for index in indexes]
            refused = _values(rounds, "latency_ms")
            passes = _values(rounds, "accepted_ms")
            unavailable = sum(sum(round_.outcome.tolerated.values()) for round_ in rounds)
            retried = sum(max(0, round_.attempts - 1) for round_ in rounds)
            bad = sum(1 for entry in missed if entry[0] in indexes)
            last_pass = f"{max(passes):.0f}" if passes else "-"
            lines.append(
                f"| {run.store} | {fault} | {phase} | {len(rounds)} | {bad} | {summary(refused)} "
                f"| {last_pass} | {unavailable} | {retried} |"
            )
    return "\n".join(lines)


def _values(rounds: list[Round], name: str) -> list[float]:
    """Every verifier's figure ``name`` (an :class:`Outcome` field) over ``rounds``."""
    return [
        value
        for round_ in rounds
        for kind in KINDS
        if (value := getattr(round_.outcome, name).get(kind)) is not None
    ]


def fault_notes(runs: list[FaultRun]) -> list[str]:
    """One line per run: the faults made, and what the check afterwards found."""
    notes = []
    for run in runs:
        made = ", ".join(f"{count} {name}" for name, count in sorted(run.faults.items()))
        if run.connections_reset:
            made += f" ({run.connections_reset} connections reset)"
        feed = run.feed_after or {}
        verdict = "; ".join(run.problems) or "every revoked token refused from memory afterwards"
        disconnects = feed.get("disconnects", "?")
        notes.append(f"- {run.store}: {made}; plain engine process: {disconnects} disconnects; {verdict}")
    return notes


__all__ = [
    "EXPECTED",
    "PROXY_PHASES",
    "RESTART_PHASES",
    "TOLERATE",
    "FaultRun",
    "Miss",
    "RetryingDrill",
    "Round",
    "fault_notes",
    "fault_table",
    "proxy_drill",
    "restart_drill",
    "retry",
]
