#!/usr/bin/env python3
"""Project commands that bootstrap their own virtualenv on first use.

    python3 dev.py demo [DEMO ARGS...]     run the demo web app (sessionward demo --help)
    python3 dev.py test [PYTEST ARGS...]   lint and format check (ruff), type-check (mypy --strict) and test

`demo` installs sessionward[demo] (Starlette and uvicorn only) into .venv-demo; `test`
installs sessionward[dev] (every framework, driver and tool) into .venv. Each virtualenv is
(re)installed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STAMP_NAME = ".sessionward-install-stamp"
LINTED = ("src", "tests", "bench", "examples", "dev.py")


def say(message: str) -> None:
    print(f"[dev.py] {message}", flush=True)


def run(*command: str | Path) -> None:
    result = subprocess.run([str(part) for part in command], cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv(name: str, extras: str) -> Path:
    """The Python of virtualenv ROOT/name with sessionward[extras] installed (editable)."""
    if sys.version_info < (3, 11):
        sys.exit("sessionward needs Python 3.11 or newer")
    venv_dir = ROOT / name
    python = venv_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    stamp = venv_dir / STAMP_NAME
    if not python.exists():
        say(f"creating virtualenv in {venv_dir}")
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        say(f"installing sessionward[{extras}] into {name} (first run takes a minute)")
        run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(python, "-m", "pip", "install", "--quiet", "-e", f".[{extras}]")
        stamp.write_text(wanted)
    return python


def test(args: list[str]) -> None:
    python = ensure_venv(".venv", "dev")
    say("ruff check, ruff format --check")
    run(python, "-m", "ruff", "check", *LINTED)
    run(python, "-m", "ruff", "format", "--check", *LINTED)
    say("mypy --strict src tests")
    run(python, "-m", "mypy", "--strict", "src", "tests")
    say("pytest")
    run(python, "-m", "pytest", *args)


def demo(args: list[str]) -> None:
    python = ensure_venv(".venv-demo", "demo")
    command = [str(python), "-m", "sessionward", "demo", *args]
    if os.name == "posix":
        # Become the demo: a signal sent to this process (kill, Ctrl-C) reaches the server.
        sys.stdout.flush()
        os.execv(command[0], command)
    try:
        run(*command)
    except KeyboardInterrupt:  # Ctrl-C reached the demo too; it has stopped
        sys.exit(130)


COMMANDS = {"demo": demo, "test": test}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
