"""PostgreSQL stores on psycopg 3: :class:`PostgresStore` (sync, ``ConnectionPool``) and
:class:`AsyncPostgresStore` (asyncio, ``AsyncConnectionPool``).

Both drivers run the same operations: each store method is a small generator (module
functions ``_op_*`` below) that yields :class:`_Query` objects and receives their results,
so the SQL text and row decoding exist once and the two classes only do the I/O.

Atomicity: every check-and-set is one statement (``UPDATE … WHERE refresh_token_hash_2 =
%s``, ``DELETE … RETURNING``, ``INSERT … ON CONFLICT DO NOTHING``); migrations run in one
transaction under ``pg_advisory_xact_lock`` so concurrent migrators queue up. The JSON
columns are ``JSON``, which keeps the exact text written (``JSONB`` would reject
``\\u0000`` and rewrite numbers such as ``1e300`` and key order), and are read back as text.

Failures: any connection-level error (``OperationalError`` including the pool's
``PoolTimeout``, ``InterfaceError``, a read-only server) raises
:class:`~sessionward.errors.StorageUnavailableError`. Each connection is checked before
use (see ``pool_check``): one found dead is replaced and the next tried at once, so only
statements in flight when a backend dies fail; the pool reconnects in the background about
once a second while the server is away, so the same store object recovers by itself once
the server is back.
Pools open lazily on first use; a forked child process builds its own pool (the parent's
connections are left untouched), and the async store keeps one pool per event loop.

URLs: ``postgresql://user[:password]@host[:port]/database?param=value&…`` (``postgres://``
is accepted too). libpq parameters (``sslmode``, ``options=-csearch_path%3Dmyschema``,
``application_name``, ``connect_timeout`` …) pass through to the driver;
``connect_timeout`` defaults to 5 seconds. sessionward's own parameters:

* ``pool_min`` (default 1), ``pool_max`` (default 10): pool size per process (and loop);
* ``pool_timeout`` (default 5): seconds a request waits for a connection before failing
  with ``StorageUnavailableError`` (answered as a 503) instead of hanging;
* ``pool_check`` (default ``idle``): test a connection before use if it sat idle in the
  pool for over a second or the server sent it something meanwhile (a terminated backend's
  farewell: seen by a non-blocking poll of the socket); ``always``: before every use;
  ``never``. A test costs one round trip; so a server restarted during a quiet spell or
  backends terminated by an operator cost no failed request, while a busy process pays
  nothing.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import weakref
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from ..errors import ConfigError, GeneralError, StorageUnavailableError
from ..tokens.encoding import dumps_compact
from .base import SessionRow, StoredKey, session_row_from_columns
from .schema import latest_version, migrations_for

__all__ = ["AsyncPostgresStore", "PostgresSettings", "PostgresStore", "parse_postgres_url"]

T = TypeVar("T")
DIALECT = "postgres"
SCHEMES = ("postgresql", "postgres")
_OWN_PARAMS = ("pool_min", "pool_max", "pool_timeout", "pool_check")
_DEFAULT_CONNECT_TIMEOUT = 5
_RECONNECT_DELAY = 1.0
_IDLE_BEFORE_CHECK = 1.0
_CHECK_MODES: dict[str, Literal["idle", "always", "never"]] = {
    "idle": "idle", "always": "always", "never": "never", "true": "always", "false": "never",
}
# Pools of a forked parent or of a closed event loop: kept referenced so that garbage
# collection never runs their finalisers (which would warn or touch foreign sockets).
_ABANDONED: list[object] = []


# -- URL ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """A parsed ``postgresql://`` store URL."""

    conninfo: str
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 5.0
    pool_check: Literal["idle", "always", "never"] = "idle"
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _number(name: str, raw: str, low: float, high: float, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"store: postgres URL parameter {name} must be a number; got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"store: postgres URL parameter {name} must be between {low:g} and {high:g}")
    return value


def parse_postgres_url(url: str) -> PostgresSettings:
    """Split a ``postgresql://`` URL into libpq conninfo and sessionward's pool options."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError(f"store: expected a postgresql:// URL; got scheme {parts.scheme!r}")
    own: dict[str, str] = {}
    passed: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OWN_PARAMS:
            own[name] = value
        else:
            passed.append((name, value))
    query = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in passed)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, query, ""))
    try:
        options = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigError(f"store: invalid postgres URL: {exc}") from None
    pool_min = int(_number("pool_min", own.get("pool_min", "1"), 0, 1000, True))
    pool_max = int(_number("pool_max", own.get("pool_max", "10"), 1, 1000, True))
    if pool_max < pool_min:
        raise ConfigError("store: postgres URL parameter pool_max must be at least pool_min")
    check = own.get("pool_check", "idle").lower()
    if check not in _CHECK_MODES:
        raise ConfigError(
            f"store: postgres URL parameter pool_check must be idle, always or never; got {check!r}"
        )
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in options:
        kwargs["connect_timeout"] = _DEFAULT_CONNECT_TIMEOUT
    host = parts.hostname or "localhost"
    description = f"{host}:{parts.port or 5432}{parts.path or '/'}"
    return PostgresSettings(
        conninfo=conninfo,
        pool_min=pool_min,
        pool_max=pool_max,
        pool_timeout=_number("pool_timeout", own.get("pool_timeout", "5"), 0.1, 600, False),
        pool_check=_CHECK_MODES[check],
        connect_kwargs=kwargs,
        description=description,
    )


# -- errors ------------------------------------------------------------------------------


_CLOSED = "the PostgreSQL store is closed"


def _translate(exc: psycopg.Error, description: str, closed: bool) -> GeneralError:
    """The sessionward error for a driver error (of a store ``closed`` meanwhile or not)."""
    if closed:
        return GeneralError(_CLOSED)
    unavailable = psycopg.OperationalError | psycopg.InterfaceError | psycopg.errors.ReadOnlySqlTransaction
    if isinstance(exc, unavailable):
        return StorageUnavailableError(f"PostgreSQL store at {description} unavailable: {exc}")
    if isinstance(exc, psycopg.IntegrityError):
        return GeneralError(f"PostgreSQL integrity error: {exc}")
    return GeneralError(f"PostgreSQL store error: {exc}")


# -- pools -------------------------------------------------------------------------------


class _SteadyAttempt(AttemptWithBackoff):
    """Reconnect about once a second instead of backing off exponentially, so recovery
    follows the server's return within a second or two however long it was away."""

    DELAY_BACKOFF = 1.0


class _Pool(ConnectionPool[psycopg.Connection[Any]]):
    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing)


class _AsyncPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing)


# When each pooled connection was last handed back (weak keys: closed connections vanish).
_LAST_USED: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()

AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]


def _has_unread_input(connection: AnyConnection) -> bool:
    """Whether the server sent something to this idle connection: typically a terminated
    backend's farewell (``FATAL: terminating connection``) and end of stream, or a reset.
    One non-blocking poll of the socket, no round trip."""
    if connection.closed:
        return True
    fileno = connection.fileno()
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fileno], [], [], 0)[0])


def _needs_test(connection: AnyConnection, mode: str) -> bool:
    """Whether ``pool_check`` asks for a round trip before ``connection`` is used."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    idle = time.monotonic() - _LAST_USED.get(connection, 0.0) > _IDLE_BEFORE_CHECK
    return idle or _has_unread_input(connection)


def _usable(connection: psycopg.Connection[Any], mode: str) -> bool:
    if not _needs_test(connection, mode):
        return True
    try:
        ConnectionPool.check_connection(connection)
    except psycopg.Error:
        return False
    return True


async def _usable_async(connection: psycopg.AsyncConnection[Any], mode: str) -> bool:
    if not _needs_test(connection, mode):
        return True
    try:
        await AsyncConnectionPool.check_connection(connection)
    except psycopg.Error:
        return False
    return True


# Checking out: a connection found dead is closed and handed back (the pool opens a
# replacement) and the next one is tried at once. Nothing was sent on it, so skipping it is
# safe for every operation, unlike retrying a statement that failed in flight: its outcome
# is unknown (a backend may be terminated after its commit, before the reply), and a
# repeated compare-and-set or DELETE … RETURNING would change the answer. This loop, not
# the pool's ``check`` callback, does the checking: after a failed check the pool sleeps a
# second or more before trying the next connection, which made each connection killed
# while idle cost a request a 503, one by one.


@contextmanager
def _checked_out(pool: _Pool, settings: PostgresSettings) -> Iterator[psycopg.Connection[Any]]:
    deadline = time.monotonic() + settings.pool_timeout
    while True:
        connection = pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
        if _usable(connection, settings.pool_check):
            break
        connection.close()
        pool.putconn(connection)
    try:
        yield connection
    finally:
        _LAST_USED[connection] = time.monotonic()
        pool.putconn(connection)


@asynccontextmanager
async def _checked_out_async(
    pool: _AsyncPool, settings: PostgresSettings
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    deadline = time.monotonic() + settings.pool_timeout
    while True:
        connection = await pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
        if await _usable_async(connection, settings.pool_check):
            break
        await connection.close()
        await pool.putconn(connection)
    try:
        yield connection
    finally:
        _LAST_USED[connection] = time.monotonic()
        await pool.putconn(connection)


def _pool_options(settings: PostgresSettings) -> dict[str, Any]:
    return {
        "kwargs": settings.connect_kwargs,
        "min_size": settings.pool_min,
        "max_size": settings.pool_max,
        "timeout": settings.pool_timeout,
        "name": "sessionward",
        "open": False,
    }


# -- operations (shared by both drivers) -------------------------------------------------

Fetch = Literal["rowcount", "one", "all"]


@dataclass(frozen=True, slots=True)
class _Query:
    """One statement to execute and what to return from it."""

    sql: str
    params: Sequence[Any] = ()
    fetch: Fetch = "rowcount"


Operation = Generator[_Query, Any, T]

_ROW_COLUMNS = (
    "session_handle, user_id, refresh_token_hash_2, prev_refresh_token_hash_2, rotated_at, "
    "session_data, jwt_user_payload, created_at_time, expires_at"
)
# The JSON columns are read back as text: the exact document that was written.
_SELECT_COLUMNS = _ROW_COLUMNS.replace(
    "session_data, jwt_user_payload", "session_data::text, jwt_user_payload::text"
)
_KEY_COLUMNS = "name, value, created_at_time"


def _schema_version() -> Operation[int]:
    exists = yield _Query("SELECT to_regclass('schema_version') IS NOT NULL", (), "one")
    if not exists[0]:
        return 0
    found = yield _Query("SELECT MAX(version) FROM schema_version", (), "one")
    return int(found[0] or 0)


def _op_migrate() -> Operation[int]:
    # One lock per target schema: migrators of different schemas do not wait for each other.
    yield _Query("SELECT pg_advisory_xact_lock(hashtext('sessionward.migrate:' || current_schema()))")
    yield _Query(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)"
    )
    current = yield from _schema_version()
    for migration in migrations_for(DIALECT):
        if migration.version > current:
            for statement in migration.statements:
                yield _Query(statement)
            yield _Query(
                "INSERT INTO schema_version (version, applied_at) "
                "VALUES (%s, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                (migration.version,),
            )
            current = migration.version
    return current


def _op_insert_session(row: SessionRow) -> Operation[None]:
    yield _Query(
        f"INSERT INTO session_info ({_ROW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            row.session_handle, row.user_id, row.refresh_token_hash_2,
            row.prev_refresh_token_hash_2, row.rotated_at, dumps_compact(row.session_data),
            dumps_compact(row.jwt_user_payload), row.created_at_time, row.expires_at,
        ),
    )


def _op_get_session(handle: str) -> Operation[SessionRow | None]:
    found = yield _Query(
        f"SELECT {_SELECT_COLUMNS} FROM session_info WHERE session_handle = %s", (handle,), "one"
    )
    return None if found is None else session_row_from_columns(found)


def _op_promote(handle: str, expected: str, new: str, now: int, expires_at: int) -> Operation[bool]:
    changed = yield _Query(
        "UPDATE session_info SET refresh_token_hash_2 = %s, prev_refresh_token_hash_2 = %s, "
        "rotated_at = %s, expires_at = %s WHERE session_handle = %s AND refresh_token_hash_2 = %s",
        (new, expected, now, expires_at, handle, expected),
    )
    return bool(changed == 1)


def _handles(rows: list[tuple[Any, ...]]) -> list[str]:
    return [str(row[0]) for row in rows]


def _op_delete_sessions(handles: list[str]) -> Operation[list[str]]:
    if not handles:
        return []
    rows = yield _Query(
        "DELETE FROM session_info WHERE session_handle = ANY(%s) RETURNING session_handle",
        (list(dict.fromkeys(handles)),),
        "all",
    )
    found = set(_handles(rows))
    return [handle for handle in dict.fromkeys(handles) if handle in found]


def _op_delete_sessions_for_user(user_id: str) -> Operation[list[str]]:
    rows = yield _Query(
        "DELETE FROM session_info WHERE user_id = %s RETURNING session_handle", (user_id,), "all"
    )
    return _handles(rows)


def _op_get_handles_for_user(user_id: str, now: int) -> Operation[list[str]]:
    rows = yield _Query(
        "SELECT session_handle FROM session_info WHERE user_id = %s AND expires_at >= %s "
        'ORDER BY created_at_time, session_handle COLLATE "C"',
        (user_id, now),
        "all",
    )
    return _handles(rows)


def _op_update_json(column: str, handle: str, value: dict[str, Any]) -> Operation[bool]:
    changed = yield _Query(
        f"UPDATE session_info SET {column} = %s WHERE session_handle = %s", (dumps_compact(value), handle)
    )
    return bool(changed == 1)


def _op_delete_expired(now: int) -> Operation[int]:
    deleted = yield _Query("DELETE FROM session_info WHERE expires_at < %s", (now,))
    return int(deleted)


def _op_load_keys(prefix: str) -> Operation[list[StoredKey]]:
    rows = yield _Query(
        f'SELECT {_KEY_COLUMNS} FROM key_value WHERE starts_with(name, %s) ORDER BY name COLLATE "C"',
        (prefix,),
        "all",
    )
    return [StoredKey(*row) for row in rows]


def _op_insert_key_if_absent(key: StoredKey) -> Operation[StoredKey]:
    while True:  # repeats only if the winner was deleted between the two statements
        yield _Query(
            f"INSERT INTO key_value ({_KEY_COLUMNS}) VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING",
            (key.name, key.value, key.created_at_time),
        )
        stored = yield _Query(f"SELECT {_KEY_COLUMNS} FROM key_value WHERE name = %s", (key.name,), "one")
        if stored is not None:
            return StoredKey(*stored)


def _op_delete_keys(names: list[str]) -> Operation[None]:
    if names:
        yield _Query("DELETE FROM key_value WHERE name = ANY(%s)", (list(names),))


def _schema_error(version: int) -> GeneralError | None:
    expected = latest_version(DIALECT)
    if version == expected:
        return None
    return GeneralError(
        f"the session store schema is at version {version}, sessionward needs {expected}: "
        f"run `sessionward migrate --store URL` (or set auto_migrate=True)"
    )


def _drive(connection: psycopg.Connection[Any], operation: Operation[T]) -> T:
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


async def _drive_async(connection: psycopg.AsyncConnection[Any], operation: Operation[T]) -> T:
    """:func:`_drive` for an async connection."""
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


# -- sync driver -------------------------------------------------------------------------


class PostgresStore:
    """A synchronous :class:`~sessionward.stores.base.Store` on a psycopg connection pool."""

    def __init__(self, url: str) -> None:
        self.settings = parse_postgres_url(url)
        self._pool: _Pool | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresStore({self.settings.description!r})"

    def _get_pool(self) -> _Pool:
        if os.getpid() != self._pid:
            # Forked child: never use (or close) the parent's connections or its lock.
            _ABANDONED.append(self._pool)
            self._pid, self._pool, self._lock = os.getpid(), None, threading.Lock()
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._closed:
                    raise GeneralError(_CLOSED)
                if self._pool is None:
                    opened = _Pool(self.settings.conninfo, **_pool_options(self.settings))
                    opened.open(wait=False)
                    self._pool = opened
                pool = self._pool
        return pool

    def _run(self, operation: Operation[T], transaction: bool = False) -> T:
        if self._closed:
            raise GeneralError(_CLOSED)
        try:
            with _checked_out(self._get_pool(), self.settings) as connection:
                scope: AbstractContextManager[Any] = (
                    connection.transaction() if transaction else nullcontext()
                )
                with scope:
                    return _drive(connection, operation)
        except psycopg.Error as exc:
            raise _translate(exc, self.settings.description, self._closed) from exc
        finally:
            operation.close()

    # -- Store methods (see sessionward.stores.base.Store) -------------------------------

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in place."""
        return self._run(_op_migrate(), transaction=True)

    def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` if the schema is not current."""
        error = _schema_error(self._run(_schema_version()))
        if error is not None:
            raise error

    def insert_session(self, row: SessionRow) -> None:
        """Insert a new session row."""
        self._run(_op_insert_session(row))

    def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        return self._run(_op_get_session(handle))

    def promote(self, handle: str, expected_hash_2: str, new_hash_2: str, now: int, expires_at: int) -> bool:
        """Compare-and-set on ``refresh_token_hash_2`` (one conditional ``UPDATE``)."""
        return self._run(_op_promote(handle, expected_hash_2, new_hash_2, now, expires_at))

    def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        return self._run(_op_delete_sessions(handles))

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        return self._run(_op_delete_sessions_for_user(user_id))

    def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        """Handles of ``user_id``'s sessions that have not expired at ``now``."""
        return self._run(_op_get_handles_for_user(user_id, now))

    def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        """Overwrite session data; return whether the session exists."""
        return self._run(_op_update_json("session_data", handle, data))

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        """Overwrite the JWT payload; return whether the session exists."""
        return self._run(_op_update_json("jwt_user_payload", handle, payload))

    def delete_expired_sessions(self, now: int) -> int:
        """Delete rows with ``expires_at < now``; return how many."""
        return self._run(_op_delete_expired(now))

    def load_keys(self, prefix: str) -> list[StoredKey]:
        """All key-value entries whose name starts with ``prefix``."""
        return self._run(_op_load_keys(prefix))

    def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        """Insert ``key`` unless its name exists; return the entry now stored."""
        return self._run(_op_insert_key_if_absent(key))

    def delete_keys(self, names: list[str]) -> None:
        """Delete key-value entries by name."""
        self._run(_op_delete_keys(names))

    def close(self) -> None:
        """Close the pool (a forked child leaves its parent's pool alone)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and os.getpid() == self._pid:
            pool.close()


# -- async driver ------------------------------------------------------------------------


async def _close_when_cancelled(pool: _AsyncPool) -> None:
    """Wait until cancelled, then close ``pool``.

    The pool's maintenance tasks swallow cancellation, so a loop shut down while they run
    (``asyncio.run`` cancels every task on exit) would wait for them forever. This task is
    cancelled in the same sweep and closes the pool, which stops them.
    """
    try:
        await asyncio.Event().wait()
    finally:
        await pool.close(timeout=1)


def _discard_async_pool(pool: _AsyncPool) -> None:
    """Drop a pool whose event loop is gone: close its idle sockets without the loop."""
    for connection in list(getattr(pool, "_pool", ())):
        connection.pgconn.finish()
    _ABANDONED.append(pool)


class AsyncPostgresStore:
    """An :class:`~sessionward.stores.base.AsyncStore` on psycopg's async connection pool.

    One pool per event loop (a pool cannot outlive or cross its loop); pools of loops that
    have been closed are discarded when the next pool is made.
    """

    def __init__(self, url: str) -> None:
        self.settings = parse_postgres_url(url)
        self._pools: dict[asyncio.AbstractEventLoop, _AsyncPool] = {}
        self._closers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._pid = os.getpid()
        self._closed = False

    def __repr__(self) -> str:
        return f"AsyncPostgresStore({self.settings.description!r})"

    async def _get_pool(self) -> _AsyncPool:
        if os.getpid() != self._pid:
            _ABANDONED.append(self._pools)
            self._pid, self._pools, self._closers = os.getpid(), {}, {}
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for other in [other for other in self._pools if other.is_closed()]:
                _discard_async_pool(self._pools.pop(other))
                self._closers.pop(other, None)
            pool = self._pools[loop] = _AsyncPool(self.settings.conninfo, **_pool_options(self.settings))
            self._closers[loop] = loop.create_task(_close_when_cancelled(pool), name="sessionward-closer")
        if pool.closed:
            await pool.open(wait=False)  # idempotent and locked: concurrent first users are fine
        return pool

    async def _run(self, operation: Operation[T], transaction: bool = False) -> T:
        if self._closed:
            raise GeneralError(_CLOSED)
        try:
            pool = await self._get_pool()
            async with _checked_out_async(pool, self.settings) as connection:
                scope: AbstractAsyncContextManager[Any] = (
                    connection.transaction() if transaction else nullcontext()
                )
                async with scope:
                    return await _drive_async(connection, operation)
        except psycopg.Error as exc:
            raise _translate(exc, self.settings.description, self._closed) from exc
        finally:
            operation.close()

    async def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in place."""
        return await self._run(_op_migrate(), transaction=True)

    async def check_schema(self) -> None:
        """Raise ``GeneralError`` naming ``sessionward migrate`` if the schema is not current."""
        error = _schema_error(await self._run(_schema_version()))
        if error is not None:
            raise error

    async def insert_session(self, row: SessionRow) -> None:
        """Insert a new session row."""
        await self._run(_op_insert_session(row))

    async def get_session(self, handle: str) -> SessionRow | None:
        """The row of ``handle``, or ``None``."""
        return await self._run(_op_get_session(handle))

    async def promote(
        self, handle: str, expected_hash_2: str, new_hash_2: str, now: int, expires_at: int
    ) -> bool:
        """Compare-and-set on ``refresh_token_hash_2`` (one conditional ``UPDATE``)."""
        return await self._run(_op_promote(handle, expected_hash_2, new_hash_2, now, expires_at))

    async def delete_sessions(self, handles: list[str]) -> list[str]:
        """Delete these sessions; return the handles that existed."""
        return await self._run(_op_delete_sessions(handles))

    async def delete_sessions_for_user(self, user_id: str) -> list[str]:
        """Delete every session of ``user_id``; return their handles."""
        return await self._run(_op_delete_sessions_for_user(user_id))

    async def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        """Handles of ``user_id``'s sessions that have not expired at ``now``."""
        return await self._run(_op_get_handles_for_user(user_id, now))

    async def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        """Overwrite session data; return whether the session exists."""
        return await self._run(_op_update_json("session_data", handle, data))

    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        """Overwrite the JWT payload; return whether the session exists."""
        return await self._run(_op_update_json("jwt_user_payload", handle, payload))

    async def delete_expired_sessions(self, now: int) -> int:
        """Delete rows with ``expires_at < now``; return how many."""
        return await self._run(_op_delete_expired(now))

    async def load_keys(self, prefix: str) -> list[StoredKey]:
        """All key-value entries whose name starts with ``prefix``."""
        return await self._run(_op_load_keys(prefix))

    async def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        """Insert ``key`` unless its name exists; return the entry now stored."""
        return await self._run(_op_insert_key_if_absent(key))

    async def delete_keys(self, names: list[str]) -> None:
        """Delete key-value entries by name."""
        await self._run(_op_delete_keys(names))

    async def close(self) -> None:
        """Close this loop's pool; discard pools of closed loops; schedule the closing of
        pools on other running loops."""
        self._closed = True
        pools, self._pools = self._pools, {}
        closers, self._closers = self._closers, {}
        if os.getpid() != self._pid:
            return
        current = asyncio.get_running_loop()
        for loop, pool in pools.items():
            closer = closers.get(loop)
            if loop is current:
                if closer is not None:
                    closer.cancel()
                await pool.close()
            elif loop.is_closed():
                _discard_async_pool(pool)
            elif closer is not None:
                loop.call_soon_threadsafe(closer.cancel)
