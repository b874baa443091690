"""An engine of either driver behind plain calls, for tests that run one body against the
sync and the async engine."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from sessionward import AsyncSessionWard, SessionWard


class Driven:
    """An engine of either driver behind plain calls: coroutine methods of an async engine
    run on the test's event loop; plain methods (``subscribe``) are called as they are."""

    def __init__(self, engine: SessionWard | AsyncSessionWard, runner: asyncio.Runner | None) -> None:
        self.engine = engine
        self.runner = runner
        self.core = engine._core

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.engine, name)
        runner = self.runner
        if runner is None or not inspect.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return runner.run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        if isinstance(self.engine, AsyncSessionWard):
            assert self.runner is not None
            self.runner.run(self.engine.aclose())
        else:
            self.engine.close()


#: What :func:`record_event` received (a subscriber named by a string in tests).
recorded_events: list[Any] = []
#: Not callable: a subscriber string naming it is refused.
CLIENT_NAME = "not a function"


def record_event(event: Any) -> None:
    """A subscriber importable as ``"support.engines:record_event"``."""
    recorded_events.append(event)
