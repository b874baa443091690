"""Redis ``FLUSHALL`` and real memory eviction, on a redis-server this module starts itself.

A private server (Debian's ``redis-server`` on a free port, no persistence) may be flushed
and squeezed without touching the shared one. Eviction is real: ``maxmemory`` a little above
the server's baseline with the ``volatile-lru`` policy the store docs recommend, so Redis
itself drops session hashes (the only keys with a TTL) while logins continue.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from store_backends import skip_or_fail

from sessionward import Config, SessionWard
from sessionward.errors import TokenTheftDetectedError, TryRefreshTokenError, UnauthorizedError

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if not shutil.which(REDIS_SERVER):
        skip_or_fail(request.config, f"redis-server binary not found ({REDIS_SERVER})")
    port = _free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def _url(client: redis.Redis) -> str:
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    return f"redis://127.0.0.1:{kwargs['port']}/0"


def _ward(client: redis.Redis) -> SessionWard:
    return SessionWard(
        Config(
            store=_url(client),
            access_token_algorithm="HS256",
            refresh_token_reuse_grace_period=0,
            cookie_secure=False,
        )
    )


def test_flushall_logs_everyone_out_and_never_reports_theft(private_redis: redis.Redis) -> None:
    with _ward(private_redis) as ward:
        rotated = ward.create_new_session("alice")
        child = ward.refresh_session(rotated.refresh_token.value)
        ward.get_session(child.access_token.value)  # commits the rotation: the parent is now stale
        pending = ward.create_new_session("bob")
        pending_child = ward.refresh_session(pending.refresh_token.value)  # not yet committed
        private_redis.flushall()
        for tokens in (rotated, child, pending, pending_child):
            with pytest.raises(UnauthorizedError) as caught:
                ward.refresh_session(tokens.refresh_token.value)
            assert not isinstance(caught.value, TokenTheftDetectedError)
        with pytest.raises(UnauthorizedError):
            ward.get_session(pending_child.access_token.value)  # promotion finds no row
        ward.jwks()  # key sync: the signing keys were flushed too, new ones are written
        with pytest.raises(TryRefreshTokenError):
            ward.get_session(rotated.access_token.value)
        fresh = ward.create_new_session("carol")  # logins work at once
        renewed = ward.refresh_session(fresh.refresh_token.value)
        assert ward.get_session(renewed.access_token.value).user_id == "carol"


def test_evicted_sessions_are_unauthorised_never_theft(private_redis: redis.Redis) -> None:
    with _ward(private_redis) as ward:
        ward.create_new_session("warm-up")  # keys, schema version: the keys without a TTL
        baseline = int(private_redis.info("memory")["used_memory"])
        private_redis.config_set("maxmemory-policy", "volatile-lru")
        private_redis.config_set("maxmemory", str(baseline + 1_500_000))
        data = {"blob": "x" * 1_000}
        sessions = []
        for index in range(6_000):
            sessions.append(ward.create_new_session(f"user{index % 50}", {"n": index}, data))
            if index % 500 == 499 and int(private_redis.info("stats")["evicted_keys"]) > 200:
                break
        assert int(private_redis.info("stats")["evicted_keys"]) > 200, "maxmemory was never reached"

        unauthorised = refreshed = 0
        for tokens in sessions:
            try:
                child = ward.refresh_session(tokens.refresh_token.value)
            except TokenTheftDetectedError:  # pragma: no cover - the failure this test exists for
                pytest.fail("an evicted session was reported as theft")
            except UnauthorizedError:
                unauthorised += 1
                continue
            refreshed += 1
            assert child.handle == tokens.handle
        assert unauthorised > 0 and refreshed > 0
        assert unauthorised <= int(private_redis.info("stats")["evicted_keys"])  # only evicted ones
        # The keys without a TTL survived: tokens of live sessions still verify.
        alive = [t for t in sessions if private_redis.exists(f"sessionward:session:{t.handle}")]
        survivor = alive[-1]
        assert ward.get_session(survivor.access_token.value).handle == survivor.handle
