"""Fixtures of the reliability suite: an isolated store URL per backend (see
``tests/support/backends.py`` for isolation and skipping)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.backends import BACKENDS, isolated_store_url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    with isolated_store_url(backend, tmp_path) as url:
        yield url
