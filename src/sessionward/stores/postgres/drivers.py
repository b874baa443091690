"""Running an operation of :mod:`.operations` on a sync or an async connection."""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg

from .operations import Operation

__all__ = ["drive", "drive_async"]

T = TypeVar("T")


def drive(connection: psycopg.Connection[Any], operation: Operation[T]) -> T:
    """Run ``operation``'s queries on ``connection``; return its result."""
    try:
        query = next(operation)
        while True:
            cursor = connection.execute(query.sql, query.params)
            if query.fetch == "one":
                result: Any = cursor.fetchone()
            elif query.fetch == "all":
                result = cursor.fetchall()
            else:
                result = cursor.rowcount
            query = operation.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def drive_async(connection: psycopg.AsyncConnection[Any], operation: Operation[T]) -> T:
    """:func:`drive` for an async connection."""
    try:
        query = next(operation)
        while True:
            cursor = await connection.execute(query.sql, query.params)
            if query.fetch == "one":
                result: Any = await cursor.fetchone()
            elif query.fetch == "all":
                result = await cursor.fetchall()
            else:
                result = cursor.rowcount
            query = operation.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
