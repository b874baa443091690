"""Redis store on redis-py: :class:`RedisStore` (sync) and :class:`AsyncRedisStore` (asyncio).

Each operation is one Lua script (``stores/redis_lua.py``, which also describes the data
layout), so every compare-and-set is atomic on the server; the two classes only send the
scripts and share the argument building and reply decoding below.

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

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff

from ..errors import ConfigError, GeneralError, StorageUnavailableError
from ..tokens.encoding import dumps_compact
from .base import CorruptSessionRowError, SessionRow, StoredKey, json_object
from .redis_lua import SCRIPTS

__all__ = ["AsyncRedisStore", "RedisSettings", "RedisStore", "parse_redis_url"]

T = TypeVar("T")
#: Version of the key layout that ``migrate`` records (the Redis analogue of a schema).
LAYOUT_VERSION = 1
DEFAULT_PREFIX = "sessionward:"
_SWEEP_BATCH = 500
DEFAULT_MAX_CONNECTIONS = 50
_OWN_PARAMETERS = {"prefix", "timeout", "connect_timeout", "max_connections", "pool_timeout"}
_REQUIRED_FIELDS = ("user_id", "refresh_token_hash_2", "created_at_time", "expires_at")


# -- URL ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """A parsed Redis store URL."""

    client_url: str
    prefix: str
    timeout: float
    connect_timeout: float
    max_connections: int
    pool_timeout: float

    def client_options(self, asynchronous: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``BlockingConnectionPool.from_url`` of ``redis`` or
        (``asynchronous``) ``redis.asyncio``."""
        # One quick retry on a broken connection: a pooled socket may be stale after a
        # Redis restart. Timeouts are not retried (the caller would wait twice). The asyncio
        # client needs the asyncio Retry: the sync one returns the coroutine unawaited, so
        # its retry loop never sees the error.
        retry_class = redis.asyncio.retry.Retry if asynchronous else redis.retry.Retry
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.connect_timeout,
            "retry": retry_class(
                ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(redis.ConnectionError,)
            ),
            # A blocking pool: more concurrent operations than connections wait for one
            # (redis-py's plain pool would fail at once with "Too many connections").
            "max_connections": self.max_connections,
            "timeout": self.pool_timeout,
        }
        return options

    def sync_client(self) -> redis.Redis:
        """A ``redis.Redis`` client owning a blocking pool of these settings."""
        pool = redis.BlockingConnectionPool.from_url(self.client_url, **self.client_options())
        return redis.Redis.from_pool(pool)

    def async_client(self) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` client owning a blocking pool of these settings."""
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.client_url, **self.client_options(asynchronous=True)
        )
        return redis.asyncio.Redis.from_pool(pool)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"store: redis {name} must be a number of seconds; got {value!r}") from None
    if not 0 < seconds <= 600:
        raise ConfigError(f"store: redis {name} must be between 0 and 600 seconds")
    return seconds


def parse_redis_url(url: str) -> RedisSettings:
    """Validate a ``redis://`` or ``rediss://`` URL and split off sessionward's options."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"store: invalid redis URL {_redacted(url)!r}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"store: expected redis://host[:port][/db] or rediss://…; got {_redacted(url)!r}")
    if parts.path not in ("", "/") and not parts.path[1:].isdigit():
        raise ConfigError(f"store: the redis database must be a number; got {parts.path[1:]!r}")
    prefix, timeout, connect_timeout, pool_timeout = DEFAULT_PREFIX, 5.0, 5.0, 5.0
    max_connections = DEFAULT_MAX_CONNECTIONS
    passed: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "prefix":
            if not value or len(value) > 200:
                raise ConfigError("store: the redis prefix must be 1 to 200 characters")
            prefix = value
        elif name == "timeout":
            timeout = _seconds(name, value)
        elif name == "connect_timeout":
            connect_timeout = _seconds(name, value)
        elif name == "pool_timeout":
            pool_timeout = _seconds(name, value)
        elif name == "max_connections":
            if not value.isdigit() or not 1 <= int(value) <= 100_000:
                raise ConfigError(f"store: redis max_connections must be a positive integer; got {value!r}")
            max_connections = int(value)
        elif name.startswith("ssl_") and parts.scheme == "rediss":
            passed.append((name, value))
        else:
            known = ", ".join(sorted(_OWN_PARAMETERS)) + ", ssl_* (rediss only)"
            raise ConfigError(f"store: unknown redis URL parameter {name!r} (known: {known})")
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(passed), ""))
    return RedisSettings(client_url, prefix, timeout, connect_timeout, max_connections, pool_timeout)


# -- operations: script name, arguments and reply decoding, shared by both stores --------------


@dataclass(frozen=True, slots=True)
class _Op(Generic[T]):
    script: str
    args: tuple[str | int, ...]
    decode: Callable[[Any], T]


def _int(value: Any) -> int:
    return int(value)


def _bool(value: Any) -> bool:
    return bool(value)


def _none(value: Any) -> None:
    return None


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value]


def _by_creation(value: Any) -> list[str]:
    pairs = [(int(value[i + 1]), str(value[i])) for i in range(0, len(value), 2)]
    return [handle for _, handle in sorted(pairs)]


def _decode_row(flat: Any) -> SessionRow | None:
    if not flat:
        return None
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    handle = "?"
    try:
        if any(name not in fields for name in _REQUIRED_FIELDS):
            raise KeyError("missing field")
        handle = fields.get("session_handle", handle)
        rotated = fields.get("rotated_at")
        return SessionRow(
            session_handle=fields["session_handle"],
            user_id=fields["user_id"],
            refresh_token_hash_2=fields["refresh_token_hash_2"],
            prev_refresh_token_hash_2=fields.get("prev_refresh_token_hash_2"),
            rotated_at=None if rotated is None else int(rotated),
            session_data=json_object(fields.get("session_data", "{}")),
            jwt_user_payload=json_object(fields.get("jwt_user_payload", "{}")),
            created_at_time=int(fields["created_at_time"]),
            expires_at=int(fields["expires_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptSessionRowError(f"session hash {handle} is corrupt") from exc


def _decode_keys(flat: Any) -> list[StoredKey]:
    return [StoredKey(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]


def _ttl(expires_at: int, reference: int) -> int:
    """Milliseconds a session hash lives: until ``expires_at``, at least 1 (PEXPIRE ≤ 0 deletes)."""
    return max(1, expires_at - reference)


def _insert(row: SessionRow) -> _Op[None]:
    pairs: list[str | int] = [
        "session_handle", row.session_handle,
        "user_id", row.user_id,
        "refresh_token_hash_2", row.refresh_token_hash_2,
        "session_data", dumps_compact(row.session_data),
        "jwt_user_payload", dumps_compact(row.jwt_user_payload),
        "created_at_time", row.created_at_time,
        "expires_at", row.expires_at,
    ]
    if row.prev_refresh_token_hash_2 is not None:
        pairs += ["prev_refresh_token_hash_2", row.prev_refresh_token_hash_2]
    if row.rotated_at is not None:
        pairs += ["rotated_at", row.rotated_at]
    head = (
        row.session_handle, row.user_id, _ttl(row.expires_at, row.created_at_time),
        row.expires_at, row.created_at_time, row.refresh_token_hash_2,
    )
    return _Op("insert", (*head, *pairs), _none)


def _promote(handle: str, expected: str, new: str, now: int, expires_at: int) -> _Op[bool]:
    return _Op("promote", (handle, expected, new, now, expires_at, _ttl(expires_at, now)), _bool)


def _update(field_name: str, handle: str, value: dict[str, Any]) -> _Op[bool]:
    return _Op("update_field", (handle, field_name, dumps_compact(value)), _bool)


def _sweep(now: int) -> _Op[tuple[int, bool]]:
    return _Op("sweep", (now, _SWEEP_BATCH), lambda r: (int(r[0]), int(r[1]) >= _SWEEP_BATCH))


def _key_entry(name: str) -> Callable[[Any], StoredKey]:
    return lambda r: StoredKey(name, r[0], int(r[1]))


def _check_version(found: Any) -> None:
    version = int(found) if found is not None and str(found).isdigit() else 0
    if version != LAYOUT_VERSION:
        raise GeneralError(
            f"the session store schema is at version {version}, sessionward needs "
            f"{LAYOUT_VERSION}: run `sessionward migrate --store URL` (or set auto_migrate=True)"
        )


_UNAVAILABLE_REPLIES = ("OOM ", "LOADING ", "READONLY ", "MASTERDOWN ", "TRYAGAIN ", "BUSY ")


def _pool_exhausted(exc: Exception) -> bool:
    """Whether ``exc`` is a blocking pool giving up waiting for a free connection (redis-py
    raises a plain ``ConnectionError`` from the ``queue.Empty`` or asyncio timeout)."""
    return isinstance(exc, redis.ConnectionError) and isinstance(exc.__context__, queue.Empty | TimeoutError)


def _mapped(exc: Exception, settings: RedisSettings) -> Exception:
    """The sessionward error for a redis-py exception (``exc`` itself if not one)."""
    if _pool_exhausted(exc):
        return StorageUnavailableError(
            f"Redis store unavailable: no free connection within pool_timeout={settings.pool_timeout:g} s "
            f"(all max_connections={settings.max_connections} in use)"
        )
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return GeneralError(f"Redis refused the credentials: {exc}")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.exceptions.ReadOnlyError | OSError):
        return StorageUnavailableError(f"Redis store unavailable: {exc}")
    if isinstance(exc, redis.ResponseError) and str(exc).startswith(_UNAVAILABLE_REPLIES):
        return StorageUnavailableError(f"Redis store unavailable: {exc}")
    if isinstance(exc, redis.RedisError):
        return GeneralError(f"Redis error: {exc}")
    return exc


# -- sync --------------------------------------------------------------------------------------


class RedisStore:
    """A synchronous :class:`~sessionward.stores.base.Store` on one Redis server.

    Thread-safe (redis-py's connection pool); after a fork the child opens its own
    connections (redis-py checks the process id).
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0") -> None:
        self.url = url
        self.settings = parse_redis_url(url)
        self.prefix = self.settings.prefix
        self._client = self.settings.sync_client()
        self._scripts = {name: self._client.register_script(text) for name, text in SCRIPTS.items()}
        self._closed = False

    def _run(self, op: _Op[T]) -> T:
        if self._closed:
            raise GeneralError("the Redis store is closed")
        try:
            reply = self._scripts[op.script](keys=[], args=[self.prefix, *op.args])
        except Exception as exc:
            raise _mapped(exc, self.settings) from exc
        return op.decode(reply)

    def migrate(self) -> int:
        return self._run(_Op("migrate", (LAYOUT_VERSION,), _int))

    def check_schema(self) -> None:
        self._run(_Op("schema_version", (), _check_version))

    def insert_session(self, row: SessionRow) -> None:
        self._run(_insert(row))

    def get_session(self, handle: str) -> SessionRow | None:
        return self._run(_Op("get", (handle,), _decode_row))

    def promote(
        self, handle: str, expected_hash_2: str, new_hash_2: str, now: int, expires_at: int
    ) -> bool:
        return self._run(_promote(handle, expected_hash_2, new_hash_2, now, expires_at))

    def delete_sessions(self, handles: list[str]) -> list[str]:
        if not handles:
            return []
        return self._run(_Op("delete", tuple(dict.fromkeys(handles)), _strings))

    def delete_sessions_for_user(self, user_id: str) -> list[str]:
        return self._run(_Op("delete_for_user", (user_id,), _by_creation))

    def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        return self._run(_Op("handles_for_user", (user_id, now), _by_creation))

    def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        return self._run(_update("session_data", handle, data))

    def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        return self._run(_update("jwt_user_payload", handle, payload))

    def delete_expired_sessions(self, now: int) -> int:
        total, more = 0, True
        while more:  # in batches, so no single script blocks Redis for long
            deleted, more = self._run(_sweep(now))
            total += deleted
        return total

    def load_keys(self, prefix: str) -> list[StoredKey]:
        return self._run(_Op("load_keys", (prefix,), _decode_keys))

    def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        op = _Op("insert_key", (key.name, key.value, key.created_at_time), _key_entry(key.name))
        return self._run(op)

    def delete_keys(self, names: list[str]) -> None:
        if names:
            self._run(_Op("delete_keys", tuple(names), _none))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()


# -- asyncio -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _LoopClient:
    """The client of one event loop (asyncio connections belong to the loop that made them)."""

    client: redis.asyncio.Redis
    scripts: dict[str, Any]
    guard: AsyncGenerator[None, None]
    armed: bool = False


class AsyncRedisStore:
    """An :class:`~sessionward.stores.base.AsyncStore` on ``redis.asyncio``.

    Connections are made per event loop: an engine may outlive a loop (successive
    ``asyncio.run`` calls in tests and CLIs). A loop's client is closed when that loop
    shuts down its async generators (as ``asyncio.run`` does) or by :meth:`close`.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0") -> None:
        self.url = url
        self.settings = parse_redis_url(url)
        self.prefix = self.settings.prefix
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._abandoned: list[_LoopClient] = []  # of loops closed without shutting down
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._pid = os.getpid()
                self._abandoned.extend(self._clients.values())
                self._clients = {}
            entry = self._clients.get(loop)
            if entry is None:
                if self._closed:
                    raise GeneralError("the Redis store is closed")
                for old_loop in [old for old in self._clients if old.is_closed()]:
                    self._abandoned.append(self._clients.pop(old_loop))
                client = self.settings.async_client()
                scripts = {name: client.register_script(text) for name, text in SCRIPTS.items()}
                entry = self._clients[loop] = _LoopClient(client, scripts, self._guard(loop))
        return entry

    async def _guard(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        """Suspended for the loop's lifetime; the loop's shutdown closes its client."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._clients.pop(loop, None)
            if entry is not None:
                await entry.client.aclose()

    async def _run(self, op: _Op[T]) -> T:
        entry = self._loop_client()
        if not entry.armed:
            entry.armed = True
            await anext(entry.guard)  # registers the generator with the running loop
        try:
            reply = await entry.scripts[op.script](keys=[], args=[self.prefix, *op.args])
        except Exception as exc:
            raise _mapped(exc, self.settings) from exc
        return op.decode(reply)

    async def migrate(self) -> int:
        return await self._run(_Op("migrate", (LAYOUT_VERSION,), _int))

    async def check_schema(self) -> None:
        await self._run(_Op("schema_version", (), _check_version))

    async def insert_session(self, row: SessionRow) -> None:
        await self._run(_insert(row))

    async def get_session(self, handle: str) -> SessionRow | None:
        return await self._run(_Op("get", (handle,), _decode_row))

    async def promote(
        self, handle: str, expected_hash_2: str, new_hash_2: str, now: int, expires_at: int
    ) -> bool:
        return await self._run(_promote(handle, expected_hash_2, new_hash_2, now, expires_at))

    async def delete_sessions(self, handles: list[str]) -> list[str]:
        if not handles:
            return []
        return await self._run(_Op("delete", tuple(dict.fromkeys(handles)), _strings))

    async def delete_sessions_for_user(self, user_id: str) -> list[str]:
        return await self._run(_Op("delete_for_user", (user_id,), _by_creation))

    async def get_handles_for_user(self, user_id: str, now: int) -> list[str]:
        return await self._run(_Op("handles_for_user", (user_id, now), _by_creation))

    async def update_session_data(self, handle: str, data: dict[str, Any]) -> bool:
        return await self._run(_update("session_data", handle, data))

    async def update_jwt_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        return await self._run(_update("jwt_user_payload", handle, payload))

    async def delete_expired_sessions(self, now: int) -> int:
        total, more = 0, True
        while more:
            deleted, more = await self._run(_sweep(now))
            total += deleted
        return total

    async def load_keys(self, prefix: str) -> list[StoredKey]:
        return await self._run(_Op("load_keys", (prefix,), _decode_keys))

    async def insert_key_if_absent(self, key: StoredKey) -> StoredKey:
        op = _Op("insert_key", (key.name, key.value, key.created_at_time), _key_entry(key.name))
        return await self._run(op)

    async def delete_keys(self, names: list[str]) -> None:
        if names:
            await self._run(_Op("delete_keys", tuple(names), _none))

    async def close(self) -> None:
        """Close this loop's client (and forget those of other, finished loops)."""
        with self._lock:
            self._closed = True
            entries = self._clients
            self._clients = {}
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, entry in entries.items():
            if loop is current:
                await entry.client.aclose()
                await entry.guard.aclose()
            elif not loop.is_closed():
                asyncio.run_coroutine_threadsafe(entry.client.aclose(), loop)
            else:
                self._abandoned.append(entry)
