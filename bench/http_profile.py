"""Where a FastAPI worker's time goes under load: py-spy samples of one uvicorn worker
while wrk drives one endpoint, grouped by the package each sampled frame belongs to.

    .venv/bin/python bench/http_profile.py [--duration 8] [--paths /plain,/protected]
        [--stack asyncio|standard] [--before DIR]

For each server (the bare FastAPI app, optionally the sessionward app importing the package
from ``--before DIR``, and the sessionward app) and each path: the worker (one process,
pinned to CPU 1) is sampled by ``py-spy record --format raw`` while ``wrk -t2 -c50`` (CPU 0)
drives it. Two tables: **self** time (the share of samples whose innermost Python frame is
in that package: where the CPU is spent) and **inclusive** time (the share of samples with
any frame of that package on the stack: what that package's code, and everything it calls,
costs). Needs ``py-spy`` (``pip install py-spy``) and permission to trace the worker (root,
or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from http_ab import one_session
from http_servers import before_source, free_port, server_command, wait_until_serving

# Package of a frame, from its file path: the first of these path parts found.
PACKAGES = (
    "sessionward",
    "fastapi",
    "starlette",
    "uvicorn",
    "h11",
    "httptools",
    "uvloop",
    "anyio",
    "pydantic",
    "asyncio",
    "opentelemetry",
)
OTHER = "other Python"
_FRAME = re.compile(r"\((?P<file>[^():]+)(?::\d+)?\)$")


def package_of(frame: str) -> str:
    """The package a py-spy frame (``function (path:line)``) belongs to."""
    match = _FRAME.search(frame.strip())
    if match is None:
        return OTHER
    parts = Path(match.group("file")).parts
    for package in PACKAGES:
        if package in parts:
            return package
    if match.group("file").startswith("<"):
        return OTHER
    return "benchmark app" if "http_apps" in parts else OTHER


def classify(raw: str) -> tuple[Counter[str], Counter[str], int]:
    """Self and inclusive sample counts per package, and the total, from py-spy raw output
    (one ``frame;frame;...;frame count`` line per distinct stack, outermost frame first)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame and not frame.startswith("process ")]
        if not frames:
            continue
        total += count
        packages = [package_of(frame) for frame in frames]
        own[packages[-1]] += count
        for package in set(packages):
            inclusive[package] += count
    return own, inclusive, total


def py_spy() -> str | None:
    """The py-spy executable: on PATH, or beside this interpreter (a virtualenv's bin)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def profile(pid: int, url: str, cookie: str, seconds: int, env: dict[str, str]) -> str:
    """py-spy's raw samples of ``pid`` while wrk drives ``url`` for ``seconds``."""
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as handle:
        output = Path(handle.name)
    spy = subprocess.Popen(
        [
            py_spy() or "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--duration",
            str(seconds),
            "--nonblocking",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    wrk = [*pin, "wrk", "-t2", "-c50", f"-d{seconds}s", "-H", f"Cookie: {cookie}", url]
    subprocess.run(wrk, capture_output=True, env=env, check=True)
    spy.wait(timeout=seconds + 30)
    try:
        return output.read_text()
    finally:
        output.unlink(missing_ok=True)


def percent_table(title: str, columns: list[str], counts: dict[str, tuple[Counter[str], int]]) -> str:
    packages = sorted(
        {package for counter, _ in counts.values() for package in counter},
        key=lambda package: -max(counter[package] / total for counter, total in counts.values() if total),
    )
    lines = [f"{title}\n", "| package | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for package in packages:
        cells = [
            f"{counter[package] / total * 100:.1f} %" if total else "n/a"
            for counter, total in counts.values()
        ]
        lines.append(f"| {package} | " + " | ".join(cells) + " |")
    totals = [str(total) for _, total in counts.values()]
    lines.append("| samples | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--paths", default="/plain,/protected")
    parser.add_argument("--stack", choices=("auto", "asyncio", "standard"), default="asyncio")
    parser.add_argument(
        "--before", help="another version: a directory holding its sessionward package, or a git commit"
    )
    args = parser.parse_args()
    if args.before:
        args.before = before_source(args.before)
    if py_spy() is None:
        parser.error("py-spy is not installed: pip install py-spy")
    env, cookie = one_session(Path(tempfile.mkdtemp(prefix="sessionward-http-profile-")))
    kinds = [("bare", "bench_fastapi_bare:app", env)]
    if args.before:
        search_path = os.pathsep.join(filter(None, [args.before, env.get("PYTHONPATH")]))
        kinds.append(("before", "bench_fastapi:app", {**env, "PYTHONPATH": search_path}))
    kinds.append(("sessionward", "bench_fastapi:app", env))
    paths = [path for path in args.paths.split(",") if path]
    results: dict[str, tuple[Counter[str], Counter[str], int]] = {}
    for kind, module, server_env in kinds:
        port = free_port()
        server = subprocess.Popen(
            server_command("fastapi", port, module, args.stack),
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(server, base, cookie, f"fastapi ({kind})")
            for path in paths:
                print(f"  profiling {kind} {path} ...", file=sys.stderr, flush=True)
                results[f"{kind} {path}"] = classify(
                    profile(server.pid, base + path, cookie, args.duration, env)
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    columns = list(results)
    print(f"# Where a uvicorn worker's time goes (py-spy, {args.duration} s per cell, stack {args.stack})\n")
    print(
        percent_table(
            "Self time: share of samples whose innermost frame is in the package",
            columns,
            {name: (own, total) for name, (own, _, total) in results.items()},
        )
    )
    print()
    print(
        percent_table(
            "Inclusive time: share of samples with a frame of the package on the stack",
            columns,
            {name: (inclusive, total) for name, (_, inclusive, total) in results.items()},
        )
    )


if __name__ == "__main__":
    main()
