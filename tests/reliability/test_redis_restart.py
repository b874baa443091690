"""Fault injection on Redis: the server is stopped (SIGTERM) for two seconds and started again
on the same port, several times, under continuous load from a sync and an async engine.

Run on a private ``redis-server`` (``tests/support/redis_server.py``), once with an append-only file
fsynced on every write and once without any persistence. Asserted (``fault_load.py``): never a
theft verdict; nothing but ``StorageUnavailableError`` while Redis is away; with persistence
not one session lost, without it every session gone (``UnauthorizedError``) and new logins
working; every client served again within two seconds of Redis accepting connections.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability.fault_load import check_and_report, run_with_faults
from support.redis_server import RedisServer, private_redis_server

RESTARTS = 3
DOWNTIME = 2.0


def _restart(server: RedisServer) -> tuple[float, float]:
    """Stop Redis for :data:`DOWNTIME` seconds; recovery counts from its accepting again."""
    server.stop()
    time.sleep(DOWNTIME)
    accepting = server.start()
    return accepting, accepting


@pytest.mark.parametrize("persistent", [True, False], ids=["aof-fsync-always", "no-persistence"])
def test_redis_restarts_under_load(persistent: bool, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with private_redis_server(tmp_path, persistent=persistent) as server:
        run = run_with_faults(server.url, lambda: _restart(server), RESTARTS)
    label = f"redis restart ({'AOF, fsync always' if persistent else 'no persistence'})"
    report = check_and_report(run, label, data_may_vanish=not persistent)
    assert all(numbers["storage_unavailable_503"] > 0 for numbers in report.values()), "Redis never went away"
