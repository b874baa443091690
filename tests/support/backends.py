"""Isolated store URLs for the conformance and reliability suites, one per backend.

Every test gets a namespace of its own, removed afterwards: a fresh SQLite file under
``tmp_path``, a fresh PostgreSQL schema (selected through ``search_path`` in the URL) or a
fresh Redis key prefix. A test is skipped (or failed, under
``SESSIONWARD_REQUIRE_SERVICES=1``) only when the *service* cannot be reached; a missing
store implementation or driver makes it fail loudly.

The services default to PostgreSQL at ``postgresql://postgres@127.0.0.1:5432/test`` and
Redis at ``redis://127.0.0.1:6379/0``; ``SESSIONWARD_TEST_POSTGRES_URL`` and
``SESSIONWARD_TEST_REDIS_URL`` override them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from support.services import reachable, skip_or_fail

BACKENDS = ("sqlite", "postgres", "redis")
DRIVERS = ("sync", "async")
POSTGRES_URL = os.environ.get("SESSIONWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SESSIONWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added (values percent-encoded)."""
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def unique_name(prefix: str) -> str:
    """``prefix`` and 16 random hex digits: a name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@contextmanager
def postgres_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """A new schema; yields a store URL whose ``search_path`` selects it; drops it after."""
    import psycopg  # a missing driver must fail, not skip

    schema = unique_name("sw_test")
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_query(base_url, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(base_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def redis_prefix(base_url: str = REDIS_URL) -> Iterator[str]:
    """A new key prefix; yields a store URL using it; deletes its keys after."""
    import redis  # a missing driver must fail, not skip

    prefix = unique_name("swtest") + ":"
    try:
        yield with_query(base_url, prefix=prefix)
    finally:
        client = redis.Redis.from_url(base_url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def isolated_store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A store URL of ``backend`` that no other test uses, cleaned up afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / unique_name('store')}.db"
        return
    base = POSTGRES_URL if backend == "postgres" else REDIS_URL
    if not reachable(base):
        skip_or_fail(f"{backend} is not reachable at {base}")
    opener = postgres_schema if backend == "postgres" else redis_prefix
    with opener(base) as url:
        yield url
