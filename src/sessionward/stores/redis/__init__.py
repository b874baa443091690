"""Redis store on redis-py: :class:`RedisStore` (sync) and :class:`AsyncRedisStore` (asyncio).

Each operation is one Lua script (:mod:`.scripts`, which also describes the data layout),
so every compare-and-set is atomic on the server; the two classes only send the scripts and
share the argument building and reply decoding of :mod:`.operations`. The package, by
concept:

* :mod:`.settings` — the ``redis://`` URL, its parameters and the clients it makes;
* :mod:`.scripts` — the Lua scripts and the key layout;
* :mod:`.operations` — which script each store operation runs, with which arguments, and
  how its reply decodes;
* :mod:`.errors` — which redis-py errors mean "unavailable";
* :mod:`.sync_store`, :mod:`.async_store` — the two store classes, which only do the I/O.

A session hash expires by itself ``expires_at - created_at_time`` ms after insertion, and
again ``expires_at - now`` ms after each promotion (durations in the caller's clock, so
clock skew between the application hosts and Redis does not shorten sessions). The engine
still decides liveness from the stored ``expires_at``; a session Redis no longer has —
expired, evicted, flushed — is simply absent, and the engine answers ``UnauthorizedError``.

URLs: ``redis://[[user]:password@]host[:port][/db]`` and ``rediss://…`` (TLS), with query
parameters ``prefix`` (key prefix, default ``sessionward:``), ``timeout`` (socket timeout in
seconds, default 5), ``connect_timeout`` (default 5), ``max_connections`` (pool size, default
50), ``pool_timeout`` (seconds an operation waits for a free pooled connection before failing
with ``StorageUnavailableError``, default 5) and, for ``rediss``, redis-py's ``ssl_*`` options.
"""

from .async_store import AsyncRedisStore
from .operations import LAYOUT_VERSION
from .settings import DEFAULT_MAX_CONNECTIONS, DEFAULT_PREFIX, RedisSettings, parse_redis_url
from .sync_store import RedisStore

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PREFIX",
    "LAYOUT_VERSION",
    "AsyncRedisStore",
    "RedisSettings",
    "RedisStore",
    "parse_redis_url",
]
