"""wrk A/B of each sessionward benchmark app against the same framework's bare app (no
sessionward installed), endpoint by endpoint, in one interleaved run.

    .venv/bin/python bench/http_vs_bare.py [--rounds 11] [--duration 2] [--frameworks fastapi,flask,django]
        [--stack auto|asyncio|standard] [--before DIR]

Both servers run side by side, one worker each, pinned to CPU 1; ``wrk -t2 -c50`` pinned to
CPU 0 drives one of them at a time. Every round runs every endpoint once on each server (the
server order alternates between rounds), so slow drifts of a shared machine hit both alike.
Each round gives the ratio sessionward req/s / bare req/s of the same endpoint; the figure is
the median of the per-round ratios, with their range. On the bare app ``/protected`` answers
without verifying anything: its ratio is the whole price of the session check. ``--stack``
picks uvicorn's loop and HTTP parser (``asyncio``: asyncio + h11; ``standard``: uvloop +
httptools, as ``uvicorn[standard]`` installs; ``auto``: standard if installed).
``--before DIR`` adds a third server: the same sessionward app importing the package from
``DIR`` (a checkout's ``src``, e.g. ``git archive <commit> src | tar -x -C /tmp/old``), for
before/after ratios measured in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from http_ab import one_session
from http_servers import (
    before_source,
    free_port,
    run_wrk,
    server_command,
    server_cpu_seconds,
    wait_until_serving,
)

PATHS = {
    "fastapi": ("/plain", "/protected", "/protected-direct", "/noop-depends"),
    "flask": ("/plain", "/protected"),
    "django": ("/plain", "/protected"),
}
APPS = {
    "fastapi": ("bench_fastapi_bare:app", "bench_fastapi:app"),
    "flask": ("bench_flask_bare:app", "bench_flask:app"),
    "django": ("bench_django_bare:application", "bench_django:application"),
}
LABELS = {
    "/plain": "unprotected route (/plain)",
    "/protected": "protected: verify_session (bare: no check)",
    "/protected-direct": "protected: await get_session(request) (bare: no check)",
    "/noop-depends": "reference: a no-op Depends (same code in both)",
}


def measure(
    framework: str,
    env: dict[str, str],
    cookie: str,
    args: argparse.Namespace,
) -> list[str]:
    """Markdown rows for ``framework``."""
    paths = PATHS[framework]
    bare_app, app = APPS[framework]
    kinds = [("bare", bare_app, env), ("sessionward", app, env)]
    if args.before:
        search_path = os.pathsep.join(filter(None, [args.before, env.get("PYTHONPATH")]))
        before_env = {**env, "PYTHONPATH": search_path}
        kinds.insert(1, ("sessionward (before)", app, before_env))
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    rps: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        for kind, module, server_env in kinds:
            port = free_port()
            process = subprocess.Popen(
                server_command(framework, port, module, args.stack),
                env=server_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers[kind] = (process, f"http://127.0.0.1:{port}")
            wait_until_serving(process, servers[kind][1], cookie, f"{framework} ({kind})")
        for _process, base in servers.values():  # warm-up
            for path in paths:
                run_wrk(base + path, 1, cookie, None, env)
        names = list(servers)
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            order = names[shift:] + names[:shift]  # every server goes first in turn
            for path in paths:
                for kind in order:
                    process, base = servers[kind]
                    before = server_cpu_seconds(process.pid)
                    requests_per_s, count = run_wrk(base + path, args.duration, cookie, None, env)
                    after = server_cpu_seconds(process.pid)
                    rps.setdefault((kind, path), []).append(requests_per_s)
                    if before is not None and after is not None and count:
                        cpu.setdefault((kind, path), []).append((after - before) / count * 1e6)
            print(f"  {framework}: round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for process, _base in servers.values():
            process.terminate()
            process.wait(timeout=10)
    rows = []
    for path in paths:
        for kind in list(servers)[1:]:
            bare, ours = rps[("bare", path)], rps[(kind, path)]
            ratios = [mine / theirs for mine, theirs in zip(ours, bare, strict=True)]
            bare_cpu, our_cpu = cpu.get(("bare", path), []), cpu.get((kind, path), [])
            if len(bare_cpu) == len(our_cpu) == len(ratios):
                cpu_ratios = [theirs / mine for mine, theirs in zip(our_cpu, bare_cpu, strict=True)]
                cpu_text = (
                    f"{statistics.median(bare_cpu):.1f} | {statistics.median(our_cpu):.1f} | "
                    f"{statistics.median(cpu_ratios):.2f}x"
                )
            else:
                cpu_text = "n/a | n/a | n/a"
            rows.append(
                f"| {framework} | {LABELS[path]} | {kind} | {statistics.median(bare):,.0f} | "
                f"{statistics.median(ours):,.0f} | {statistics.median(ratios):.2f}x | "
                f"{min(ratios):.2f}-{max(ratios):.2f} | {cpu_text} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--duration", type=int, default=2)
    parser.add_argument("--frameworks", default="fastapi,flask,django")
    parser.add_argument("--stack", choices=("auto", "asyncio", "standard"), default="auto")
    parser.add_argument(
        "--before", help="another version: a directory holding its sessionward package, or a git commit"
    )
    args = parser.parse_args()
    if args.before:
        args.before = before_source(args.before)
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = sorted(set(frameworks) - set(PATHS))
    if unknown:
        parser.error(f"--frameworks: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    env, cookie = one_session(Path(tempfile.mkdtemp(prefix="sessionward-http-bare-")))
    load_before = os.getloadavg()[0]
    rows = [row for framework in frameworks for row in measure(framework, env, cookie, args)]
    print("# sessionward vs the bare framework (wrk, 127.0.0.1)\n")
    print(
        f"- every server one worker on CPU 1, wrk -t2 -c50 -d{args.duration}s on CPU 0, {args.rounds} "
        f"rounds alternating servers and endpoints; uvicorn stack: {args.stack}; every request sends "
        f"the session's Cookie; load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end\n"
    )
    print(
        "| framework | endpoint | server | bare req/s | req/s | req/s ratio to bare (median of rounds) | "
        "range | server CPU µs/req bare | server CPU µs/req | CPU ratio (bare CPU / CPU, median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
