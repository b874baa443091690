"""Revocation across processes: how long after ``revoke_session`` returns do other processes
refuse the session? The change-feed drill of ``tests/reliability/feed_drill.py`` with more
iterations, printing Markdown tables.

    .venv/bin/python bench/revocation_drill.py [--revocations 200] [--payload-updates 50]
        [--retirements 20] [--cut-revocations 100] [--stores sqlite,postgres,redis]
        [--faults restart,proxy] [--restart-revocations 24] [--proxy-revocations 24]

Per store (a private SQLite file, PostgreSQL schema or Redis prefix), four verifier
processes each verify one session's access token in a tight loop: a Flask/gunicorn, a
Django/gunicorn and a FastAPI/uvicorn server (one worker each; their protected route polled
over 127.0.0.1 with keep-alive by a client thread of this process per server) and a plain
engine process. This process creates each session, waits until every verifier has verified
it, then makes the change; the figure is the time from the return of that call to the first
refusal each verifier saw (CLOCK_MONOTONIC, shared by the processes):

- ``revoke_session`` (401 ``unauthorised``), counting every store call of the four
  verifiers meanwhile;
- ``update_jwt_payload`` (401 ``try refresh token``; then the refreshed token carries the
  new payload everywhere);
- ``retire_signing_key`` (401 ``try refresh token`` for a token of the retired key);
- ``revoke_session`` while the listeners' connections are cut every 0.25 s (PostgreSQL:
  ``pg_terminate_backend``; Redis: ``CLIENT KILL``; not applicable to SQLite).

Then the faults of ``tests/reliability/feed_faults.py`` (``--faults``), each revocation at
one phase of one fault:

- ``restart``: the four verifiers on a private ``redis-server`` (append-only file, fsync on
  every write) that is stopped (SIGTERM and SIGKILL in turn) and started again after 1 s,
  once per revocation: just before the revocation, during it (the call fails and is made
  again), just after, 1.5 s after;
- ``proxy``: the verifiers reach PostgreSQL and Redis through a TCP proxy that resets every
  connection or goes quiet for 2.5 s (forwards nothing, closes nothing), once per
  revocation.

Needs the PostgreSQL and Redis of the machine (see ``tests/support/backends.py``); a store
that cannot be reached is left out. Everything runs on this machine's two cores together:
the figures include the scheduling of ~8 busy processes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _harness import machine_info  # noqa: E402
from _harness import table as markdown_table  # noqa: E402
from reliability.feed_drill import KINDS, Drill, Outcome, cutting, kid_of, table  # noqa: E402
from reliability.feed_faults import FaultRun, fault_notes, fault_table, proxy_drill, restart_drill  # noqa: E402
from support.backends import POSTGRES_URL, REDIS_URL, isolated_store_url  # noqa: E402
from support.redis_server import REDIS_SERVER  # noqa: E402
from support.services import reachable  # noqa: E402

MIN_CUTS = 8
"""The cut drill goes on until at least this many cuts were made."""


class Results:
    """Every table's outcomes, per store."""

    def __init__(self) -> None:
        self.revoked: dict[str, list[Outcome]] = {}
        self.payload: dict[str, list[Outcome]] = {}
        self.retired: dict[str, list[Outcome]] = {}
        self.cut: dict[str, list[Outcome]] = {}
        self.cuts: dict[str, list[int]] = {}
        self.feed_after_cuts: dict[str, Any] = {}
        self.calls: dict[str, dict[str, dict[str, int]]] = {}
        self.verifications: dict[str, dict[str, int]] = {}
        self.restarts: list[FaultRun] = []
        self.proxy_cuts: list[FaultRun] = []
        self.problems: list[str] = []
        self.fault_bound_ms = 5000.0


def run_store(backend: str, args: argparse.Namespace, results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp, isolated_store_url(backend, Path(tmp)) as url:
        drill = Drill(url, Path(tmp))
        try:
            # The first verifications start every process's listener; let them catch up.
            tokens = drill.session()
            drill.change(tokens, partial(drill.engine.revoke_session, tokens.handle))
            time.sleep(1.5)

            drill.reset_counts()
            revoked: list[Outcome] = []
            for _ in range(args.revocations):
                tokens = drill.session()
                revoked.append(drill.change(tokens, partial(drill.engine.revoke_session, tokens.handle)))
            results.revoked[backend] = revoked
            results.calls[backend] = drill.store_calls()
            results.verifications[backend] = drill.verifications()

            payload: list[Outcome] = []
            for round_ in range(args.payload_updates):
                tokens = drill.session({"round": round_, "version": 1})
                new = {"round": round_, "version": 2}
                payload.append(
                    drill.change(tokens, partial(drill.engine.update_jwt_payload, tokens.handle, new))
                )
                refreshed = drill.engine.refresh_session(tokens.refresh_token.value)
                for kind, answers in drill.check_all([refreshed.access_token.value]).items():
                    if answers != [["ok", new]]:
                        results.problems.append(f"{backend} payload: {kind} answered {answers}")
            results.payload[backend] = payload

            retire = getattr(drill.engine, "retire_signing_key", None)
            if retire is None:
                note = "retire_signing_key does not exist in this version: not measured"
                if note not in results.problems:
                    results.problems.append(note)
            else:
                retired: list[Outcome] = []
                for _ in range(args.retirements):
                    tokens = drill.session()
                    retired.append(drill.change(tokens, partial(retire, kid_of(tokens.access_token.value))))
                    refreshed = drill.engine.refresh_session(tokens.refresh_token.value)
                    for kind, answers in drill.check_all([refreshed.access_token.value]).items():
                        if answers[0][0] != "ok":
                            results.problems.append(f"{backend} retire: {kind} refused the refreshed token")
                results.retired[backend] = retired

            if backend != "sqlite":
                admin = POSTGRES_URL if backend == "postgres" else REDIS_URL
                cut: list[Outcome] = []
                handed: list[str] = []
                with cutting(url, admin, every=0.25) as cuts:
                    while len(cut) < args.cut_revocations or len(cuts) < MIN_CUTS:
                        tokens = drill.session()
                        handed.append(tokens.access_token.value)
                        cut.append(drill.change(tokens, partial(drill.engine.revoke_session, tokens.handle)))
                results.cut[backend] = cut
                results.cuts[backend] = cuts
                counts = drill.by_kind("engine").counts()
                results.feed_after_cuts[backend] = (counts or {}).get("feed")
                if not drill.wait_live():
                    results.problems.append(f"{backend} cut: the feed was not live again within 10 s")
                drill.reset_counts()
                checked = drill.check_all(handed)
                for kind, calls in drill.store_calls().items():
                    if calls:
                        results.problems.append(
                            f"{backend} cut: {kind} read the store after the cuts: {calls}"
                        )
                for kind, answers in checked.items():
                    accepted = sum(answer != ["err", "UnauthorizedError"] for answer in answers)
                    if accepted:
                        results.problems.append(
                            f"{backend} cut: {kind} did not refuse {accepted} revoked tokens"
                        )
        finally:
            drill.close()


def run_faults(args: argparse.Namespace, results: Results) -> None:
    """The drills of ``--faults``."""
    faults = {fault for fault in args.faults.split(",") if fault}
    unknown = faults - {"restart", "proxy"}
    if unknown:
        raise SystemExit(f"unknown --faults: {sorted(unknown)} (known: restart, proxy)")
    if "restart" in faults:
        if not shutil.which(REDIS_SERVER):
            results.problems.append(f"restart: no redis-server binary ({REDIS_SERVER}): left out")
        else:
            began = time.monotonic()
            with tempfile.TemporaryDirectory() as tmp:
                results.restarts.append(restart_drill(Path(tmp), args.restart_revocations))
            print(f"redis restarts: {time.monotonic() - began:.0f} s", file=sys.stderr)
    if "proxy" in faults:
        for backend in args.stores.split(","):
            if backend == "sqlite":
                continue
            if not reachable(POSTGRES_URL if backend == "postgres" else REDIS_URL):
                continue  # reported already
            began = time.monotonic()
            with tempfile.TemporaryDirectory() as tmp, isolated_store_url(backend, Path(tmp)) as url:
                results.proxy_cuts.append(proxy_drill(backend, url, Path(tmp), args.proxy_revocations))
            print(f"{backend} proxy cuts: {time.monotonic() - began:.0f} s", file=sys.stderr)
    for run in results.restarts + results.proxy_cuts:
        missed = run.missed(args.fault_bound_ms)
        if missed:
            first = missed[:4]
            results.problems.append(f"{run.store}: {len(missed)} missed under faults (first ones): {first}")
        results.problems.extend(f"{run.store} after the faults: {problem}" for problem in run.problems)


def report_faults(results: Results, bound_ms: float) -> None:
    """The tables of the fault drills."""
    for title, runs in (
        ("revoke_session while Redis restarts (AOF, fsync always; SIGTERM and SIGKILL)", results.restarts),
        ("revoke_session while the verifiers' proxy resets or goes quiet", results.proxy_cuts),
    ):
        if runs:
            print(fault_table(title, runs, bound_ms))
            print()
            print("\n".join(fault_notes(runs)))
            print()


def report(results: Results, bound_ms: float) -> None:
    print(table("revoke_session", results.revoked, "UnauthorizedError", bound_ms))
    print()
    rows = []
    for store, calls in results.calls.items():
        made = results.verifications[store]
        rows.append([store, *(f"{made[kind]:,} / {sum(calls[kind].values())}" for kind in KINDS)])
    print("#### Verifications and store calls of each verifier during the revocations")
    print()
    print(markdown_table(["store", *KINDS], rows))
    print()
    print(table("update_jwt_payload", results.payload, "TryRefreshTokenError", bound_ms))
    print()
    if results.retired:
        print(table("retire_signing_key", results.retired, "TryRefreshTokenError", bound_ms))
        print()
    if results.cut:
        print(
            table(
                "revoke_session while the listeners are cut every 0.25 s",
                results.cut,
                "UnauthorizedError",
                bound_ms,
            )
        )
        print()
        rows = []
        for store, cuts in results.cuts.items():
            feed = results.feed_after_cuts.get(store) or {}
            rows.append([store, str(len(cuts)), str(sum(cuts)), str(feed.get("disconnects", "?"))])
        print(
            markdown_table(
                ["store", "cuts", "listener connections dropped", "disconnects seen by the plain engine"],
                rows,
            )
        )
        print()
    report_faults(results, results.fault_bound_ms)
    if results.problems:
        print("Problems:")
        for problem in results.problems:
            print(f"- {problem}")
    else:
        print("No problem: every refusal was the expected one, every refreshed token passed everywhere.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--payload-updates", type=int, default=50)
    parser.add_argument("--retirements", type=int, default=20)
    parser.add_argument("--cut-revocations", type=int, default=100)
    parser.add_argument("--stores", default="sqlite,postgres,redis")
    parser.add_argument("--bound-ms", type=float, default=1000.0, help="a later refusal counts as a failure")
    parser.add_argument(
        "--faults", default="restart,proxy", help="fault drills: restart (Redis), proxy (PostgreSQL, Redis)"
    )
    parser.add_argument("--restart-revocations", type=int, default=24, help="one Redis restart each")
    parser.add_argument("--proxy-revocations", type=int, default=24, help="per store, one proxy fault each")
    parser.add_argument(
        "--fault-bound-ms",
        type=float,
        default=5000.0,
        help="under faults, a later refusal counts as missed (the outage or quiet network lasts up to 2.5 s)",
    )
    args = parser.parse_args()
    for line in machine_info():
        print(line)
    print(
        f"revocations {args.revocations}, payload updates {args.payload_updates}, "
        f"retirements {args.retirements}, revocations under cuts {args.cut_revocations} per store; "
        f"faults {args.faults or 'none'}: revocations under Redis restarts {args.restart_revocations}, "
        f"under proxy faults {args.proxy_revocations} per store"
    )
    print()
    results = Results()
    for backend in args.stores.split(","):
        if backend != "sqlite" and not reachable(POSTGRES_URL if backend == "postgres" else REDIS_URL):
            results.problems.append(f"{backend} is not reachable: left out")
            continue
        began = time.monotonic()
        run_store(backend, args, results)
        print(f"{backend}: {time.monotonic() - began:.0f} s", file=sys.stderr)
    results.fault_bound_ms = args.fault_bound_ms
    run_faults(args, results)
    report(results, args.bound_ms)


if __name__ == "__main__":
    main()
