"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sessionward import Config, SessionWard

REQUIRE_SERVICES = os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (SESSIONWARD_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


@pytest.fixture
def config() -> Config:
    return Config(store="sqlite:///:memory:")


@pytest.fixture
def engine(config: Config) -> Iterator[SessionWard]:
    with SessionWard(config) as ward:
        yield ward
