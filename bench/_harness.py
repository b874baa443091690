"""Shared pieces of the benchmark scripts: the interleaved-rounds runner and machine info.

Method: every case is a *batch* function ``batch(n) -> seconds`` that runs
``n`` operations and returns the time they took (so a case can exclude its own untimed
preparation). Each case is calibrated once to about ``target`` seconds per batch; then
every round runs every case once, in the same order, and the figure reported is the median
over the rounds of the per-operation time. Ratios are only compared within one run.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

Batch = Callable[[int], float]


def calibrate(batch: Batch, target: float) -> int:
    """The number of operations that makes ``batch`` take about ``target`` seconds."""
    n = 1
    while True:
        elapsed = batch(n)
        if elapsed >= target / 5 or n >= 1 << 22:
            return max(1, round(n * target / max(elapsed, 1e-9)))
        n *= 4 if elapsed < target / 50 else 2


def run_interleaved(
    cases: Sequence[tuple[str, Batch]],
    rounds: int,
    target: float = 0.1,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Run ``rounds`` interleaved rounds; return each case's per-round µs/op."""
    sizes = {}
    for name, batch in cases:
        batch(max(1, calibrate(batch, target / 4) // 4))  # warm-up
        sizes[name] = calibrate(batch, target)
    results: dict[str, list[float]] = {name: [] for name, _ in cases}
    for index in range(rounds):
        gc.collect()
        for name, batch in cases:
            n = sizes[name]
            results[name].append(batch(n) / n * 1e6)
        if progress:
            print(f"  round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """min-max of the rounds, for the noise column."""
    return f"{min(values):.1f}-{max(values):.1f}"


def timed_loop(func: Callable[[str], object], items: Sequence[str]) -> float:
    """Call ``func`` on every item; return the elapsed seconds."""
    start = time.perf_counter()
    for item in items:
        func(item)
    return time.perf_counter() - start


def cycled(pool: Sequence[str], n: int, offset: int = 0) -> list[str]:
    """``n`` items taken from ``pool`` in order, wrapping around, starting at ``offset``."""
    size = len(pool)
    return [pool[(offset + i) % size] for i in range(n)]


def machine_info() -> list[str]:
    """Lines describing the machine and the versions that the numbers depend on."""
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    lines = []
    cpu = "?"
    lscpu = shutil.which("lscpu")
    if lscpu:
        out = subprocess.run([lscpu], capture_output=True, text=True, check=False).stdout
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in out.splitlines())
        )
        cpu = (
            f"{fields.get('Model name', '?')}, {fields.get('CPU(s)', '?')} CPU(s), "
            f"hypervisor {fields.get('Hypervisor vendor', 'none')}"
        )
    lines.append(f"cpu: {cpu}; load average {os.getloadavg()[0]:.2f}")
    lines.append(f"os: {platform.platform()}")
    lines.append(f"python: {platform.python_implementation()} {platform.python_version()}")
    lines.append(
        f"cryptography: {cryptography.__version__} ({backend.openssl_version_text()}); "
        f"sqlite: {sqlite3.sqlite_version}"
    )
    try:
        import jwt

        lines.append(f"pyjwt: {jwt.__version__}")
    except ImportError:
        lines.append("pyjwt: not installed")
    return lines


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pastes straight into docs/benchmarks.md)."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)
