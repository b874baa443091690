"""PostgreSQL stores on psycopg 3: :class:`PostgresStore` (sync, ``ConnectionPool``) and
:class:`AsyncPostgresStore` (asyncio, ``AsyncConnectionPool``).

The package, by concept:

* :mod:`.settings` — the ``postgresql://`` URL and its parameters;
* :mod:`.operations` — every store operation as SQL, written once as a generator of queries;
* :mod:`.drivers` — running those generators on a sync or an async connection;
* :mod:`.pool` — the connection pools and the checked checkout of a connection;
* :mod:`.errors` — which driver errors mean "unavailable" and which are bugs;
* :mod:`.startup` — the one direct connection before the first ``migrate`` /
  ``check_schema`` that makes a URL the server refuses (missing database, unknown user,
  wrong password) a ``ConfigError`` at once;
* :mod:`.sync_store`, :mod:`.async_store` — the two store classes, which only do the I/O.

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

from .async_store import AsyncPostgresStore
from .operations import DIALECT, Fetch, Operation
from .pool import AnyConnection
from .settings import SCHEMES, PostgresSettings, parse_postgres_url
from .sync_store import PostgresStore

__all__ = [
    "DIALECT",
    "SCHEMES",
    "AnyConnection",
    "AsyncPostgresStore",
    "Fetch",
    "Operation",
    "PostgresSettings",
    "PostgresStore",
    "parse_postgres_url",
]
