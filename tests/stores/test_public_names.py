"""The store packages keep every name their single-module predecessors offered."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_NAMES = {
    "sessionward.stores.postgres": [
        "AnyConnection",
        "AsyncPostgresStore",
        "DIALECT",
        "Fetch",
        "Operation",
        "PostgresSettings",
        "PostgresStore",
        "SCHEMES",
        "parse_postgres_url",
    ],
    "sessionward.stores.redis": [
        "AsyncRedisStore",
        "DEFAULT_MAX_CONNECTIONS",
        "DEFAULT_PREFIX",
        "LAYOUT_VERSION",
        "RedisSettings",
        "RedisStore",
        "parse_redis_url",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names_are_importable_from_the_package(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC_NAMES[module] if not hasattr(imported, name)]
    assert missing == []
    assert set(imported.__all__) == set(PUBLIC_NAMES[module])
