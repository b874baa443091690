"""What a psycopg error means to the caller: the sessionward error to raise for it."""

from __future__ import annotations

import psycopg

from ...errors import GeneralError, StorageUnavailableError

__all__ = ["CLOSED", "translate"]

CLOSED = "the PostgreSQL store is closed"


def translate(exc: psycopg.Error, description: str, closed: bool) -> GeneralError:
    """The sessionward error for a driver error (of a store ``closed`` meanwhile or not)."""
    if closed:
        return GeneralError(CLOSED)
    unavailable = psycopg.OperationalError | psycopg.InterfaceError | psycopg.errors.ReadOnlySqlTransaction
    if isinstance(exc, unavailable):
        return StorageUnavailableError(f"PostgreSQL store at {description} unavailable: {exc}")
    if isinstance(exc, psycopg.IntegrityError):
        return GeneralError(f"PostgreSQL integrity error: {exc}")
    return GeneralError(f"PostgreSQL store error: {exc}")
