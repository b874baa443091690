"""Revocations while the change feed's connections fail (``feed_faults.py``): the four
verifier processes of the revocation drill — a Flask/gunicorn, a Django/gunicorn and a
FastAPI/uvicorn server and a plain engine process — while

- the Redis server is restarted, again and again (a private ``redis-server`` with an
  append-only file fsynced on every write; SIGTERM and SIGKILL in turn), revocations made
  just before, during (the call fails and is made again), just after and well after;
- the verifiers' way to the store (PostgreSQL, Redis) goes through a proxy that resets
  every connection or goes quiet (forwards nothing, closes nothing) for 2.5 s.

Asserted: no revocation is missed — every verifier answers 401 within the bound, and no
verification that began more than ``change_feed_max_lag`` after the revocation returned
passed (503, the fail-safe answer while the store cannot be reached, is no miss); once the
faults are over, every verifier refuses every revoked token from memory, without a store
call (nothing was lost across the reconnections). The figures are printed, captured or not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.feed_faults import (
    PROXY_PHASES,
    RESTART_PHASES,
    FaultRun,
    fault_notes,
    fault_table,
    proxy_drill,
)
from reliability.feed_faults import restart_drill as run_restart_drill
from support.backends import isolated_store_url

pytestmark = pytest.mark.slow

RESTART_ROUNDS = 2 * len(RESTART_PHASES)
PROXY_ROUNDS = len(PROXY_PHASES)
BOUND_MS = 5000.0


def show(capsys: pytest.CaptureFixture[str], title: str, run: FaultRun) -> None:
    with capsys.disabled():
        print("\n" + fault_table(title, [run], BOUND_MS))
        print("\n".join(fault_notes([run])))


def assert_none_missed(run: FaultRun, rounds: int) -> None:
    assert len(run.rounds) == rounds
    missed = run.missed(BOUND_MS)
    assert not missed, f"{len(missed)} revocations missed, late or wrong (first ones): {missed[:8]}"
    assert not run.problems, run.problems


def test_no_revocation_is_missed_while_redis_restarts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_restart_drill(tmp_path, RESTART_ROUNDS)
    show(capsys, "revoke_session while Redis restarts (AOF, fsync always)", run)
    assert run.faults == {"SIGTERM": RESTART_ROUNDS // 2, "SIGKILL": RESTART_ROUNDS // 2}
    # Redis was really away: revocations failed and were made again, verifiers answered 503.
    assert sum(round_.attempts > 1 for round_ in run.rounds) >= RESTART_ROUNDS // len(RESTART_PHASES)
    assert sum(sum(round_.outcome.tolerated.values()) for round_ in run.rounds) > 0
    assert (run.feed_after or {}).get("disconnects", 0) >= RESTART_ROUNDS
    assert_none_missed(run, RESTART_ROUNDS)


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_no_revocation_is_missed_while_the_proxy_cuts(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with isolated_store_url(backend, tmp_path) as url:
        run = proxy_drill(backend, url, tmp_path, PROXY_ROUNDS)
    show(capsys, "revoke_session while the verifiers' proxy resets or goes quiet", run)
    assert run.connections_reset >= 4 * 3, run.connections_reset  # four processes, three resets
    # The listeners were cut (a reset that finds a listener still in its backoff after the
    # previous one has nothing of it to cut: not every reset counts).
    assert (run.feed_after or {}).get("disconnects", 0) >= 1
    assert_none_missed(run, PROXY_ROUNDS)
