"""The start-up check: a store URL that can never work is a ``ConfigError`` at once.

The pool connects in the background and retries failures, so without this check a database
that does not exist, an unknown user or a wrong password would only surface as every
request waiting ``pool_timeout`` and failing with ``StorageUnavailableError``. Before the
first ``migrate`` / ``check_schema`` (the engine's start-up) the store therefore connects
once outside the pool, within ``connect_timeout``, and sorts a failure:

* the server refused the configuration — database missing, role missing, password wrong or
  missing, no ``pg_hba.conf`` entry — : :class:`~sessionward.errors.ConfigError`, naming
  what was refused and the URL without its password;
* anything else (refused or timed-out connection, server starting or shutting down):
  :class:`~sessionward.errors.StorageUnavailableError` as for any operation, and the next
  start-up attempt (the engine's next request) checks again.

libpq reports these failures as text without an SQLSTATE, so they are recognised by the
server's English messages (the default ``lc_messages``); with a translated server a refused
configuration stays ``StorageUnavailableError``.
"""

from __future__ import annotations

import re

import psycopg

from ...errors import ConfigError, GeneralError
from .errors import translate
from .settings import PostgresSettings

__all__ = ["check_connection", "check_connection_async", "startup_error"]

# (SQLSTATE if the server sends one, what the server or libpq says, what to do about it)
_REFUSED_CONFIGURATION: tuple[tuple[str | None, re.Pattern[str], str], ...] = (
    (
        "3D000",
        re.compile(r'database "[^"]*" does not exist'),
        "create the database or correct its name in the store URL",
    ),
    (
        "28000",
        re.compile(r'role "[^"]*" does not exist'),
        "create the role or correct the user in the store URL",
    ),
    (
        "28P01",
        re.compile(r'password authentication failed for user "[^"]*"'),
        "correct the user or password in the store URL",
    ),
    (
        "28000",
        re.compile(r"no pg_hba\.conf entry for [^\n]*"),
        "allow this host, user and database in the server's pg_hba.conf, or use another user",
    ),
    (None, re.compile(r"no password supplied"), "the server asks for a password: add it to the store URL"),
)


def startup_error(exc: psycopg.Error, settings: PostgresSettings) -> ConfigError | GeneralError:
    """The error to raise when the start-up connection failed with ``exc``."""
    message = str(exc)
    for sqlstate, said, advice in _REFUSED_CONFIGURATION:
        found = said.search(message)
        if found is not None or (sqlstate is not None and exc.sqlstate == sqlstate):
            what = found.group(0) if found is not None else f"SQLSTATE {sqlstate}"
            return ConfigError(f"store: PostgreSQL at {settings.redacted_url}: {what}; {advice}")
    return translate(exc, settings.description, closed=False)


def check_connection(settings: PostgresSettings) -> None:
    """Connect once outside the pool; raise :func:`startup_error` if that fails."""
    try:
        psycopg.connect(settings.conninfo, **settings.connect_kwargs).close()
    except psycopg.Error as exc:
        raise startup_error(exc, settings) from exc


async def check_connection_async(settings: PostgresSettings) -> None:
    """:func:`check_connection` without blocking the event loop."""
    try:
        connection = await psycopg.AsyncConnection.connect(settings.conninfo, **settings.connect_kwargs)
        await connection.close()
    except psycopg.Error as exc:
        raise startup_error(exc, settings) from exc
