"""What CPython's garbage collector costs a FastAPI worker under wrk, by number of connections.

    .venv/bin/python bench/http_gc.py [--connections 10,50,200] [--duration 4] [--stack standard]

For bare FastAPI and the sessionward app (``bench/http_apps``), on ``/plain`` and
``/protected-direct`` (``await get_session(request)``), at each number of keep-alive
connections: req/s and the collections the worker ran (generation 0, 1 and 2: how many, and
the milliseconds they took), measured by a ``gc.callbacks`` hook in the worker.

Why it matters: uvicorn keeps a connection's last request (its ASGI scope and what the
scope holds) until the next request on that connection arrives. Those objects are alive at
every collection and freed soon after, and each collection starts the count of new objects
from zero: with enough connections, what they hold pushes each cycle's count over the
threshold of the next collection (700 by default), and the worker collects again and again.
Anything an app keeps in ``request.state`` (sessionward keeps its request context and the
session) moves that point; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from http_ab import one_session
from http_servers import free_port, server_command, wait_until_serving

APPS = (("bare FastAPI", "bench_fastapi_bare"), ("sessionward", "bench_fastapi"))
PATHS = ("/plain", "/protected-direct")

# The worker's module: the app, plus a hook counting collections, written to a file at shutdown.
PROBE = """
import gc, json, os, time
from {module} import app

_stats = {{0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}}
_started = [0.0]


def _hook(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        entry = _stats[info["generation"]]
        entry[0] += 1
        entry[1] += time.perf_counter() - _started[0]


def _reset():
    for entry in _stats.values():
        entry[0], entry[1] = 0, 0.0


def _write():
    with open(os.environ["BENCH_GC_OUT"], "w") as out:
        json.dump(_stats, out)


gc.callbacks.append(_hook)
app.router.on_startup.append(_reset)
app.router.on_shutdown.append(_write)
"""


def run_cell(
    module: str, path: str, connections: int, args: argparse.Namespace, env: dict[str, str], cookie: str
):
    """req/s and the collections of one server serving one path at ``connections``."""
    with tempfile.TemporaryDirectory(prefix="sessionward-http-gc-") as tmp:
        Path(tmp, "gc_probe.py").write_text(PROBE.format(module=module))
        out = Path(tmp, "gc.json")
        server_env = {
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [tmp, env.get("PYTHONPATH")])),
            "BENCH_GC_OUT": str(out),
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            server_command("fastapi", port, "gc_probe:app", args.stack),
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_serving(server, base, cookie, f"fastapi ({module})")
            command = ["wrk", "-t2", f"-c{connections}", f"-d{args.duration}s", "-H", f"Cookie: {cookie}"]
            if Path("/usr/bin/taskset").exists():
                command = ["taskset", "-c", "0", *command]
            output = subprocess.run(
                [*command, base + path], capture_output=True, text=True, check=True
            ).stdout
        finally:
            server.terminate()
            server.wait(timeout=10)
        found = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if found is None:
            raise RuntimeError(f"wrk output not understood:\n{output}")
        for _ in range(50):
            if out.exists():
                break
            time.sleep(0.1)
        stats = json.loads(out.read_text())
        return float(found.group(1)), {int(g): (n, ms * 1e3) for g, (n, ms) in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="10,50,200")
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--stack", choices=("auto", "asyncio", "standard"), default="standard")
    args = parser.parse_args()
    counts = [int(text) for text in args.connections.split(",") if text]
    env, cookie = one_session(Path(tempfile.mkdtemp(prefix="sessionward-http-gc-")))
    print("# Garbage collections of a FastAPI worker under wrk\n")
    print(
        f"- one uvicorn worker on CPU 1 (stack: {args.stack}), wrk -t2 -d{args.duration}s on CPU 0; "
        f"Python {sys.version.split()[0]}; collections counted by a gc.callbacks hook from start-up "
        f"to shutdown (includes the few requests that check the server is up)\n"
    )
    print(
        "| app | path | connections | req/s | gen 0 collections (ms) | gen 1 (ms) | gen 2 (ms) "
        "| GC ms per s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in PATHS:
        for connections in counts:
            for label, module in APPS:
                rps, stats = run_cell(module, path, connections, args, env, cookie)
                total_ms = sum(ms for _, ms in stats.values())
                cells = " | ".join(f"{stats[g][0]:,} ({stats[g][1]:.0f})" for g in (0, 1, 2))
                per_second = total_ms / args.duration
                row = f"| {label} | {path} | {connections} | {rps:,.0f} | {cells} | {per_second:.1f} |"
                print(row, flush=True)


if __name__ == "__main__":
    main()
