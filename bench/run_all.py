"""Reproduce every number of docs/benchmarks.md: ``.venv/bin/python bench/run_all.py``.

Runs ``bench/verify.py`` and then ``bench/engine.py`` with the same interpreter (one after
the other, never in parallel: the machine has 2 cores) and prints both reports. Extra
arguments (e.g. ``--rounds 15``) are passed to both scripts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    for script in ("verify.py", "engine.py"):
        command = [sys.executable, "-W", "error", str(HERE / script), *sys.argv[1:]]
        result = subprocess.run(command, check=False)
        if result.returncode:
            return result.returncode
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
