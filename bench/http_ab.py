"""Focused wrk A/B of the cached path: /plain against /protected (and, for FastAPI, the
same endpoint with ``get_session`` in its body and one with a no-op ``Depends``).

    .venv/bin/python bench/http_ab.py [--rounds 11] [--duration 2] [--frameworks fastapi,flask,django]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--duration", type=int, default=2)
    parser.add_argument("--frameworks", default="fastapi,flask,django")
    args = parser.parse_args()
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = sorted(set(frameworks) - set(PATHS))
    if unknown:
        parser.error(f"--frameworks: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    env, cookie = one_session(Path(tempfile.mkdtemp(prefix="sessionward-http-ab-")))
    load_before = os.getloadavg()[0]
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
