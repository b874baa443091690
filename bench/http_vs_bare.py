"""wrk A/B of each sessionward benchmark app against the same framework's bare app (no
sessionward installed), endpoint by endpoint, in one interleaved run.

    .venv/bin/python bench/http_vs_bare.py [--rounds 11] [--duration 2] [--frameworks fastapi,flask,django]
        [--stack auto|asyncio|standard]

Both servers run side by side, one worker each, pinned to CPU 1; ``wrk -t2 -c50`` pinned to
CPU 0 drives one of them at a time. Every round runs every endpoint once on each server (the
server order alternates between rounds), so slow drifts of a shared machine hit both alike.
Each round gives the ratio sessionward req/s / bare req/s of the same endpoint; the figure is
the median of the per-round ratios, with their range. On the bare app ``/protected`` answers
without verifying anything: its ratio is the whole price of the session check. ``--stack``
picks uvicorn's loop and HTTP parser (``asyncio``: asyncio + h11; ``standard``: uvloop +
httptools, as ``uvicorn[standard]`` installs; ``auto``: standard if installed).
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
from http_servers import free_port, run_wrk, server_command, server_cpu_seconds, wait_until_serving

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
    framework: str, env: dict[str, str], cookie: str, rounds: int, duration: int, stack: str
) -> list[str]:
    """Markdown rows for ``framework``."""
    paths = PATHS[framework]
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    rps: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        for kind, app in zip(("bare", "sessionward"), APPS[framework], strict=True):
            port = free_port()
            process = subprocess.Popen(
                server_command(framework, port, app, stack),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers[kind] = (process, f"http://127.0.0.1:{port}")
            wait_until_serving(process, servers[kind][1], cookie, f"{framework} ({kind})")
        for _process, base in servers.values():  # warm-up
            for path in paths:
                run_wrk(base + path, 1, cookie, None, env)
        for round_number in range(rounds):
            order = ("bare", "sessionward") if round_number % 2 == 0 else ("sessionward", "bare")
            for path in paths:
                for kind in order:
                    process, base = servers[kind]
                    before = server_cpu_seconds(process.pid)
                    requests_per_s, count = run_wrk(base + path, duration, cookie, None, env)
                    after = server_cpu_seconds(process.pid)
                    rps.setdefault((kind, path), []).append(requests_per_s)
                    if before is not None and after is not None and count:
                        cpu.setdefault((kind, path), []).append((after - before) / count * 1e6)
            print(f"  {framework}: round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for process, _base in servers.values():
            process.terminate()
            process.wait(timeout=10)
    rows = []
    for path in paths:
        bare, ours = rps[("bare", path)], rps[("sessionward", path)]
        ratios = [mine / theirs for mine, theirs in zip(ours, bare, strict=True)]
        cpu_text = " | ".join(
            f"{statistics.median(cpu[(kind, path)]):.1f}" if cpu.get((kind, path)) else "n/a"
            for kind in ("bare", "sessionward")
        )
        rows.append(
            f"| {framework} | {LABELS[path]} | {statistics.median(bare):,.0f} | "
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
    args = parser.parse_args()
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = sorted(set(frameworks) - set(PATHS))
    if unknown:
        parser.error(f"--frameworks: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    env, cookie = one_session(Path(tempfile.mkdtemp(prefix="sessionward-http-bare-")))
    load_before = os.getloadavg()[0]
    rows = [
        row
        for framework in frameworks
        for row in measure(framework, env, cookie, args.rounds, args.duration, args.stack)
    ]
    print("# sessionward vs the bare framework (wrk, 127.0.0.1)\n")
    print(
        f"- both servers one worker on CPU 1, wrk -t2 -c50 -d{args.duration}s on CPU 0, {args.rounds} "
        f"rounds alternating servers and endpoints; uvicorn stack: {args.stack}; every request sends "
        f"the session's Cookie; load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end\n"
    )
    print(
        "| framework | endpoint | bare req/s | sessionward req/s | ratio (median of rounds) | range | "
        "server CPU µs/req bare | sessionward |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
