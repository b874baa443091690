#!/usr/bin/env python3
"""Project commands that bootstrap their own virtualenv (.venv) on first use.

    python3 dev.py demo [DEMO ARGS...]     run the demo web app (sessionward demo --help)
    python3 dev.py test [PYTEST ARGS...]   lint (ruff), type-check (mypy --strict) and test

The virtualenv is (re)installed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".sessionward-install-stamp"
EXTRAS = "dev"


def say(message: str) -> None:
    print(f"[dev.py] {message}", flush=True)


def run(*command: str | Path) -> None:
    result = subprocess.run([str(part) for part in command], cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("sessionward needs Python 3.11 or newer")
    if not PYTHON.exists():
        say(f"creating virtualenv in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + EXTRAS.encode()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        say(f"installing sessionward[{EXTRAS}] into the virtualenv (first run takes a minute)")
        run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(PYTHON, "-m", "pip", "install", "--quiet", "-e", f".[{EXTRAS}]")
        STAMP.write_text(wanted)


def test(args: list[str]) -> None:
    ensure_venv()
    say("ruff")
    run(PYTHON, "-m", "ruff", "check", "src", "tests", "bench", "examples")
    say("mypy --strict src")
    run(PYTHON, "-m", "mypy", "--strict", "src")
    say("pytest")
    run(PYTHON, "-m", "pytest", *args)


def demo(args: list[str]) -> None:
    ensure_venv()
    try:
        run(PYTHON, "-m", "sessionward", "demo", *args)
    except KeyboardInterrupt:  # Ctrl-C reached the demo too; it has stopped
        sys.exit(130)


COMMANDS = {"demo": demo, "test": test}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
