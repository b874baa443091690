"""Fixtures of the store conformance suite: every backend, with the sync and the async driver.

``subject`` is the store under test behind one calling convention (plain calls; the async
driver's coroutines run on a per-test event loop), ``make_ward`` builds engines on the same
store URL. Isolation and skipping rules: see ``tests/support/backends.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.backends import BACKENDS, DRIVERS, isolated_store_url
from support.drivers import Subject, Ward

from sessionward import Config


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    with isolated_store_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def runner(driver: str) -> Iterator[asyncio.Runner | None]:
    if driver == "sync":
        yield None
        return
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture
def subject(store_url: str, runner: asyncio.Runner | None) -> Iterator[Subject]:
    opened = Subject(store_url, runner)
    try:
        opened.migrate()
        yield opened
    finally:
        opened.close()


@pytest.fixture
def make_ward(store_url: str, runner: asyncio.Runner | None) -> Iterator[Callable[..., Ward]]:
    """``make_ward(clock=..., **config_options)``: an engine on the test's store URL
    (HS256, short validities unless overridden); all are closed after the test."""
    made: list[Ward] = []

    def make(clock: Any = None, **options: Any) -> Ward:
        settings: dict[str, Any] = {
            "access_token_algorithm": "HS256",
            "access_token_validity": 60,
            "refresh_token_validity": 300,
            "refresh_token_reuse_grace_period": 10,
            "cookie_secure": False,
        }
        settings.update(options)
        ward = Ward(Config(store=store_url, **settings), store_url, runner, clock or time.time)
        made.append(ward)
        return ward

    yield make
    for ward in reversed(made):
        ward.close()
