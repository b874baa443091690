"""The verified-token cache's eviction by session, alone and while other threads fill it."""

from __future__ import annotations

import threading

from sessionward.engine.cache import VerifiedTokenCache
from sessionward.engine.types import VerifiedSession


def session(handle: str) -> VerifiedSession:
    return VerifiedSession(handle, "user", {}, None, None, 0)


def test_evict_sessions_drops_every_token_of_those_sessions_only() -> None:
    cache = VerifiedTokenCache(100)
    for i in range(30):
        cache.put(f"token-{i}", session(f"h{i % 3}"), 1e12, None, 0)
    assert cache.evict_sessions({"h0", "h2"}) == 20
    assert {entry[0].handle for entry in cache.entries.values()} == {"h1"}
    assert len(cache.entries) == 10
    assert cache.evict_sessions({"h0"}) == 0


def test_evict_sessions_while_other_threads_put_and_evict() -> None:
    cache = VerifiedTokenCache(2_000)
    doomed = {f"doomed-{i}" for i in range(50)}
    for i in range(1_500):
        cache.put(f"old-{i}", session(f"doomed-{i % 50}"), 1e12, None, 0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def fill(worker: int) -> None:
        n = 0
        try:
            while not stop.is_set():
                cache.put(f"new-{worker}-{n}", session(f"live-{n % 7}"), 1e12, None, 0)
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(20):
            cache.evict_sessions(doomed)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert not any(entry[0].handle in doomed for entry in cache.entries.values())
    assert len(cache.entries) <= cache.capacity
