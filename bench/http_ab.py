"""Focused wrk A/B of the cached path: /plain against /protected (and, for FastAPI, the
same endpoint with ``get_session`` in its body and one with a no-op ``Depends``).

    .venv/bin/python bench/http_ab.py [--rounds 11] [--duration 2] [--frameworks fastapi,flask,django]
    .venv/bin/python bench/http_ab.py --feed [...]

``--feed``: the change feed's cost instead. Two servers per framework, the same app and
store (SQLite), one with ``SESSIONWARD_CHANGE_FEED=true`` (the default) and one with
``false``; each round hits /plain and /protected of both; the figure is the median of the
per-round ratios of requests/s, feed on / feed off (lower than 1: the feed costs).

Same servers and pinning as ``http_servers.py`` (one worker on CPU 1, ``wrk -t2 -c50`` on
CPU 0) but only the one-token endpoints, in short runs alternating every round, so that
slow drifts of a shared machine hit all endpoints alike. Each round gives a ratio
endpoint / plain; the figure is the median of the per-round ratios, with their range.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from http_servers import free_port, run_wrk, server_command, server_cpu_seconds, wait_until_serving

from sessionward import Config, SessionWard

PATHS = {
    "fastapi": ("/plain", "/protected", "/protected-direct", "/noop-depends"),
    "flask": ("/plain", "/protected"),
    "django": ("/plain", "/protected"),
}
LABELS = {
    "/plain": "plain (cookie sent)",
    "/protected": "protected (verify_session)",
    "/protected-direct": "protected (get_session in the endpoint)",
    "/noop-depends": "reference: no-op Depends(request)",
}


def one_session(work: Path) -> tuple[dict[str, str], str]:
    """The servers' environment and the Cookie header of one fresh session."""
    config = Config(store=f"sqlite:///{work}/sessions.db", cookie_secure=False)
    with SessionWard(config) as engine:
        tokens = engine.create_new_session("user-0", {"role": "member", "n": 0})
        key = engine._core.keys.state.signing_key  # type: ignore[union-attr]  # internal: the floor's key
        public_pem = key.public_key.public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    env = {
        **os.environ,
        "SESSIONWARD_STORE": config.store,
        "SESSIONWARD_COOKIE_SECURE": "false",
        "BENCH_FLOOR_PUBLIC_KEY": public_pem,
    }
    cookie = f"sAccessToken={tokens.access_token.value}; sIdRefreshToken={tokens.id_refresh_token.value}"
    return env, cookie


def measure(framework: str, env: dict[str, str], cookie: str, rounds: int, duration: int) -> list[str]:
    """Markdown rows for ``framework``."""
    paths = PATHS[framework]
    port = free_port()
    server = subprocess.Popen(
        server_command(framework, port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    rps: dict[str, list[float]] = {path: [] for path in paths}
    cpu: dict[str, list[float]] = {path: [] for path in paths}
    try:
        wait_until_serving(server, base, cookie, framework)
        for path in paths:  # warm-up
            run_wrk(base + path, 1, cookie, None, env)
        for round_number in range(rounds):
            for path in paths:
                before = server_cpu_seconds(server.pid)
                requests_per_s, count = run_wrk(base + path, duration, cookie, None, env)
                after = server_cpu_seconds(server.pid)
                rps[path].append(requests_per_s)
                if before is not None and after is not None and count:
                    cpu[path].append((after - before) / count * 1e6)
            print(f"  {framework}: round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    rows = []
    for path in paths:
        ratios = [value / plain for value, plain in zip(rps[path], rps["/plain"], strict=True)]
        cpu_text = f"{statistics.median(cpu[path]):.1f}" if cpu[path] else "n/a"
        rows.append(
            f"| {framework} | {LABELS[path]} | {statistics.median(rps[path]):,.0f} | "
            f"{statistics.median(ratios):.2f}x | {min(ratios):.2f}-{max(ratios):.2f} | {cpu_text} |"
        )
    return rows


def measure_feed(framework: str, env: dict[str, str], cookie: str, rounds: int, duration: int) -> list[str]:
    """Markdown rows for ``framework``: feed on against feed off."""
    modes = ("true", "false")
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    rps: dict[tuple[str, str], list[float]] = {(m, p): [] for m in modes for p in ("/plain", "/protected")}
    try:
        for mode in modes:
            port = free_port()
            server = subprocess.Popen(
                server_command(framework, port),
                env={**env, "SESSIONWARD_CHANGE_FEED": mode},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers[mode] = (server, f"http://127.0.0.1:{port}")
            wait_until_serving(server, servers[mode][1], cookie, framework)
            for path in ("/plain", "/protected"):  # warm-up; the feed is live after it
                run_wrk(servers[mode][1] + path, 1, cookie, None, env)
        for round_number in range(rounds):
            for path in ("/plain", "/protected"):
                for mode in modes if round_number % 2 == 0 else reversed(modes):
                    rps[mode, path].append(run_wrk(servers[mode][1] + path, duration, cookie, None, env)[0])
            print(f"  {framework} feed: round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=10)
    rows = []
    for path in ("/plain", "/protected"):
        on, off = rps["true", path], rps["false", path]
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        rows.append(
            f"| {framework} | {LABELS[path]} | {statistics.median(on):,.0f} | "
            f"{statistics.median(off):,.0f} | "
            f"{statistics.median(ratios):.3f}x | {min(ratios):.2f}-{max(ratios):.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--duration", type=int, default=2)
    parser.add_argument("--frameworks", default="fastapi,flask,django")
    parser.add_argument("--feed", action="store_true", help="change feed on against off (see above)")
    args = parser.parse_args()
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = sorted(set(frameworks) - set(PATHS))
    if unknown:
        parser.error(f"--frameworks: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    env, cookie = one_session(Path(tempfile.mkdtemp(prefix="sessionward-http-ab-")))
    load_before = os.getloadavg()[0]
    if args.feed:
        rows = [
            row
            for framework in frameworks
            for row in measure_feed(framework, env, cookie, args.rounds, args.duration)
        ]
        print("# sessionward HTTP A/B: the change feed on against off (wrk, 127.0.0.1, SQLite store)\n")
        print(
            f"- two servers per framework, one worker each (CPU 1), wrk -t2 -c50 -d{args.duration}s "
            f"(CPU 0), {args.rounds} rounds alternating servers and endpoints; load average "
            f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end\n"
        )
        print("| framework | endpoint | req/s feed on | req/s feed off | on/off (median of rounds) | range |")
        print("|---|---|---|---|---|---|")
        print("\n".join(rows))
        return
    rows = [
        row for framework in frameworks for row in measure(framework, env, cookie, args.rounds, args.duration)
    ]
    print("# sessionward HTTP A/B, cached path (wrk, 127.0.0.1)\n")
    print(
        f"- one server worker (CPU 1), wrk -t2 -c50 -d{args.duration}s (CPU 0), {args.rounds} rounds "
        f"alternating the endpoints; every request sends the session's Cookie; load average "
        f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end\n"
    )
    print(
        "| framework | endpoint | req/s (median) | ratio to plain (median of rounds) | range | "
        "server CPU µs/req |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
