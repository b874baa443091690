"""Fault injection on PostgreSQL: every backend serving the engines is terminated
(``pg_terminate_backend``, as by an operator or a connection-killing proxy) several times under
continuous load from a sync and an async engine.

The engines' connections carry an ``application_name`` of the test's own (passed through the
store URL to libpq), so only they are terminated. Asserted (``fault_load.py``): never a theft
verdict, not one session lost, nothing but ``StorageUnavailableError`` (for statements in
flight at the termination), every client served again within two seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from reliability.fault_load import check_and_report, run_with_faults
from support.backends import POSTGRES_URL, postgres_schema, unique_name, with_query
from support.services import reachable, skip_or_fail

TERMINATIONS = 4


@pytest.fixture
def application_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if not reachable(POSTGRES_URL):
        skip_or_fail(f"postgres is not reachable at {POSTGRES_URL}")
    application = unique_name("sw_terminate")
    with postgres_schema(POSTGRES_URL) as url:
        yield with_query(url, application_name=application), application


def _terminate(application: str) -> tuple[float, float]:
    """Terminate the application's backends; recovery counts from the termination, which has
    settled once every terminated backend has exited."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        began = time.monotonic()
        # MATERIALIZED: the filter must run before pg_terminate_backend, never after it.
        rows = admin.execute(
            "WITH targets AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = %s) "
            "SELECT pid FROM targets WHERE pg_terminate_backend(pid)",
            (application,),
        ).fetchall()
        assert rows, "no backend of the engines was found"
        pids = [pid for (pid,) in rows]
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone():
            time.sleep(0.002)
    return began, time.monotonic()


def test_postgres_backends_terminated_under_load(application_url: tuple[str, str]) -> None:
    url, application = application_url
    run = run_with_faults(url, lambda: _terminate(application), TERMINATIONS)
    check_and_report(run, "postgres pg_terminate_backend", data_may_vanish=False)
