"""Signing-key management (docs/engine.md, "Signing keys"): manual rotation, the dynamic
interval schedule, other engines learning a new ``kid`` on first sight (one key reload, not
one per request), and several OS processes converging on one key per interval."""

from __future__ import annotations

import base64
import json
import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.stores import RecordingStore

from sessionward import Config, SessionWard, TryRefreshTokenError
from sessionward.stores.schema import latest_version
from sessionward.stores.sqlite import SQLiteStore

INTERVAL = 3600
PREFIX = "access_token_signing_key/"


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return str(header["kid"])


def stored_keys(path: Path) -> dict[str, dict[str, Any]]:
    """Signing keys in the key_value table: name -> decoded value."""
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name, value FROM key_value ORDER BY name").fetchall()
    return {name: json.loads(value) for name, value in rows if name.startswith(PREFIX)}


@pytest.fixture
def counting_stores(tmp_path: Path) -> Iterator[list[RecordingStore]]:
    made: list[RecordingStore] = []
    yield made
    for store in made:
        store.inner.close()


def counting_store(stores: list[RecordingStore], path: Path) -> RecordingStore:
    store = RecordingStore(SQLiteStore(f"sqlite:///{path}"))
    stores.append(store)
    return store


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "HS256"])
def test_previous_key_verifies_after_rotation(
    tmp_path: Path, alg: str, counting_stores: list[RecordingStore]
) -> None:
    path = tmp_path / "keys.db"
    # Without the change feed: its key_added would let the next unknown kid reload at once
    # (tests/engine/test_key_retirement.py); the counts below are the reload rules alone.
    config = Config(store=f"sqlite:///{path}", access_token_algorithm=alg, change_feed=False)
    first = SessionWard(config, store=counting_store(counting_stores, path))
    second_store = counting_store(counting_stores, path)
    second = SessionWard(config, store=second_store)
    try:
        before = [first.create_new_session(f"user{i}") for i in range(2)]
        second.get_session(before[0].access_token.value)  # second engine started, keys loaded
        old_kid = kid_of(before[0].access_token.value)
        new_kid = first.rotate_signing_key()
        assert new_kid != old_kid
        after = first.create_new_session("carol")
        assert kid_of(after.access_token.value) == new_kid  # the new key signs at once here
        # Tokens of the previous key still verify (one never verified before: no cache).
        assert first.get_session(before[1].access_token.value).user_id == "user1"
        kids = {jwk["kid"] for jwk in first.jwks()["keys"]}
        if alg == "HS256":
            assert kids == set()
        else:
            assert {old_kid, new_kid} <= kids
        # The second engine learns the new kid on first sight: one key reload ...
        loads = second_store.calls["load_keys"]
        assert second.get_session(after.access_token.value).user_id == "carol"
        assert second_store.calls["load_keys"] == loads + 1
        # ... and not one per request.
        for _ in range(3):
            assert second.get_session(first.create_new_session("dave").access_token.value).user_id == "dave"
        assert second_store.calls["load_keys"] == loads + 1
        assert second.get_session(before[1].access_token.value).user_id == "user1"
        # A flood of tokens naming unknown kids costs no further store queries.
        header = base64.urlsafe_b64encode(
            json.dumps({"alg": alg, "typ": "JWT", "kid": "made-up-kid"}).encode()
        ).rstrip(b"=")
        forged = header.decode() + "." + after.access_token.value.split(".", 1)[1]
        for _ in range(20):
            with pytest.raises(TryRefreshTokenError):
                second.get_session(forged)
        assert second_store.calls["load_keys"] == loads + 1
        # The second engine signs with what the store says, and the first verifies it.
        assert first.get_session(second.create_new_session("erin").access_token.value).user_id == "erin"
    finally:
        first.close()
        second.close()


def test_dynamic_interval_rotation(tmp_path: Path, counting_stores: list[RecordingStore]) -> None:
    path = tmp_path / "keys.db"
    start_interval = 1_700_000_000 // INTERVAL + 1
    clock = FakeClock(start_interval * INTERVAL + 100.0)
    validity = 5400  # 1.5 intervals: tokens outlive the interval of their key
    config = Config(
        store=f"sqlite:///{path}",
        access_token_algorithm="ES256",
        access_token_validity=validity,
        access_token_signing_key_update_interval=INTERVAL,
    )

    def name(index: int) -> str:
        return f"{PREFIX}ES256/i{index:012d}"

    engine = SessionWard(config, store=counting_store(counting_stores, path), clock=clock)
    late_store = counting_store(counting_stores, path)
    watcher = SessionWard(config, store=late_store, clock=clock)
    try:
        tokens: dict[int, str] = {}
        for step in range(5):
            index = start_interval + step
            tokens[index] = engine.create_new_session(f"user{index}").access_token.value
            watcher.jwks()  # started during this interval
            keys = stored_keys(path)
            # The current key signs; the next one is already published, not yet signing.
            assert name(index) in keys
            assert name(index + 1) in keys
            assert keys[name(index + 1)]["not_before"] == (index + 1) * INTERVAL
            assert kid_of(tokens[index]) == keys[name(index)]["kid"]
            assert keys[name(index + 1)]["kid"] not in {kid_of(t) for t in tokens.values()}
            # Every unexpired token still verifies, in both engines.
            for issued_in, token in tokens.items():
                expired = clock.now >= issued_in * INTERVAL + 100 + validity
                for verifier in (engine, watcher):
                    if expired:
                        with pytest.raises(TryRefreshTokenError):
                            verifier.get_session(token)
                    else:
                        assert verifier.get_session(token).user_id == f"user{issued_in}"
            # Keys whose tokens have all expired are gone from the table.
            retention = validity + 60
            for old in range(start_interval, index):
                obsolete = clock.now > (old + 1) * INTERVAL + retention
                assert (name(old) not in keys) is obsolete, (step, old)
            # Move into the next interval: the watcher already knows the next key (it was
            # published an interval ahead), so verifying its tokens needs no reload.
            clock.now += INTERVAL
            loads = late_store.calls["load_keys"]
            fresh = engine.create_new_session("probe").access_token.value
            assert kid_of(fresh) == keys[name(index + 1)]["kid"]
            assert watcher.get_session(fresh).user_id == "probe"
            assert late_store.calls["load_keys"] == loads
        assert len(stored_keys(path)) <= 4
    finally:
        engine.close()
        watcher.close()


# -- several OS processes --------------------------------------------------------------------


def _process_main(path: str, barrier: Barrier, pipe: Connection) -> None:
    """One application process: start an engine on the shared file at the same moment as
    the other process, issue a token, then verify the other process's token."""
    config = Config(store=f"sqlite:///{path}")  # RS256, dynamic keys: the defaults
    barrier.wait(timeout=60)
    with SessionWard(config) as engine:
        tokens = engine.create_new_session(f"pid-{multiprocessing.current_process().pid}")
        pipe.send((tokens.access_token.value, tokens.user_id))
        if not pipe.poll(60):
            raise TimeoutError("no token from the other process")
        other = pipe.recv()
        pipe.send(engine.get_session(other).user_id)
    pipe.close()


def test_two_processes_converge_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    pipes = [context.Pipe() for _ in range(2)]
    processes = [
        context.Process(target=_process_main, args=(str(path), barrier, child), daemon=True)
        for _, child in pipes
    ]
    for process in processes:
        process.start()
    try:
        issued = []
        for parent, _ in pipes:
            assert parent.poll(60), "a process did not issue a token"
            issued.append(parent.recv())
        pipes[0][0].send(issued[1][0])
        pipes[1][0].send(issued[0][0])
        verified = []
        for parent, _ in pipes:
            assert parent.poll(60), "a process did not verify"
            verified.append(parent.recv())
    finally:
        for process in processes:
            process.join(timeout=60)
        for parent, child in pipes:
            parent.close()
            child.close()
    assert [p.exitcode for p in processes] == [0, 0]
    assert verified == [issued[1][1], issued[0][1]]
    keys = stored_keys(path)
    current = [value for name, value in keys.items() if "/i" in name and value["not_before"] <= time.time()]
    assert len(keys) == 2  # this interval's key and the next one, each created once
    assert len(current) == 1
    assert kid_of(issued[0][0]) == kid_of(issued[1][0]) == current[0]["kid"]
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute(
            "SELECT COUNT(*) FROM key_value WHERE name = 'refresh_token_key'"
        ).fetchone() == (1,)
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
            latest_version("sqlite"),
        )
    # A third engine, in this process, accepts both processes' tokens.
    with SessionWard(Config(store=f"sqlite:///{path}")) as engine:
        assert {engine.get_session(token).user_id for token, _ in issued} == {u for _, u in issued}
