"""The engine's costs in this checkout against an earlier source tree, in one interleaved run.

Run: ``.venv/bin/python bench/before_after.py --before DIR [--rounds 11] [--algs RS256,HS256]``
where ``DIR`` is the ``src`` directory of the earlier version, for instance::

    mkdir -p /tmp/before && git archive cf16ee9 src | tar -x -C /tmp/before
    .venv/bin/python bench/before_after.py --before /tmp/before/src

Each version runs in its own child process (one package cannot be imported twice in one
process), on its own SQLite file (WAL, synchronous=NORMAL), through the public engine API
only, so any two versions compare. The parent alternates the children round by round
(before, after, before, ...) so that both see the same machine; every case's figure is the
median over the rounds of µs per operation, and the ratio after/before is taken per round.

Cases per algorithm: ``verify, cache hit`` (the same token again), ``verify, cache off``
(an engine with ``verified_token_cache_size=0``), ``create_new_session``,
``refresh_session`` (which writes nothing), ``promotion`` (the first ``get_session`` of a
refreshed access token: one compare-and-set) and ``refresh + promotion`` (a whole rotation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ALGS = ("RS256", "HS256")
POOL = 6_000
JWT_PAYLOAD = {"role": "member", "tenant": "acme", "scopes": ["read", "write"], "n": 12345}
CASES = (
    ("verify_hit", "verify, cache hit"),
    ("verify_miss", "verify, cache off"),
    ("create", "create_new_session"),
    ("refresh", "refresh_session (no write)"),
    ("promotion", "promotion (first get_session of the child)"),
    ("rotation", "refresh + promotion (full rotation)"),
)
TARGET_SECONDS = 0.1


# -- the child: one version of the package --------------------------------------------------------


def child_cases(alg: str, workdir: Path) -> dict[str, Callable[[int], float]]:
    from sessionward import Config, SessionWard

    url = f"sqlite:///{workdir / 'sessions.db'}"
    engine = SessionWard(Config(store=url, access_token_algorithm=alg))
    uncached = SessionWard(Config(store=url, access_token_algorithm=alg, verified_token_cache_size=0))
    sample = engine.create_new_session("user-0", JWT_PAYLOAD)
    token = sample.access_token.value
    uncached.get_session(token)
    pool = [engine.create_new_session(f"user-{i}", JWT_PAYLOAD).refresh_token.value for i in range(POOL)]
    position = [0]
    created = [0]

    def take(n: int) -> list[int]:
        if n > POOL:
            raise RuntimeError(f"batch of {n} exceeds the pool of {POOL} sessions")
        first = position[0]
        position[0] = (first + n) % POOL
        return [(first + i) % POOL for i in range(n)]

    def verify_hit(n: int) -> float:
        get_session = engine.get_session
        start = time.perf_counter()
        for _ in range(n):
            get_session(token)
        return time.perf_counter() - start

    def verify_miss(n: int) -> float:
        get_session = uncached.get_session
        start = time.perf_counter()
        for _ in range(n):
            get_session(token)
        return time.perf_counter() - start

    def create(n: int) -> float:
        users = [f"new-{i}" for i in range(created[0], created[0] + n)]
        created[0] += n
        create_new_session = engine.create_new_session
        start = time.perf_counter()
        for user in users:
            create_new_session(user, JWT_PAYLOAD)
        return time.perf_counter() - start

    def refresh(n: int) -> float:
        tokens = [pool[i] for i in take(n)]
        refresh_session = engine.refresh_session
        start = time.perf_counter()
        for value in tokens:
            refresh_session(value)
        return time.perf_counter() - start

    def promotion(n: int) -> float:
        indices = take(n)
        issued = [engine.refresh_session(pool[i]) for i in indices]  # untimed preparation
        get_session = engine.get_session
        start = time.perf_counter()
        for tokens in issued:
            get_session(tokens.access_token.value)
        elapsed = time.perf_counter() - start
        for i, tokens in zip(indices, issued, strict=True):
            pool[i] = tokens.refresh_token.value
        return elapsed

    def rotation(n: int) -> float:
        indices = take(n)
        refresh_session = engine.refresh_session
        get_session = engine.get_session
        start = time.perf_counter()
        for i in indices:
            tokens = refresh_session(pool[i])
            get_session(tokens.access_token.value)
            pool[i] = tokens.refresh_token.value
        return time.perf_counter() - start

    return {
        "verify_hit": verify_hit,
        "verify_miss": verify_miss,
        "create": create,
        "refresh": refresh,
        "promotion": promotion,
        "rotation": rotation,
    }


def child_main(alg: str, workdir: Path) -> None:
    """Answer the parent: a ``sizes`` request calibrates, a ``round`` request runs each case once."""
    cases = child_cases(alg, workdir)
    for line in sys.stdin:
        request = json.loads(line)
        if request["do"] == "sizes":
            answer: dict[str, Any] = {name: calibrate(batch) for name, batch in cases.items()}
        else:
            answer = {name: cases[name](n) / n * 1e6 for name, n in request["sizes"].items()}
        print(json.dumps(answer), flush=True)


def calibrate(batch: Callable[[int], float]) -> int:
    n = 1
    while True:
        elapsed = batch(n)
        if elapsed >= TARGET_SECONDS / 5 or n >= POOL:
            return min(POOL, max(1, round(n * TARGET_SECONDS / max(elapsed, 1e-9))))
        n *= 4


# -- the parent --------------------------------------------------------------------------------------


class Child:
    """One version's child process, spoken to one JSON line at a time."""

    def __init__(self, source: Path, alg: str, workdir: Path) -> None:
        workdir.mkdir(parents=True)
        env = dict(os.environ, PYTHONPATH=str(source))
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", alg, "--workdir", str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark child exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def run_alg(
    alg: str, before: Path, after: Path, rounds: int, workdir: Path
) -> dict[str, dict[str, list[float]]]:
    print(f"  {alg}: starting both versions ({POOL} sessions each) ...", file=sys.stderr, flush=True)
    children = {
        "before": Child(before, alg, workdir / f"{alg}-before"),
        "after": Child(after, alg, workdir / f"{alg}-after"),
    }
    try:
        sizes = children["after"].ask({"do": "sizes"})
        children["before"].ask({"do": "round", "sizes": sizes})  # warm-up of the other one
        results: dict[str, dict[str, list[float]]] = {name: {case: [] for case in sizes} for name in children}
        for index in range(rounds):
            order = ("before", "after") if index % 2 == 0 else ("after", "before")
            for name in order:
                for case, value in children[name].ask({"do": "round", "sizes": sizes}).items():
                    results[name][case].append(value)
            print(f"  {alg}: round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
        return results
    finally:
        for child in children.values():
            child.close()


def report(alg: str, results: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n### {alg}: µs/op (median over rounds, min-max) and after/before per round\n")
    print("| case | before µs | after µs | after/before (median) | range |")
    print("|---|---|---|---|---|")
    for case, label in CASES:
        before, after = results["before"][case], results["after"][case]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        print(
            f"| {label} | {statistics.median(before):.2f} ({min(before):.1f}-{max(before):.1f}) "
            f"| {statistics.median(after):.2f} ({min(after):.1f}-{max(after):.1f}) "
            f"| {statistics.median(ratios):.3f}x | {min(ratios):.2f}-{max(ratios):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="the src directory of the earlier version")
    parser.add_argument("--after", type=Path, default=HERE.parent / "src", help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--algs", default=",".join(ALGS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.workdir)
        return
    if args.before is None or not (args.before / "sessionward" / "__init__.py").is_file():
        parser.error("--before must name a src directory holding the sessionward package")
    sys.path.insert(0, str(HERE))
    from _harness import machine_info

    print("\n".join(f"- {line}" for line in machine_info()))
    print(f"- before: {args.before.resolve()}; after: {args.after.resolve()}; {args.rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="sessionward-before-after-") as tmp:
        for alg in args.algs.split(","):
            report(alg, run_alg(alg, args.before.resolve(), args.after.resolve(), args.rounds, Path(tmp)))


if __name__ == "__main__":
    main()
