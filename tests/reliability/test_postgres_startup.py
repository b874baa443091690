"""PostgreSQL at the engine's start-up: a store URL the server refuses is a ``ConfigError``
at once; a server that is down is ``StorageUnavailableError``, and the same engine starts
as soon as the server is back.

Against the real server: a database and a role that do not exist, a closed port, a proxy
cut and restored, a listener that never answers. The server here trusts every local user,
so a wrong password cannot be provoked; its message is classified as libpq words it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from reliability.tcp_proxy import CuttableProxy
from support.backends import POSTGRES_URL, postgres_schema
from support.services import reachable, skip_or_fail

from sessionward import AsyncSessionWard, Config, SessionTokens, SessionWard
from sessionward.errors import ConfigError, StorageUnavailableError
from sessionward.stores.postgres import PostgresStore, parse_postgres_url
from sessionward.stores.postgres.startup import startup_error

PROMPT = 2.0  # seconds; the pool_timeout these errors used to wait for is 5


@pytest.fixture(autouse=True)
def server(request: pytest.FixtureRequest) -> None:
    if not reachable(POSTGRES_URL):
        skip_or_fail(f"postgres is not reachable at {POSTGRES_URL}")


def on(port: int | None = None, user: str | None = None, database: str | None = None) -> str:
    """``POSTGRES_URL`` with another port, user (password ``hunter2``) or database."""
    parts = urlsplit(POSTGRES_URL)
    netloc = f"{user or parts.username or 'postgres'}:hunter2@{parts.hostname}:{port or parts.port or 5432}"
    return parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path).geturl()


def start(url: str, driver: str) -> None:
    """Start an engine on ``url`` and create a session (the first request)."""
    if driver == "sync":
        with SessionWard(Config(store=url)) as ward:
            ward.create_new_session("alice")
        return

    async def main() -> None:
        async with AsyncSessionWard(Config(store=url)) as ward:
            await ward.create_new_session("alice")

    asyncio.run(main())


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize(
    ("url", "named"),
    [
        (on(database="sw_no_such_database"), 'database "sw_no_such_database" does not exist'),
        (on(user="sw_no_such_role"), 'role "sw_no_such_role" does not exist'),
    ],
)
def test_a_refused_configuration_is_a_config_error_at_once(url: str, named: str, driver: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        start(url, driver)
    assert time.monotonic() - started < PROMPT
    message = str(caught.value)
    assert named in message
    assert parse_postgres_url(url).redacted_url in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("said", "config"),
    [
        ('FATAL:  password authentication failed for user "app"', True),
        ('FATAL:  database "sessions" does not exist', True),
        ('FATAL:  role "app" does not exist', True),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.7", user "app", database "s", no encryption', True),
        ("fe_sendauth: no password supplied", True),
        ("Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?", False),
        ("FATAL:  the database system is starting up", False),
        ("FATAL:  sorry, too many clients already", False),
        ("timeout expired", False),
    ],
)
def test_which_connection_failures_are_configuration(said: str, config: bool) -> None:
    settings = parse_postgres_url("postgresql://app:hunter2@db.example/sessions?password=hunter2")
    failure = psycopg.OperationalError(f'connection to server at "db.example", port 5432 failed: {said}')
    error = startup_error(failure, settings)
    assert isinstance(error, ConfigError if config else StorageUnavailableError)
    assert "hunter2" not in str(error)
    if config:
        assert "postgresql://app@db.example/sessions" in str(error)


@pytest.fixture
def proxy() -> Iterator[CuttableProxy]:
    parts = urlsplit(POSTGRES_URL)
    forwarding = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        yield forwarding
    finally:
        forwarding.close()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_server_down_at_start_up_is_unavailable_and_the_next_request_starts_the_engine(
    proxy: CuttableProxy, driver: str
) -> None:
    with postgres_schema(POSTGRES_URL) as direct, asyncio.Runner() as runner:
        url = direct.replace(urlsplit(direct).netloc.split("@")[-1], f"127.0.0.1:{proxy.port}", 1)
        config = Config(store=url)
        ward = SessionWard(config) if driver == "sync" else AsyncSessionWard(config)

        def request() -> SessionTokens:
            if isinstance(ward, AsyncSessionWard):
                return runner.run(ward.create_new_session("alice"))
            return ward.create_new_session("alice")

        try:
            proxy.cut()
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                request()
            assert time.monotonic() - started < PROMPT
            proxy.restore()
            assert request().handle  # the same engine, started now
        finally:
            if isinstance(ward, AsyncSessionWard):
                runner.run(ward.aclose())
            else:
                ward.close()


def test_a_server_that_never_answers_is_unavailable_after_connect_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        store = PostgresStore(on(port=silent.getsockname()[1]) + "?connect_timeout=2")
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError):
            store.check_schema()
        assert time.monotonic() - started < 2 + PROMPT
        store.close()
