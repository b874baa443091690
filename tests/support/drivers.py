"""A store or an engine of either driver (sync or async) behind plain calls, so that one
test body exercises both, and concurrent calls through threads or tasks."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from sessionward import AsyncSessionWard, Config, SessionWard
from sessionward.stores.urls import open_async_store, open_store


class AsyncBridge:
    """Presents an async object's coroutine methods as plain calls on one event loop.

    Lets one test body exercise the sync and the async driver alike; :meth:`gather` runs
    several calls concurrently as tasks of that loop.
    """

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(method(*args, **kwargs))

        return call

    def gather(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Run ``(method, args)`` calls as concurrent tasks; results or exceptions, in order."""

        async def run_all() -> list[Any]:
            return list(
                await asyncio.gather(
                    *(getattr(self._target, name)(*args) for name, args in calls), return_exceptions=True
                )
            )

        return self._runner.run(run_all())


def run_in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # asserted on by the caller
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a racing call hung"
    return results


def _call(target: Any, name: str, args: tuple[Any, ...]) -> Any:
    return getattr(target, name)(*args)


class Subject:
    """The store under test: ``subject.get_session(...)`` etc. for either driver, and
    :meth:`race` for concurrent calls (threads for sync stores, tasks for async ones)."""

    def __init__(self, url: str, runner: asyncio.Runner | None) -> None:
        self.url = url
        self.driver = "sync" if runner is None else "async"
        self._sync = open_store(url) if runner is None else None
        self._bridge = None if runner is None else AsyncBridge(open_async_store(url), runner)

    def __getattr__(self, name: str) -> Any:
        target: Any = self._sync if self._sync is not None else self._bridge
        return getattr(target, name)

    def race(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Run ``(method, args)`` calls concurrently; results or exceptions, in order."""
        if self._bridge is not None:
            return self._bridge.gather(calls)
        store = self._sync
        return run_in_threads([functools.partial(_call, store, name, args) for name, args in calls])


class Ward:
    """An engine of either driver behind plain calls (``close`` closes it and its store)."""

    def __init__(self, config: Config, url: str, runner: asyncio.Runner | None, clock: Any) -> None:
        self.config = config
        if runner is None:
            self.engine: Any = SessionWard(config, store=url, clock=clock)
        else:
            self.engine = AsyncBridge(AsyncSessionWard(config, store=url, clock=clock), runner)
        self._async = runner is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def race(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        if self._async:
            return list(self.engine.gather(calls))
        engine = self.engine
        return run_in_threads([functools.partial(_call, engine, name, args) for name, args in calls])

    def close(self) -> None:
        if self._async:
            self.engine.aclose()
        else:
            self.engine.close()
