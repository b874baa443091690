"""What a test needs to start a server or worker process: a free port, the
``SESSIONWARD_*`` variables of a :class:`~sessionward.Config` (read back by
``Config.from_env``), and an environment with ``tests/`` on ``PYTHONPATH`` so the child
imports the test helpers by the same names as the tests (``frameworks.apps.serve``)."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Any

from sessionward import Config

TESTS = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_environment(config: Config) -> dict[str, str]:
    """``config`` as ``SESSIONWARD_<OPTION>`` variables (``None`` as the empty string, a
    tuple of strings comma-separated)."""
    env: dict[str, str] = {}
    for field in dataclasses.fields(config):
        value: Any = getattr(config, field.name)
        if isinstance(value, tuple):
            if not all(isinstance(item, str) for item in value):
                continue  # callables cannot travel in the environment
            text = ",".join(value)
        else:
            text = "" if value is None else str(value)
        env["SESSIONWARD_" + field.name.upper()] = text
    return env


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, with ``tests/`` first on ``PYTHONPATH``."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **(extra or {}), "PYTHONPATH": path}
