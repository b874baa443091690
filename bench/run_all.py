"""Reproduce every number of docs/benchmarks.md: ``.venv/bin/python bench/run_all.py``.

Runs, one after the other with the same interpreter (never in parallel: the machine has 2
cores), ``verify.py``, ``engine.py``, ``stores.py`` (needs PostgreSQL and Redis),
``http_servers.py``, ``http_ab.py``, ``http_ab.py --feed`` (step ``http_ab_feed``) and
``http_vs_bare.py`` (need ``wrk``; on uvicorn's asyncio stack for every framework, then on
uvloop + httptools for FastAPI, step ``http_vs_bare_standard``), ``http_profile.py``
(needs ``wrk`` and ``py-spy``; the last two add the package of commit 14c8562, before the
FastAPI request-path work, as a third server), ``http_gc.py`` (the garbage collector's
share of a FastAPI worker by number of connections; needs ``wrk``), ``http_inprocess.py``
and ``peers.py`` (needs ``wrk`` and the ``[bench]`` extra; writes docs/benchmarks-peers.svg)
and ``revocation_drill.py`` (needs PostgreSQL and Redis), and prints their reports.
``--only verify,engine`` selects scripts; ``--rounds N`` is passed to each that has rounds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "verify",
    "engine",
    "stores",
    "http_servers",
    "http_ab",
    "http_ab_feed",
    "http_vs_bare",
    "http_vs_bare_standard",
    "http_profile",
    "http_gc",
    "http_inprocess",
    "peers",
    "revocation_drill",
)
WITHOUT_ROUNDS = frozenset({"http_profile", "http_gc", "revocation_drill"})
# Steps that run a script with arguments: step -> (script, arguments).
# The "before" of the FastAPI tables: the package as it was before the FastAPI request-path work.
FASTAPI_BEFORE = "14c8562"
VARIANTS = {
    "http_ab_feed": ("http_ab", ["--feed"]),
    "http_vs_bare": ("http_vs_bare", ["--stack", "asyncio", "--before", FASTAPI_BEFORE]),
    "http_vs_bare_standard": (
        "http_vs_bare",
        ["--frameworks", "fastapi", "--stack", "standard", "--before", FASTAPI_BEFORE],
    ),
    "http_profile": ("http_profile", ["--stack", "asyncio", "--before", FASTAPI_BEFORE]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SCRIPTS), help=f"comma-separated subset of {SCRIPTS}")
    parser.add_argument("--rounds", type=int, help="rounds for every script (each has its own default)")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    unknown = sorted(set(chosen) - set(SCRIPTS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")
    for name in chosen:
        script, extra = VARIANTS.get(name, (name, []))
        command = [sys.executable, "-W", "error", str(HERE / f"{script}.py"), *extra]
        if args.rounds is not None and name not in WITHOUT_ROUNDS:
            command += ["--rounds", str(args.rounds)]
        print(f"[run_all] {script}.py {' '.join(extra)}".rstrip(), file=sys.stderr, flush=True)
        result = subprocess.run(command, check=False)
        if result.returncode:
            return result.returncode
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
