"""Fixtures of the engine tests that run on every store with both drivers.

``make_engine(**config_options)`` builds an engine (sync, or async behind plain calls) on
the test's own store namespace, with a fake clock starting at the current second
(``fake_clock`` fixture; Redis keys expire in real time, so the clock only moves forward).
``recorded(**config_options)`` does the same on a store object of its own wrapped in a
:class:`~support.stores.RecordingStore` (``wrapper=``: a subclass of it), and returns the
engine and that store, which counts the calls made through it.
Isolation and skipping rules: see ``tests/support/backends.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.backends import BACKENDS, DRIVERS, isolated_store_url
from support.clock import FakeClock
from support.engines import Driven
from support.stores import RecordingStore

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.stores.urls import open_async_store, open_store

BASE_OPTIONS: dict[str, Any] = {
    "access_token_algorithm": "HS256",
    "access_token_validity": 60,
    "refresh_token_validity": 300,
    "non_persistent_refresh_token_validity": 120,
    "refresh_token_reuse_grace_period": 10,
    "cookie_secure": False,
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
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
def fake_clock() -> FakeClock:
    return FakeClock.from_wall_clock()


@pytest.fixture
def make_engine(
    store_url: str, runner: asyncio.Runner | None, fake_clock: FakeClock
) -> Iterator[Callable[..., Driven]]:
    made: list[Driven] = []

    def make(**options: Any) -> Driven:
        config = Config(store=store_url, **{**BASE_OPTIONS, **options})
        engine: SessionWard | AsyncSessionWard
        if runner is None:
            engine = SessionWard(config, store=store_url, clock=fake_clock)
        else:
            engine = AsyncSessionWard(config, store=store_url, clock=fake_clock)
        driven = Driven(engine, runner)
        made.append(driven)
        return driven

    yield make
    for driven in reversed(made):
        driven.close()


@pytest.fixture
def recorded(
    store_url: str, runner: asyncio.Runner | None, fake_clock: FakeClock
) -> Iterator[Callable[..., tuple[Driven, RecordingStore]]]:
    made: list[tuple[Driven, RecordingStore]] = []

    def make(wrapper: type[RecordingStore] = RecordingStore, **options: Any) -> tuple[Driven, RecordingStore]:
        config = Config(store=store_url, **{**BASE_OPTIONS, **options})
        engine: SessionWard | AsyncSessionWard
        if runner is None:
            store = wrapper(open_store(store_url))
            engine = SessionWard(config, store=store, clock=fake_clock)
        else:
            store = wrapper(open_async_store(store_url))
            engine = AsyncSessionWard(config, store=store, clock=fake_clock)
        driven = Driven(engine, runner)
        made.append((driven, store))
        return driven, store

    yield make
    for driven, store in reversed(made):
        driven.close()
        closing = store.inner.close()
        if runner is not None:
            runner.run(closing)
