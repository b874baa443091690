"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionward import Config, SessionWard


@pytest.fixture
def config() -> Config:
    return Config(store="sqlite:///:memory:")


@pytest.fixture
def engine(config: Config) -> Iterator[SessionWard]:
    with SessionWard(config) as ward:
        yield ward
