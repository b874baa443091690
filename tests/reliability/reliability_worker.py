"""A worker OS process for the multi-process reliability tests (not a test module).

Usage: ``python reliability_worker.py STORE_URL sync|async CONFIG_JSON [LATENCY_JSON]``. The
process opens its own engine (``SessionWard`` with threads, or ``AsyncSessionWard`` with tasks)
and its own store connections — wrapped in ``latency_store``'s delaying store when
``LATENCY_JSON`` (``{"delays": {method: [low, high]}, "seed": n}``) is given — then answers
JSON commands, one per line on stdin, with one JSON line on stdout each (``{"id": ..., ...}``;
with a latency plan, ``"injected"`` and ``"injected_seconds"`` count the waits the command
caused). Progress lines
(``{"progress": ...}``) may come in between.

Commands:
- ``calls``: ``{"calls": [["refresh", token] | ["verify", token] | ["revoke", handle]],
  "start_at": monotonic seconds}`` — all calls at once (threads or tasks) at ``start_at``
  (CLOCK_MONOTONIC is shared by all processes of the machine); answers per-call outcomes
  ``["ok", value]`` / ``["err", class name, message]`` and how many compare-and-sets won;
  with ``"stamp": true`` each outcome ends with ``{"at": CLOCK_MONOTONIC when the call
  returned, "exp": expiry (ms) of the access token it returned, "left": ms it had left}``;
- ``chains``: ``{"chains": [[handle, refresh token]], "steps": n}`` — each chain
  concurrently, ``n`` sequential refresh + first-use steps; answers the last tokens;
- ``churn``: like ``chains`` for ``seconds``, printing a progress line after every refresh
  (the test kills workers with SIGKILL in the middle of this);
- ``close``: close the engine and exit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reliability.latency_store import AsyncDelayingStore, DelayingStore, LatencyPlan

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.stores.urls import open_async_store, open_store

_output_lock = threading.Lock()


def emit(message: dict[str, Any]) -> None:
    line = json.dumps(message) + "\n"
    with _output_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def outcome(kind: str, value: Any) -> list[Any]:
    """The JSON form of one call's result."""
    if kind == "refresh":
        return ["ok", value.refresh_token.value, value.access_token.value, value.jwt_payload]
    if kind == "verify":
        return ["ok", None if value.new_access_token is None else value.new_access_token.value]
    return ["ok", value]


def failure(exc: BaseException) -> list[Any]:
    return ["err", type(exc).__name__, str(exc)[:200]]


def stamped(result: list[Any], kind: str, value: Any) -> list[Any]:
    """``result`` with when the call returned and how long its access token had left, both
    taken as it returned (``value`` is ``None`` for a failed call)."""
    token = None
    if value is not None and kind == "refresh":
        token = value.access_token
    elif value is not None and kind == "verify":
        token = value.new_access_token
    at = time.monotonic()
    expires = None if token is None else token.expires_at
    left = None if token is None else token.expires_at - time.time() * 1000
    return [*result, {"at": at, "exp": expires, "left": left}]


class Counter:
    """Counts compare-and-sets that won, across threads or tasks."""

    def __init__(self) -> None:
        self.won = 0
        self.lock = threading.Lock()

    def add(self, changed: bool) -> None:
        with self.lock:
            self.won += bool(changed)


class CountingStore:
    def __init__(self, inner: Any, counter: Counter) -> None:
        self.inner = inner
        self.counter = counter

    def promote(self, *args: Any) -> bool:
        changed: bool = self.inner.promote(*args)
        self.counter.add(changed)
        return changed

    def promote_returning(self, promotion: Any) -> Any:
        outcome = self.inner.promote_returning(promotion)
        self.counter.add(outcome.changed)
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class AsyncCountingStore(CountingStore):
    async def promote(self, *args: Any) -> bool:  # type: ignore[override]
        changed: bool = await self.inner.promote(*args)
        self.counter.add(changed)
        return changed

    async def promote_returning(self, promotion: Any) -> Any:
        outcome = await self.inner.promote_returning(promotion)
        self.counter.add(outcome.changed)
        return outcome


class SyncWorker:
    def __init__(self, url: str, config: Config, counter: Counter, plan: LatencyPlan | None) -> None:
        self.store = open_store(url)
        inner = self.store if plan is None else DelayingStore(self.store, plan)
        self.engine = SessionWard(config, store=CountingStore(inner, counter))
        self.pool = ThreadPoolExecutor(64)

    def call(self, kind: str, argument: str, stamp: bool = False) -> list[Any]:
        try:
            if kind == "refresh":
                value: Any = self.engine.refresh_session(argument)
            elif kind == "verify":
                value = self.engine.get_session(argument)
            else:
                value = self.engine.revoke_session(argument)
        except Exception as exc:
            return stamped(failure(exc), kind, None) if stamp else failure(exc)
        return stamped(outcome(kind, value), kind, value) if stamp else outcome(kind, value)

    def calls(self, calls: list[list[Any]], start_at: float, stamp: bool = False) -> list[Any]:
        def run(kind: str, argument: str) -> list[Any]:
            time.sleep(max(0.0, start_at - time.monotonic()))
            return self.call(kind, argument, stamp)

        futures = [self.pool.submit(run, kind, argument) for kind, argument in calls]
        return [future.result() for future in futures]

    def chain(self, token: str, steps: int, deadline: float | None, handle: str) -> list[Any]:
        try:
            step = 0
            while step < steps or (deadline is not None and time.monotonic() < deadline):
                refreshed = self.engine.refresh_session(token)
                token = refreshed.refresh_token.value
                if deadline is not None:
                    emit({"progress": [handle, token]})
                verified = self.engine.get_session(refreshed.access_token.value)
                if verified.new_access_token is None:
                    return ["err", "NoReplacement", "first use minted no replacement"]
                step += 1
            return ["ok", token, refreshed.jwt_payload, step]
        except Exception as exc:
            return failure(exc)

    def chains(self, chains: list[list[str]], steps: int, seconds: float | None) -> list[Any]:
        deadline = None if seconds is None else time.monotonic() + seconds
        futures = [self.pool.submit(self.chain, token, steps, deadline, handle) for handle, token in chains]
        return [future.result() for future in futures]

    def warm(self) -> None:
        self.engine.jwks()

    def close(self) -> None:
        self.pool.shutdown()
        self.engine.close()
        self.store.close()


class AsyncWorker:
    def __init__(
        self, url: str, config: Config, counter: Counter, runner: asyncio.Runner, plan: LatencyPlan | None
    ) -> None:
        self.runner = runner
        self.store = open_async_store(url)
        inner = self.store if plan is None else AsyncDelayingStore(self.store, plan)
        self.engine = AsyncSessionWard(config, store=AsyncCountingStore(inner, counter))

    async def call(self, kind: str, argument: str, start_at: float, stamp: bool = False) -> list[Any]:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        try:
            if kind == "refresh":
                value: Any = await self.engine.refresh_session(argument)
            elif kind == "verify":
                value = await self.engine.get_session(argument)
            else:
                value = await self.engine.revoke_session(argument)
        except Exception as exc:
            return stamped(failure(exc), kind, None) if stamp else failure(exc)
        return stamped(outcome(kind, value), kind, value) if stamp else outcome(kind, value)

    def calls(self, calls: list[list[Any]], start_at: float, stamp: bool = False) -> list[Any]:
        async def run() -> list[Any]:
            return list(await asyncio.gather(*(self.call(k, a, start_at, stamp) for k, a in calls)))

        return self.runner.run(run())

    async def chain(self, token: str, steps: int, deadline: float | None, handle: str) -> list[Any]:
        try:
            step = 0
            while step < steps or (deadline is not None and time.monotonic() < deadline):
                refreshed = await self.engine.refresh_session(token)
                token = refreshed.refresh_token.value
                if deadline is not None:
                    emit({"progress": [handle, token]})
                verified = await self.engine.get_session(refreshed.access_token.value)
                if verified.new_access_token is None:
                    return ["err", "NoReplacement", "first use minted no replacement"]
                step += 1
            return ["ok", token, refreshed.jwt_payload, step]
        except Exception as exc:
            return failure(exc)

    def chains(self, chains: list[list[str]], steps: int, seconds: float | None) -> list[Any]:
        deadline = None if seconds is None else time.monotonic() + seconds

        async def run() -> list[Any]:
            return list(await asyncio.gather(*(self.chain(t, steps, deadline, h) for h, t in chains)))

        return self.runner.run(run())

    def warm(self) -> None:
        self.runner.run(self.engine.jwks())

    def close(self) -> None:
        self.runner.run(self.engine.aclose())
        self.runner.run(self.store.close())


def serve(worker: SyncWorker | AsyncWorker, counter: Counter, plan: LatencyPlan | None) -> None:
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        before = counter.won
        delays_before = (0, 0.0) if plan is None else (plan.injected_total, plan.injected_seconds)
        reply: dict[str, Any] = {"id": command["id"]}
        if op == "warm":
            worker.warm()
        elif op == "calls":
            stamp = bool(command.get("stamp", False))
            reply["results"] = worker.calls(command["calls"], command["start_at"], stamp)
        elif op == "chains":
            reply["results"] = worker.chains(command["chains"], command["steps"], None)
        elif op == "churn":
            reply["results"] = worker.chains(command["chains"], 0, command["seconds"])
        elif op == "close":
            worker.close()
            emit(reply)
            return
        reply["promoted"] = counter.won - before
        if plan is not None:
            reply["injected"] = plan.injected_total - delays_before[0]
            reply["injected_seconds"] = plan.injected_seconds - delays_before[1]
        emit(reply)


def main() -> None:
    url, driver, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    plan = LatencyPlan.from_json(json.loads(sys.argv[4])) if len(sys.argv) > 4 else None
    config = Config(store=url, **options)
    counter = Counter()
    if driver == "sync":
        serve(SyncWorker(url, config, counter, plan), counter, plan)
        return
    with asyncio.Runner() as runner:
        serve(AsyncWorker(url, config, counter, runner, plan), counter, plan)


if __name__ == "__main__":
    main()
