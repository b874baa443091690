"""Store benchmark: throughput per store, and the cost of a large table.

Run: ``.venv/bin/python bench/stores.py [--stores sqlite,postgres,redis] [--sessions 1000000]``
(about 10 minutes with the defaults; needs the PostgreSQL and Redis of the machine, see the
URLs below).

Part 1, **throughput** (operations per second, median over interleaved rounds), for each store:

- ``create``: ``create_new_session`` (one row written);
- ``refresh``: ``refresh_session`` alone (one read: our refresh writes nothing);
- ``rotation``: ``refresh_session`` followed by the first ``get_session`` of the new access
  token, which commits the rotation (one compare-and-set that answers with the row): the
  full cost of rotating a session, the fair comparison with designs that write on refresh;

each with **one connection** (sync engine, one thread, a pool of one), **8 threads** (sync
engine, pool of 8) and **8 tasks** (``AsyncSessionWard``, pool of 8, one event loop).

Part 2, **scale**: the same engine operations, single-threaded, µs/op, on a store holding
1 000 sessions and on one holding ``--sessions`` (default 1 000 000), measured side by side
in interleaved rounds: ``verify`` (``get_session``, cache off: never touches the store),
``verify+blacklist`` (``access_token_blacklisting=True``: one read per request),
``refresh`` and ``rotation`` as above. The background sessions are bulk-loaded (SQLite:
``executemany`` in one transaction; PostgreSQL: ``INSERT … SELECT generate_series`` then
``VACUUM ANALYZE``, what autovacuum would do; Redis: the store's own insert script,
pipelined), spread over 1 session per user for 200 000 users and 5 per user for the rest.

The engine signs with HS256 so the store's cost is not hidden under an RSA signature.
Databases: a temporary SQLite file; PostgreSQL schemas and Redis key prefixes of their own,
dropped afterwards. ``SESSIONWARD_BENCH_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and ``SESSIONWARD_BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``) select the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import machine_info, median, run_interleaved, spread, table

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.engine.types import SessionTokens

POSTGRES_URL = os.environ.get("SESSIONWARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SESSIONWARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
STORES = ("sqlite", "postgres", "redis")
MODES = ("1 conn", "8 threads", "8 tasks")
OPERATIONS = ("create", "refresh", "rotation")
WORKERS = 8
CHAIN = 64  # sessions each worker cycles through for refresh and rotation
OPTIONS: dict[str, Any] = {
    "access_token_algorithm": "HS256",
    "access_token_validity": 3600,
    "refresh_token_validity": 30 * 86400,
    "cookie_secure": False,
    "verified_token_cache_size": 0,
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- namespaces ------------------------------------------------------------------------------


def _with_query(url: str, **params: str) -> str:
    from urllib.parse import quote

    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


@contextmanager
def namespace(store: str, tmp: Path, label: str) -> Iterator[str]:
    """A store URL of its own (SQLite file, PostgreSQL schema, Redis prefix), removed after."""
    name = f"swbench_{label}_{uuid.uuid4().hex[:8]}"
    if store == "sqlite":
        yield f"sqlite:///{tmp / name}.db"
    elif store == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield _with_query(POSTGRES_URL, options=f"-csearch_path={name}")
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    else:
        import redis

        prefix = name + ":"
        try:
            yield _with_query(REDIS_URL, prefix=prefix)
        finally:
            with redis.Redis.from_url(REDIS_URL) as client:
                batch: list[bytes] = []
                for key in client.scan_iter(match=f"{prefix}*", count=10_000):
                    batch.append(key)
                    if len(batch) >= 10_000:
                        client.unlink(*batch)
                        batch.clear()
                if batch:
                    client.unlink(*batch)


def pooled(store: str, url: str, size: int) -> str:
    """``url`` with a connection pool of ``size`` (SQLite opens a connection per thread)."""
    if store == "postgres":
        return _with_query(url, pool_min=str(size), pool_max=str(size))
    if store == "redis":
        return _with_query(url, max_connections=str(size))
    return url


# -- bulk loading ----------------------------------------------------------------------------


def _user_of(index: int) -> str:
    return f"user{index}" if index < 200_000 else f"user{200_000 + (index - 200_000) // 5}"


def bulk_load(store: str, url: str, count: int) -> None:
    """Add ``count`` background sessions directly (migrating first)."""
    with SessionWard(Config(store=url, **OPTIONS)) as ward:
        ward.store.migrate()
    now = int(time.time() * 1000)
    expires = now + 30 * 86_400_000
    started = time.perf_counter()
    if store == "sqlite":
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        with connection:
            connection.executemany(
                "INSERT INTO session_info (session_handle, user_id, refresh_token_hash_2, "
                "session_data, jwt_user_payload, created_at_time, expires_at) "
                "VALUES (?, ?, ?, '{}', '{\"role\":\"user\"}', ?, ?)",
                ((str(uuid.uuid4()), _user_of(i), uuid.uuid4().hex * 2, now, expires) for i in range(count)),
            )
        connection.close()
    elif store == "postgres":
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "INSERT INTO session_info (session_handle, user_id, refresh_token_hash_2, "
                "session_data, jwt_user_payload, created_at_time, expires_at) "
                "SELECT gen_random_uuid()::text, "
                "'user' || CASE WHEN i < 200000 THEN i ELSE 200000 + (i - 200000) / 5 END, "
                "md5(i::text) || md5((i + 1)::text), '{}', '{\"role\":\"user\"}', %s, %s "
                "FROM generate_series(0, %s - 1) AS i",
                (now, expires, count),
            )
            connection.execute("VACUUM ANALYZE session_info")
    else:
        from sessionward.stores.base import SessionRow
        from sessionward.stores.redis import RedisStore
        from sessionward.stores.redis.operations import insert_session

        redis_store = RedisStore(url)
        script = redis_store._scripts["insert"]
        try:
            for start in range(0, count, 5_000):
                pipe = redis_store._client.pipeline(transaction=False)
                for i in range(start, min(count, start + 5_000)):
                    row = SessionRow(
                        str(uuid.uuid4()),
                        _user_of(i),
                        uuid.uuid4().hex * 2,
                        None,
                        None,
                        {},
                        {"role": "user"},
                        now,
                        expires,
                    )
                    script(keys=[], args=[redis_store.prefix, *insert_session(row).args], client=pipe)
                pipe.execute()
        finally:
            redis_store.close()
    say(f"  {store}: loaded {count:,} sessions in {time.perf_counter() - started:.1f} s")


# -- part 1: throughput ----------------------------------------------------------------------


@dataclass
class Chain:
    """Sessions a worker refreshes in turn (the latest tokens of each)."""

    tokens: list[SessionTokens]
    position: int = 0

    def next(self) -> tuple[int, SessionTokens]:
        self.position = (self.position + 1) % len(self.tokens)
        return self.position, self.tokens[self.position]


def _sync_step(ward: SessionWard, operation: str, chain: Chain) -> None:
    if operation == "create":
        ward.create_new_session(f"u{uuid.uuid4().hex[:12]}", {"role": "user"})
        return
    index, tokens = chain.next()
    child = ward.refresh_session(tokens.refresh_token.value)
    if operation == "rotation":
        ward.get_session(child.access_token.value)  # first use: commits the rotation
        chain.tokens[index] = child


async def _async_step(ward: AsyncSessionWard, operation: str, chain: Chain) -> None:
    if operation == "create":
        await ward.create_new_session(f"u{uuid.uuid4().hex[:12]}", {"role": "user"})
        return
    index, tokens = chain.next()
    child = await ward.refresh_session(tokens.refresh_token.value)
    if operation == "rotation":
        await ward.get_session(child.access_token.value)
        chain.tokens[index] = child


@dataclass
class ThroughputCase:
    """One (store, mode) engine and its workers' session chains."""

    store: str
    mode: str
    url: str
    sync_ward: SessionWard | None = None
    async_ward: AsyncSessionWard | None = None
    runner: asyncio.Runner | None = None
    chains: list[Chain] = field(default_factory=list)

    def open(self) -> None:
        config = Config(store=self.url, **OPTIONS)
        workers = 1 if self.mode == "1 conn" else WORKERS
        if self.mode == "8 tasks":
            self.runner = asyncio.Runner()
            self.async_ward = AsyncSessionWard(config)
            ward = self.async_ward

            async def make() -> list[Chain]:
                return [
                    Chain([await ward.create_new_session(f"c{w}-{i}") for i in range(CHAIN)])
                    for w in range(workers)
                ]

            self.chains = self.runner.run(make())
        else:
            self.sync_ward = SessionWard(config)
            self.chains = [
                Chain([self.sync_ward.create_new_session(f"c{w}-{i}") for i in range(CHAIN)])
                for w in range(workers)
            ]

    def run(self, operation: str, seconds: float) -> float:
        """Operations per second over about ``seconds``."""
        if self.runner is not None:
            return self.runner.run(self._run_async(operation, seconds))
        ward = self.sync_ward
        assert ward is not None
        counts = [0] * len(self.chains)
        barrier = threading.Barrier(len(self.chains) + 1)
        deadline = [0.0]

        def work(index: int) -> None:
            chain = self.chains[index]
            barrier.wait()
            done = 0
            while time.perf_counter() < deadline[0]:
                _sync_step(ward, operation, chain)
                done += 1
            counts[index] = done

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(self.chains))]
        for thread in threads:
            thread.start()
        start = time.perf_counter()
        deadline[0] = start + seconds
        barrier.wait()
        for thread in threads:
            thread.join()
        return sum(counts) / (time.perf_counter() - start)

    async def _run_async(self, operation: str, seconds: float) -> float:
        ward = self.async_ward
        assert ward is not None
        deadline = time.perf_counter() + seconds

        async def work(chain: Chain) -> int:
            done = 0
            while time.perf_counter() < deadline:
                await _async_step(ward, operation, chain)
                done += 1
            return done

        start = time.perf_counter()
        counts = await asyncio.gather(*(work(chain) for chain in self.chains))
        return sum(counts) / (time.perf_counter() - start)

    def close(self) -> None:
        if self.sync_ward is not None:
            self.sync_ward.close()
        if self.runner is not None:
            assert self.async_ward is not None
            self.runner.run(self.async_ward.aclose())
            self.runner.close()


def throughput(stores: list[str], tmp: Path, rounds: int, seconds: float) -> None:
    say("part 1: throughput")
    results: dict[tuple[str, str, str], list[float]] = {}
    with ExitStack() as stack:
        cases: list[ThroughputCase] = []
        for store in stores:
            for mode in MODES:
                url = stack.enter_context(namespace(store, tmp, "tp"))
                case = ThroughputCase(store, mode, pooled(store, url, 1 if mode == "1 conn" else WORKERS))
                case.open()
                stack.callback(case.close)
                cases.append(case)
        for case in cases:  # warm-up
            for operation in OPERATIONS:
                case.run(operation, seconds / 4)
        for index in range(rounds):
            for case in cases:
                for operation in OPERATIONS:
                    results.setdefault((case.store, case.mode, operation), []).append(
                        case.run(operation, seconds)
                    )
            say(f"  round {index + 1}/{rounds} done")
    print("## Throughput, operations/s (median over rounds; min-max)\n")
    rows = []
    for store in stores:
        for operation in OPERATIONS:
            cells = []
            for mode in MODES:
                values = results[(store, mode, operation)]
                cells.append(f"{median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})")
            rows.append([store, operation, *cells])
    print(table(["store", "operation", *MODES], rows))
    print()


# -- part 2: scale ---------------------------------------------------------------------------

SCALE_OPERATIONS = ("verify", "verify+blacklist", "refresh", "rotation")


@dataclass
class ScaleSetup:
    store: str
    size: int
    ward: SessionWard
    blacklisting: SessionWard
    chain: Chain
    access_tokens: list[str]


def scale_setup(store: str, url: str, size: int) -> ScaleSetup:
    bulk_load(store, url, size - 500)
    ward = SessionWard(Config(store=url, **OPTIONS))
    blacklisting = SessionWard(Config(store=url, access_token_blacklisting=True, **OPTIONS))
    tokens = [ward.create_new_session(f"bench{i}", {"role": "user"}) for i in range(500)]
    return ScaleSetup(store, size, ward, blacklisting, Chain(tokens), [t.access_token.value for t in tokens])


def scale_cases(setup: ScaleSetup) -> list[tuple[str, Callable[[int], float]]]:
    ward, chain, access = setup.ward, setup.chain, setup.access_tokens
    blacklisting = setup.blacklisting

    def verify(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            ward.get_session(access[i % len(access)])
        return time.perf_counter() - start

    def verify_blacklist(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            blacklisting.get_session(access[i % len(access)])
        return time.perf_counter() - start

    def refresh(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            _sync_step(ward, "refresh", chain)
        return time.perf_counter() - start

    def rotation(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            _sync_step(ward, "rotation", chain)
        return time.perf_counter() - start

    key = f"{setup.store}/{setup.size}"
    return [
        (f"{key}/verify", verify),
        (f"{key}/verify+blacklist", verify_blacklist),
        (f"{key}/refresh", refresh),
        (f"{key}/rotation", rotation),
    ]


def scale(stores: list[str], tmp: Path, rounds: int, big: int, batch: float) -> None:
    say("part 2: scale")
    sizes = (1_000, big)
    with ExitStack() as stack:
        setups: list[ScaleSetup] = []
        for store in stores:
            for size in sizes:
                url = stack.enter_context(namespace(store, tmp, f"s{size}"))
                setup = scale_setup(store, url, size)
                stack.callback(setup.blacklisting.close)
                stack.callback(setup.ward.close)
                setups.append(setup)
        cases = [case for setup in setups for case in scale_cases(setup)]
        results = run_interleaved(cases, rounds, batch)
    print(f"## Scale: µs/op with 1 000 and {big:,} stored sessions (median; min-max)\n")
    rows = []
    for store in stores:
        for operation in SCALE_OPERATIONS:
            small = results[f"{store}/{sizes[0]}/{operation}"]
            large = results[f"{store}/{sizes[1]}/{operation}"]
            rows.append(
                [
                    store,
                    operation,
                    f"{median(small):.1f} ({spread(small)})",
                    f"{median(large):.1f} ({spread(large)})",
                    f"{median(large) / median(small):.2f}x",
                ]
            )
    print(table(["store", "operation", "1 000 sessions", f"{big:,} sessions", "ratio"], rows))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--sessions", type=int, default=1_000_000, help="the large store's size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="per throughput cell per round")
    parser.add_argument("--batch", type=float, default=0.2, help="seconds per scale case per round")
    parser.add_argument("--skip", choices=("throughput", "scale"), help="leave one part out")
    args = parser.parse_args()
    stores = [name for name in args.stores.split(",") if name]
    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        parser.error(f"--stores: unknown {', '.join(unknown)}; choose from {', '.join(STORES)}")
    if args.sessions < 2_000:
        parser.error("--sessions must be at least 2000")

    print("# sessionward store benchmark\n")
    for line in machine_info():
        print(f"- {line}")
    print(f"- stores: {', '.join(stores)}; PostgreSQL {POSTGRES_URL}, Redis {REDIS_URL}")
    print(
        f"- engine: HS256, verified-token cache off; throughput: {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s per cell; scale: {args.rounds} interleaved rounds of ~{args.batch:g} s batches\n"
    )
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as tmp:
        if args.skip != "throughput":
            throughput(stores, Path(tmp), args.rounds, args.seconds)
        if args.skip != "scale":
            scale(stores, Path(tmp), args.rounds, args.sessions, args.batch)


if __name__ == "__main__":
    main()
